"""The single-file operations of :mod:`batchkit.fs`: stat, exists, listdir, mkdir, remove, checksum.

Each takes a path, a URL or a :class:`~batchkit.fs.Location`, picks the protocol by scheme,
and retries transient failures with backoff and failover across the location's bases
(:mod:`batchkit.fs.retry`). Errors are typed (:mod:`batchkit.errors`) and name the URL and
the server's own message.
"""

from __future__ import annotations

from batchkit.errors import FileNotFound, TransferError
from batchkit.fs import checksums
from batchkit.fs.base import FileSystem
from batchkit.fs.info import FileInfo
from batchkit.fs.location import PathLike, candidates
from batchkit.fs.registry import get_filesystem
from batchkit.fs.retry import RetryPolicy, default_policy, with_failover
from batchkit.fs.url import URL


def filesystem_for(url: URL) -> FileSystem:
    return get_filesystem(url.scheme)


def stat(path: PathLike, *, retry: RetryPolicy | None = None) -> FileInfo:
    """Size, type and modification time of a file or directory."""
    return with_failover(candidates(path), lambda u: filesystem_for(u).stat(u), retry or default_policy())


def exists(path: PathLike, *, retry: RetryPolicy | None = None) -> bool:
    """Whether ``path`` exists (False only on a definite "no such file"; other errors raise)."""
    try:
        stat(path, retry=retry)
    except FileNotFound:
        return False
    return True


def listdir(path: PathLike, *, retry: RetryPolicy | None = None) -> list[FileInfo]:
    """The entries of a directory, sorted by name."""
    entries = with_failover(candidates(path), lambda u: filesystem_for(u).listdir(u), retry or default_policy())
    return sorted(entries, key=lambda e: e.name)


def mkdir(path: PathLike, *, parents: bool = True, retry: RetryPolicy | None = None) -> None:
    """Create a directory (by default with its parents); an existing directory is not an error."""
    with_failover(candidates(path), lambda u: filesystem_for(u).mkdir(u, parents=parents), retry or default_policy())


def remove(
    path: PathLike, *, recursive: bool = False, missing_ok: bool = False, retry: RetryPolicy | None = None
) -> None:
    """Delete a file, or a directory with ``recursive=True`` (an empty one without).

    ``missing_ok=True`` makes a path that does not exist a success.
    """

    def run(url: URL) -> None:
        fs = filesystem_for(url)
        info = fs.stat(url)
        if not info.is_dir:
            fs.remove_file(url)
        elif recursive:
            fs.remove_tree(url)
        else:
            try:
                fs.remove_dir(url)
            except TransferError as exc:
                raise TransferError(
                    f"is a directory and could not be removed ({exc}); use recursive=True", url.display()
                ) from None

    try:
        with_failover(candidates(path), run, retry or default_policy())
    except FileNotFound:
        if not missing_ok:
            raise


def checksum(path: PathLike, algorithm: str = "adler32", *, retry: RetryPolicy | None = None) -> str:
    """The ``adler32`` (8 hex digits) or ``md5`` (32 hex digits) of a file.

    The server's own checksum when it offers one (XRootD, XrdHttp, GridFTP); otherwise the
    file is read through and checksummed here (a full download: slow for large files).
    """
    algo = checksums.check_algorithm(algorithm)
    return with_failover(candidates(path), lambda u: filesystem_for(u).checksum(u, algo), retry or default_policy())
