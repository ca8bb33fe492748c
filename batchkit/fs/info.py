"""Values the transfer layer hands back: file metadata, copy results, progress reports."""

from __future__ import annotations

from typing import Callable, Optional

import attrs

from batchkit.errors import TransferError


@attrs.frozen
class FileInfo:
    """What :func:`batchkit.fs.stat` and :func:`batchkit.fs.listdir` know about one entry.

    ``url`` is the entry's full (redacted) URL, or a plain path for local files; ``size`` is in
    bytes (0 for directories where the server does not say); ``mtime`` is seconds since the
    epoch, or None when the protocol does not report it.
    """

    url: str
    name: str
    size: int
    is_dir: bool
    mtime: Optional[float] = None

    @property
    def is_file(self) -> bool:
        return not self.is_dir


@attrs.frozen(eq=False)
class CopyResult:
    """The outcome of one (source, destination) pair of :func:`batchkit.fs.copy_many`.

    ``error`` is None on success, otherwise the typed error of the *last* attempt (after
    retries and failover). ``checksum`` is ``"adler32:0a1b2c3d"``-style when a checksum was
    compared, None when only the size was checked. ``src``/``dst`` are the URLs actually
    used (after failover), redacted.
    """

    src: str
    dst: str
    error: Optional[TransferError] = None
    size: Optional[int] = None
    checksum: Optional[str] = None
    attempts: int = 1

    @property
    def ok(self) -> bool:
        return self.error is None


@attrs.frozen
class TransferProgress:
    """A progress report: bytes of the current transfer(s) and files finished so far.

    ``bytes_total`` is the sum of the sizes of every file of the call (None while unknown).
    Reports arrive from worker threads; a callback must be quick and thread-safe.
    """

    bytes_done: int
    bytes_total: Optional[int]
    files_done: int
    files_total: int
    files_failed: int = 0


ProgressCallback = Callable[[TransferProgress], None]
