"""The ``[job]`` options of law.cfg that the batchkit workflow reads, registered with law.

law's own backends register their options when ``law.contrib.load(...)`` runs; law looks options
up strictly (an unregistered one is an error even where a fallback exists), so the adapter
registers its options -- without overwriting what the user's law.cfg sets -- when it is imported.

=================================  ===========================================================
``batchkit_backend``               backend when the task names none (default: ``local``)
``batchkit_job_file_dir``          where round directories go (default: ``job_file_dir``); must
                                   be on a file system the jobs see
``batchkit_job_file_dir_mkdtemp``  a fresh sub-directory per ``law run`` (default:
                                   ``job_file_dir_mkdtemp``)
``batchkit_job_file_dir_cleanup``  remove it afterwards if no job needs it any more (default:
                                   ``job_file_dir_cleanup``)
=================================  ===========================================================
"""

from __future__ import annotations

from law.config import Config

OPTIONS: dict[str, None] = {
    "batchkit_backend": None,
    "batchkit_job_file_dir": None,
    "batchkit_job_file_dir_mkdtemp": None,
    "batchkit_job_file_dir_cleanup": None,
}


def register_config_defaults() -> None:
    """Add the options above to law's config (values already set by the user are kept)."""
    Config.instance().update({"job": dict(OPTIONS)}, overwrite_sections=True, overwrite_options=False)
