"""``file://`` URLs and plain paths: the local filesystem (and shared filesystems mounted on it).

Writes go to a temporary sibling and ``os.replace`` onto the destination, so a reader never
sees half a file, even on NFS/CephFS/EOS-FUSE mounts where rename within a directory is atomic.
There is no server to ask for checksums: :meth:`LocalFileSystem.server_checksum` is None
and ``checksum()`` reads the file.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat as stat_flags
import threading
from pathlib import Path

from batchkit.errors import FileExists, TransferError
from batchkit.fs import checksums
from batchkit.fs.base import FileSystem, ProgressSink, TransferOptions, compare_checksums, wanted_algorithm
from batchkit.fs.classify import os_error
from batchkit.fs.info import FileInfo
from batchkit.fs.url import URL

_CHUNK = 8 * 1024 * 1024


def _info(path: str, name: str, st: os.stat_result) -> FileInfo:
    return FileInfo(url=path, name=name, size=st.st_size, is_dir=stat_flags.S_ISDIR(st.st_mode), mtime=st.st_mtime)


class LocalFileSystem(FileSystem):
    """Files on this machine."""

    schemes = ("file",)

    def stat(self, url: URL) -> FileInfo:
        path = url.local_path()
        try:
            return _info(path, url.name, os.stat(path))
        except OSError as exc:
            raise os_error(exc, path) from None

    def listdir(self, url: URL) -> list[FileInfo]:
        path = url.local_path()
        entries = []
        try:
            with os.scandir(path) as scan:
                for entry in scan:
                    try:
                        st = entry.stat()
                    except FileNotFoundError:  # removed while we listed
                        continue
                    entries.append(_info(entry.path, entry.name, st))
        except OSError as exc:
            raise os_error(exc, path) from None
        return entries

    def mkdir(self, url: URL, parents: bool = True) -> None:
        path = url.local_path()
        try:
            if parents:
                os.makedirs(path, exist_ok=True)
            elif not os.path.isdir(path):
                os.mkdir(path)
        except FileExistsError:
            raise FileExists("exists and is not a directory", path) from None
        except OSError as exc:
            raise os_error(exc, path) from None

    def remove_file(self, url: URL) -> None:
        path = url.local_path()
        try:
            if os.path.isdir(path) and not os.path.islink(path):
                raise TransferError("is a directory (remove it recursively)", path)
            os.unlink(path)
        except OSError as exc:
            raise os_error(exc, path) from None

    def remove_dir(self, url: URL) -> None:
        path = url.local_path()
        try:
            os.rmdir(path)
        except OSError as exc:
            raise os_error(exc, path) from None

    def remove_tree(self, url: URL) -> None:
        path = url.local_path()
        if not os.path.lexists(path):
            raise os_error(FileNotFoundError(2, "No such file or directory"), path)
        try:
            shutil.rmtree(path)
        except OSError as exc:
            raise os_error(exc, getattr(exc, "filename", None) or path) from None

    def rename(self, src: URL, dst: URL) -> None:
        try:
            os.replace(src.local_path(), dst.local_path())
        except OSError as exc:
            raise os_error(exc, dst.local_path()) from None

    def server_checksum(self, url: URL, algorithm: str) -> str | None:
        return None

    def _verify_remote(self, remote: URL, local: Path, options: TransferOptions, shown: URL) -> str | None:
        """Local to local: compare checksums only when asked for explicitly (both are re-reads)."""
        algo = wanted_algorithm(options.checksum)
        if algo is None or options.checksum == "auto":
            return None
        return compare_checksums(algo, checksums.of_file(local, algo), self.checksum(remote, algo), shown)

    def checksum(self, url: URL, algorithm: str) -> str:
        algo = checksums.check_algorithm(algorithm)
        try:
            return checksums.of_file(url.local_path(), algo)
        except OSError as exc:
            raise os_error(exc, url.local_path()) from None

    def upload(self, local: Path, url: URL, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        copy_file(local, Path(url.local_path()), pos, progress, cancel)

    def download(self, url: URL, local: Path, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        copy_file(Path(url.local_path()), local, pos, progress, cancel)


def copy_file(src: Path, dst: Path, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
    """Copy bytes src -> dst (dst created or truncated), in-kernel where Linux allows it."""
    try:
        with open(src, "rb") as fin, open(dst, "wb") as fout:
            done = 0
            fd_in, fd_out = fin.fileno(), fout.fileno()
            use_kernel = hasattr(os, "copy_file_range") or hasattr(os, "sendfile")
            while True:
                if cancel.is_set():
                    raise TransferError("cancelled", str(dst))
                n = _kernel_copy(fd_in, fd_out, done) if use_kernel else 0
                if n < 0:  # kernel copy not possible here: fall back to read/write
                    use_kernel = False
                    n = 0
                if not use_kernel:
                    chunk = fin.read(_CHUNK)
                    if chunk:
                        fout.write(chunk)
                    n = len(chunk)
                if n == 0:
                    break
                done += n
                progress.bytes(pos, done)
    except IsADirectoryError:
        raise TransferError("is a directory (copy it recursively)", str(src)) from None
    except OSError as exc:
        raise os_error(exc, exc.filename or str(dst)) from None


def _kernel_copy(fd_in: int, fd_out: int, offset: int) -> int:
    """Copy up to one chunk in the kernel; bytes copied, 0 at EOF, -1 when unsupported."""
    try:
        if hasattr(os, "copy_file_range"):
            return os.copy_file_range(fd_in, fd_out, _CHUNK)
        return os.sendfile(fd_out, fd_in, None, _CHUNK)
    except OSError as exc:
        if offset == 0 and exc.errno in (errno.EXDEV, errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.EBADF):
            return -1
        raise
