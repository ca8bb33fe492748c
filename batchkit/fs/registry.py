"""Which :class:`~batchkit.fs.base.FileSystem` serves a URL scheme: lazy, fsspec-like.

Nothing protocol-specific is imported until a URL of that scheme is used, so ``import
batchkit.fs`` works without the XRootD or gfal2 bindings installed. Each built-in scheme has a
list of candidate implementations in order of preference; the first whose dependencies
import is used, and when none does, :class:`~batchkit.errors.MissingDependencyError` names
what to install:

==========================  =================================  ==========================
scheme                      preferred implementation           fallback
==========================  =================================  ==========================
file, plain paths           :mod:`batchkit.fs.local`           --
root, xroot, roots, xroots  :mod:`batchkit.fs.xrootd` (PyPI    gfal2
                            ``xrootd``)
dav, davs, http, https      :mod:`batchkit.fs.webdav` (PyPI    gfal2
                            ``urllib3``)
gsiftp, ftp, srm, ...       :mod:`batchkit.fs.gfal` (gfal2     --
                            Python bindings)
==========================  =================================  ==========================

Other schemes go to gfal2 when one of its loaded plugins serves them (``sftp`` excepted: its
gfal2 plugin silently truncates files above 1-2 MB). Third-party packages add schemes with
an entry point::

    [project.entry-points."batchkit.filesystems"]
    s3 = "mypkg.s3fs:S3FileSystem"

and :func:`register_filesystem` does the same at run time (an instance, a class or a
``"module:Class"`` path).
"""

from __future__ import annotations

import importlib
import sys
import threading
from typing import TYPE_CHECKING, Any, Union

from batchkit.errors import MissingDependencyError, UnsupportedScheme

if TYPE_CHECKING:
    from batchkit.fs.base import FileSystem

ENTRY_POINT_GROUP = "batchkit.filesystems"

GFAL2_INSTALL = (
    "the gfal2 Python bindings: on Debian/Ubuntu `apt-get install gfal2 gfal2-plugin-file gfal2-plugin-xrootd "
    "gfal2-plugin-http gfal2-plugin-gridftp python3-gfal2` (in a virtualenv of the same Python version, "
    "link the module in: bash tests/services/gfal2-python.sh VENV); on EL: `dnf install python3-gfal2 gfal2-all`"
)

_GFAL = ("batchkit.fs.gfal:GfalFileSystem", GFAL2_INSTALL)

#: scheme -> candidate implementations ("module:Class", what to install), preferred first
BUILTIN: dict[str, tuple[tuple[str, str], ...]] = {
    "file": (("batchkit.fs.local:LocalFileSystem", "batchkit"),),
    **{
        s: (("batchkit.fs.xrootd:XRootDFileSystem", "pip install 'batchkit[xrootd]'"), _GFAL)
        for s in ("root", "xroot", "roots", "xroots")
    },
    **{
        s: (("batchkit.fs.webdav:WebDAVFileSystem", "pip install 'batchkit[webdav]'"), _GFAL)
        for s in ("dav", "davs", "http", "https")
    },
    **{s: (_GFAL,) for s in ("gsiftp", "ftp", "srm")},
}

#: schemes refused on purpose, with the reason
REFUSED: dict[str, str] = {
    "sftp": "gfal2's sftp plugin silently truncates files larger than ~1-2 MB, so batchkit does not offer it",
}

Target = Union[str, "type[FileSystem]", "FileSystem"]

_lock = threading.Lock()
_registered: dict[str, Target] = {}
_instances: dict[str, FileSystem] = {}  # "module:Class" or id -> the shared instance
_by_scheme: dict[str, FileSystem] = {}  # scheme as asked for -> its filesystem (the fast path)


def register_filesystem(scheme: str, target: Target) -> None:
    """Serve ``scheme`` with ``target`` (an instance, a class, or ``"module:Class"``) from now on."""
    with _lock:
        _registered[scheme.lower()] = target
        _instances.pop(scheme.lower(), None)
        _by_scheme.clear()


def _entry_points() -> dict[str, Any]:
    from importlib.metadata import entry_points

    if sys.version_info >= (3, 10):
        eps = entry_points(group=ENTRY_POINT_GROUP)
    else:  # pragma: no cover - Python 3.9
        eps = entry_points().get(ENTRY_POINT_GROUP, [])
    return {ep.name: ep for ep in eps}


def known_schemes() -> list[str]:
    """Every scheme with a registered implementation (importable or not)."""
    return sorted(set(BUILTIN) | set(_registered) | set(_entry_points()))


def _instance_of(key: str, cls: type[FileSystem]) -> FileSystem:
    with _lock:
        fs = _instances.get(key)
        if fs is None:
            fs = cls()
            _instances[key] = fs
        return fs


def _load(path: str) -> type[FileSystem]:
    module_name, _, attr = path.partition(":")
    module = importlib.import_module(module_name)
    cls: type[FileSystem] = getattr(module, attr)
    return cls


def get_filesystem(scheme: str) -> FileSystem:
    """The shared :class:`FileSystem` for ``scheme`` (created on first use)."""
    fs = _by_scheme.get(scheme)
    if fs is not None:
        return fs
    fs = _lookup(scheme.lower())
    with _lock:
        _by_scheme[scheme] = fs
    return fs


def _lookup(scheme: str) -> FileSystem:
    if scheme in _registered:
        target = _registered[scheme]
        if isinstance(target, str):
            return _instance_of(target, _load(target))
        if isinstance(target, type):
            return _instance_of(f"{target.__module__}:{target.__qualname__}", target)
        return target
    if scheme in BUILTIN:
        problems = []
        for path, install in BUILTIN[scheme]:
            try:
                cls = _load(path)
            except ImportError as exc:
                problems.append((path, install, exc))
                continue
            return _instance_of(path, cls)
        first_path, first_install, first_exc = problems[0]
        alternatives = "; or ".join(install for _, install, _ in problems[1:])
        raise MissingDependencyError(
            f"{scheme}:// needs {first_path.split(':')[0]}, which cannot be imported ({first_exc}); install it with: "
            f"{first_install}" + (f"; or {alternatives}" if alternatives else "")
        )
    if scheme in REFUSED:
        raise UnsupportedScheme(f"{scheme}:// is not supported: {REFUSED[scheme]}")
    eps = _entry_points()
    if scheme in eps:
        try:
            cls = eps[scheme].load()
        except ImportError as exc:
            dist = getattr(eps[scheme], "dist", None)
            hint = f" (from {dist.name})" if dist is not None else ""
            raise MissingDependencyError(
                f"filesystem for {scheme}://{hint} cannot be loaded: {exc}; install its dependencies"
            ) from exc
        return _instance_of(f"entry-point:{scheme}", cls)
    gfal = _gfal_for(scheme)
    if gfal is not None:
        return gfal
    raise UnsupportedScheme(f"unknown URL scheme {scheme!r}; known: {', '.join(known_schemes())}")


def _gfal_for(scheme: str) -> FileSystem | None:
    """gfal2's filesystem when one of its loaded plugins serves ``scheme``, else None."""
    try:
        cls = _load(_GFAL[0])
    except ImportError:
        return None
    fs = _instance_of(_GFAL[0], cls)
    serves = getattr(fs, "serves", None)
    return fs if callable(serves) and serves(scheme) else None


def reset() -> None:
    """Forget run-time registrations and shared instances (for tests)."""
    with _lock:
        _registered.clear()
        _instances.clear()
        _by_scheme.clear()
