"""The software environment a submission's jobs run in, shipped once -- not once per job.

Three ways, combinable, in the order the wrapper applies them:

* ``setup_script`` -- a shell script every job sources first (``source /cvmfs/.../setup.sh``,
  ``module load ...``). It is copied once into the submission directory.
* ``tarball`` -- a packed environment (``venv-pack`` / ``conda-pack`` output, or any ``.tar``,
  ``.tar.gz``, ``.tgz``, ``.tar.xz`` with a ``bin/``), given as a path or a URL. Each node
  unpacks it **once** into a cache (``$BATCHKIT_ENV_CACHE``, default
  ``$TMPDIR/batchkit-env-<uid>``) under a lock, runs ``bin/conda-unpack`` if present, and every
  job sources its ``bin/activate`` (or puts ``bin/`` first on ``PATH``). Jobs on the same node
  share the unpacked copy; a job killed while unpacking leaves a lock the next job removes.
* ``command_prefix`` -- an argv put in front of every job's command, e.g. a container:
  ``Environment.apptainer("/cvmfs/unpacked.cern.ch/.../el9:latest", binds=["/data"])`` gives
  ``apptainer exec --bind /data <image> <command...>``.

Everything is rendered into the head of each job-table chunk (:func:`render_environment`), so
no extra file has to reach the node.
"""

from __future__ import annotations

import hashlib
import os
import shlex
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import attrs

from batchkit.errors import SpecError


def _opt_abs_path(value: str | os.PathLike[str] | None) -> str | None:
    return None if value is None else os.path.abspath(os.fspath(value))


def _tarball(value: str | os.PathLike[str] | None) -> str | None:
    if value is None:
        return None
    text = os.fspath(value)
    if not text or "\x00" in text:
        raise SpecError(f"environment tarball must be a non-empty path or URL, got {value!r}")
    return text if "://" in text else os.path.abspath(text)


def _prefix(value: Iterable[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        raise SpecError(f"command_prefix must be an argv list, not a shell string ({value!r})")
    items = tuple(os.fspath(v) for v in value)
    if any(not isinstance(v, str) or "\x00" in v for v in items):
        raise SpecError(f"command_prefix must be a list of strings, got {list(items)!r}")
    return items


@attrs.frozen
class Environment:
    """What every job of a submission runs in (see the module docstring)."""

    setup_script: str | None = attrs.field(default=None, converter=_opt_abs_path)
    tarball: str | None = attrs.field(default=None, converter=_tarball)
    command_prefix: tuple[str, ...] = attrs.field(factory=tuple, converter=_prefix)

    @classmethod
    def apptainer(
        cls,
        image: str,
        binds: Sequence[str] = (),
        options: Sequence[str] = (),
        runtime: str = "apptainer",
        **kwargs: Any,
    ) -> Environment:
        """Run every job inside an Apptainer/Singularity image (``runtime="singularity"``)."""
        prefix = [runtime, "exec"]
        for bind in binds:
            prefix += ["--bind", bind]
        return cls(command_prefix=[*prefix, *options, image], **kwargs)

    def to_dict(self) -> dict[str, Any]:
        return {"setup_script": self.setup_script, "tarball": self.tarball, "command_prefix": list(self.command_prefix)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | Environment | None) -> Environment:
        if data is None:
            return cls()
        if isinstance(data, Environment):
            return data
        unknown = set(data) - {"setup_script", "tarball", "command_prefix"}
        if unknown:
            raise SpecError(f"environment: unknown field(s) {sorted(unknown)}")
        return cls(**data)

    def check(self) -> None:
        """Fail early (at submission time) if a local file named here does not exist."""
        if self.setup_script is not None and not os.path.isfile(self.setup_script):
            raise SpecError(f"setup script {self.setup_script} does not exist")
        if self.tarball is not None and "://" not in self.tarball and not os.path.isfile(self.tarball):
            raise SpecError(f"environment tarball {self.tarball} does not exist")


def tarball_digest(tarball: str) -> str:
    """A cache key for a tarball: path, size and mtime for a local file; the URL otherwise.

    A changed tarball gets a new key, so nodes never run a stale unpacked copy.
    """
    identity = tarball
    if "://" not in tarball:
        try:
            stat = os.stat(tarball)
            identity = f"{tarball}\0{stat.st_size}\0{stat.st_mtime_ns}"
        except OSError:
            pass
    return hashlib.sha256(identity.encode()).hexdigest()[:16]


def render_environment(env: Environment | None) -> list[str]:
    """Shell lines for the head of a job-table chunk (pure; the wrapper acts on them)."""
    if env is None:
        return []
    lines = []
    if env.tarball:
        lines.append(f"BK_ENV_TARBALL={shlex.quote(env.tarball)}")
        lines.append(f"BK_ENV_DIGEST={tarball_digest(env.tarball)}")
    if env.command_prefix:
        prefix = " ".join(shlex.quote(a) for a in env.command_prefix)
        lines.append(f'bk_exec() {{ exec {prefix} "$@"; }}')
    return lines
