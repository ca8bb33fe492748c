"""Backend registry: built-in backends by dotted path, third-party ones by entry point.

Nothing is imported until asked for (like fsspec's registry), so ``import batchkit`` stays
cheap and a backend whose optional dependency is missing only fails when it is used -- with
a message that says what to install.

Third-party packages register a backend in their ``pyproject.toml``::

    [project.entry-points."batchkit.backends"]
    mysched = "mypkg.backend:MySchedJobManager"
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from batchkit.errors import MissingDependencyError, SpecError, UnknownBackendError

if TYPE_CHECKING:
    from batchkit.backends.base import JobManager

ENTRY_POINT_GROUP = "batchkit.backends"

#: name -> (import path "module:Class", what to install if the import fails)
BUILTIN_BACKENDS: dict[str, tuple[str, str]] = {
    "local": ("batchkit.backends.local:LocalJobManager", "batchkit"),
    "slurm": ("batchkit.backends.slurm:SlurmJobManager", "batchkit[slurm]"),
    "htcondor": ("batchkit.backends.htcondor:HTCondorJobManager", "batchkit[htcondor]"),
}

_registered: dict[str, str | type[JobManager]] = {}


def register_backend(name: str, target: str | type[JobManager]) -> None:
    """Register a backend class (or its ``"module:Class"`` path) under ``name`` at run time."""
    _registered[name] = target


def _entry_points() -> dict[str, tuple[Any, str]]:
    """name -> (entry point, name of the distribution declaring it), on every Python >= 3.9."""
    from importlib.metadata import distributions

    found: dict[str, tuple[Any, str]] = {}
    for dist in distributions():
        for ep in dist.entry_points:
            if ep.group == ENTRY_POINT_GROUP:
                found.setdefault(ep.name, (ep, dist.metadata["Name"]))
    return found


def available_backends() -> list[str]:
    """Names of every known backend: built-in, registered at run time and entry points."""
    return sorted(set(BUILTIN_BACKENDS) | set(_registered) | set(_entry_points()))


def _import(path: str, install: str) -> type[JobManager]:
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise MissingDependencyError(
            f"backend module {module_name} cannot be imported ({exc}); install it with: pip install '{install}'"
        ) from exc
    cls: type[JobManager] = getattr(module, attr)
    return cls


def get_backend_class(name: str) -> type[JobManager]:
    """The JobManager class registered as ``name``."""
    if name in _registered:
        target = _registered[name]
        return _import(target, name) if isinstance(target, str) else target
    if name in BUILTIN_BACKENDS:
        return _import(*BUILTIN_BACKENDS[name])
    eps = _entry_points()
    if name in eps:
        entry_point, dist_name = eps[name]
        try:
            cls: type[JobManager] = entry_point.load()
        except ImportError as exc:
            raise MissingDependencyError(
                f"backend {name!r} (from {dist_name}) cannot be loaded: {exc}; "
                f"install its dependencies, e.g. pip install --force-reinstall '{dist_name}'"
            ) from exc
        return cls
    known = ", ".join(available_backends())
    raise UnknownBackendError(f"unknown backend {name!r}; known backends: {known}")


def get_job_manager(backend: str, **options: Any) -> JobManager:
    """A ready-to-use JobManager for ``backend``, configured with ``options``.

    >>> import batchkit as bk
    >>> mgr = bk.get_job_manager("local", max_parallel=4)
    """
    cls = get_backend_class(backend)
    try:
        return cls(**options)
    except TypeError as exc:  # an option the backend does not take
        raise SpecError(f"backend {backend!r}: {exc}") from exc
