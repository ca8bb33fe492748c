"""batchkit_b2luigi: the b2luigi batch system ``batchkit``, backed by any batchkit backend.

Installed with ``pip install 'batchkit[b2luigi]'``, it registers itself in b2luigi's
``b2luigi.batch_systems`` entry-point group, so a b2luigi script switches with two settings::

    import b2luigi

    b2luigi.set_setting("batch_system", "batchkit")
    b2luigi.set_setting("batchkit_backend", "slurm")            # or "local", "htcondor", ...
    b2luigi.set_setting("batchkit_options", {"partition": "short"})
    b2luigi.set_setting("batchkit_resources", {"memory": "2GB", "walltime": "1:00:00"})

What it changes compared to b2luigi's own batch systems: tasks started together are submitted
together (one job array), one scheduler query per poll answers every task, job ids are kept
in a batchkit job record so a restarted script re-attaches to running jobs instead of
submitting them again, and no scheduler state can crash the worker. See
``docs/adapters/b2luigi.md``.
"""

from __future__ import annotations

from batchkit_b2luigi.process import BatchkitProcess

__all__ = ["BatchkitProcess"]
