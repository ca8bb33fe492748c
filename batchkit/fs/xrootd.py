"""``root://`` and ``xroot://`` through the XRootD Python bindings (PyPI ``xrootd``).

One ``XRootD.client.FileSystem`` per server (the client multiplexes every request of the
process over one connection per server). Metadata calls are synchronous except where many
are needed at once: :func:`wave` sends a whole list of them asynchronously and waits for all
answers, which turns 1,000 renames into one round trip's worth of waiting.

Bulk transfers (:mod:`batchkit.fs.xrootd_copy`) use one ``CopyProcess`` with ``parallel``
jobs, the engine ``xrdcp`` itself runs on.

Tokens and proxies: the XRootD client reads ``BEARER_TOKEN``/``BEARER_TOKEN_FILE`` (ztn) and
``X509_USER_PROXY`` (gsi) itself; batchkit passes the environment through untouched. A
token in the URL's query (``?authz=...``) is forwarded on every call and redacted in messages.

Two client defaults would defeat batchkit's retries and failover, so unless the user set them
in the environment batchkit changes them: ``XRD_CONNECTIONRETRY`` (default 5 attempts over two
minutes, hiding a dead server) becomes 1, and ``XRD_STREAMERRORWINDOW`` (default 1800: after a
connection error the client refuses to reconnect to that server for 30 minutes -- measured: a
restarted server stayed unreachable) becomes 0. :mod:`batchkit.fs.retry` does the waiting.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Callable

from XRootD import client as xrd_client
from XRootD.client.flags import DirListFlags, MkDirFlags, QueryCode, StatInfoFlags

from batchkit.errors import FileNotFound, TransferError, TransientTransferError, UnsupportedOperation
from batchkit.fs import checksums
from batchkit.fs.base import FileSystem, GetItem, Outcome, ProgressSink, PutItem, TransferOptions
from batchkit.fs.classify import xrootd_status
from batchkit.fs.info import FileInfo
from batchkit.fs.url import URL

if "XRD_CONNECTIONRETRY" not in os.environ:
    xrd_client.EnvPutInt("ConnectionRetry", 1)
if "XRD_STREAMERRORWINDOW" not in os.environ:
    xrd_client.EnvPutInt("StreamErrorWindow", 0)

XRD_IS_DIR = int(StatInfoFlags.IS_DIR)


def raise_for(status: Any, url: URL) -> None:
    """Raise the typed error for a failed ``XRootDStatus`` (nothing when it is ok)."""
    if not status.ok:
        raise xrootd_status(int(status.code), int(status.errno), str(status.message), url.display())


def error_for(status: Any, url: URL) -> TransferError:
    return xrootd_status(int(status.code), int(status.errno), str(status.message), url.display())


def request_path(url: URL) -> str:
    """The path (plus opaque query) sent in requests to the server."""
    return url.path + (f"?{url.query}" if url.query else "")


def server_url(url: URL) -> str:
    return f"{url.scheme}://{url.netloc}"


def wave(
    calls: Sequence[Callable[[Callable[..., None]], Any]], timeout: float, window: int = 256
) -> list[tuple[Any, Any]]:
    """Run asynchronous XRootD calls concurrently; ``[(status, response), ...]`` in order.

    Each element of ``calls`` receives the callback to pass as ``callback=`` and returns the
    submission status (a failed submission counts as the answer). At most ``window`` calls
    are in flight: servers throttle some requests (xrootd 5.5 answers "wait 30 s" to more than
    about 8 concurrent checksum queries, see :data:`CHECKSUM_WINDOW`).
    """
    results: list[tuple[Any, Any]] = [(None, None)] * len(calls)
    slots = threading.BoundedSemaphore(max(1, window))
    answered = threading.Semaphore(0)

    def make_callback(i: int) -> Callable[..., None]:
        def callback(status: Any, response: Any, *hosts: Any) -> None:
            results[i] = (status, response)
            slots.release()
            answered.release()

        return callback

    for i, call in enumerate(calls):
        slots.acquire()
        callback = make_callback(i)
        submitted = call(callback)
        if not submitted.ok:
            callback(submitted, None)
    limit = timeout + 30
    for _ in calls:
        if not answered.acquire(timeout=limit):
            raise TransientTransferError(f"no answer from the XRootD server within {limit:.0f} s")
    return results


#: Concurrent checksum queries per wave (more makes xrootd 5.5 stall the client for 30 s).
CHECKSUM_WINDOW = 4


class XRootDFileSystem(FileSystem):
    """XRootD servers (EOS, dCache's xrootd door, XCache, plain xrootd)."""

    schemes = ("root", "xroot", "roots", "xroots")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._no_checksum: set[tuple[str, str]] = set()
        self._algorithms: dict[str, frozenset[str]] = {}

    def client(self, url: URL) -> Any:
        """The shared ``XRootD.client.FileSystem`` of ``url``'s server."""
        key = server_url(url)
        with self._lock:
            fs = self._clients.get(key)
            if fs is None:
                fs = xrd_client.FileSystem(key)
                self._clients[key] = fs
            return fs

    @property
    def timeout(self) -> int:
        return max(1, int(self.policy.timeout))

    # ---------------------------------------------------------------- metadata
    def stat(self, url: URL) -> FileInfo:
        status, info = self.client(url).stat(request_path(url), timeout=self.timeout)
        raise_for(status, url)
        return _file_info(url, url.name, info)

    def listdir(self, url: URL) -> list[FileInfo]:
        status, listing = self.client(url).dirlist(request_path(url), DirListFlags.STAT, timeout=self.timeout)
        raise_for(status, url)
        return [_file_info(url.join(entry.name), entry.name, entry.statinfo) for entry in listing]

    def mkdir(self, url: URL, parents: bool = True) -> None:
        flags = MkDirFlags.MAKEPATH if parents else MkDirFlags.NONE
        status, _ = self.client(url).mkdir(request_path(url), flags, timeout=self.timeout)
        if not status.ok:
            error = error_for(status, url)
            if not self._is_dir(url):  # mkdir of an existing directory is fine
                raise error

    def _is_dir(self, url: URL) -> bool:
        try:
            return self.stat(url).is_dir
        except TransferError:
            return False

    def remove_file(self, url: URL) -> None:
        status, _ = self.client(url).rm(request_path(url), timeout=self.timeout)
        raise_for(status, url)

    def remove_dir(self, url: URL) -> None:
        status, _ = self.client(url).rmdir(request_path(url), timeout=self.timeout)
        raise_for(status, url)

    def rename(self, src: URL, dst: URL) -> None:
        status, _ = self.client(src).mv(request_path(src), request_path(dst), timeout=self.timeout)
        raise_for(status, dst)

    def offers_checksum(self, url: URL, algorithm: str) -> bool:
        """Whether the server is configured for ``algorithm`` (``query config chksum``, cached)."""
        key = server_url(url)
        with self._lock:
            known = self._algorithms.get(key)
        if known is None:
            status, response = self.client(url).query(QueryCode.CONFIG, "chksum", timeout=self.timeout)
            raise_for(status, url)
            known = parse_checksum_config(bytes(response or b""))
            with self._lock:
                self._algorithms[key] = known
        return checksums.check_algorithm(algorithm) in known

    def server_checksum(self, url: URL, algorithm: str) -> str | None:
        algo = checksums.check_algorithm(algorithm)
        if (server_url(url), algo) in self._no_checksum or not self.offers_checksum(url, algo):
            return None
        status, response = self.client(url).query(QueryCode.CHECKSUM, _checksum_query(url, algo), timeout=self.timeout)
        return self.parse_checksum_answer(url, algo, status, response)

    def parse_checksum_answer(self, url: URL, algo: str, status: Any, response: Any) -> str | None:
        """The hex checksum in a ``query checksum`` answer; None if the server lacks ``algo``."""
        if not status.ok:
            error = error_for(status, url)
            if isinstance(error, UnsupportedOperation) or "not supported" in str(error).lower():
                self._no_checksum.add((server_url(url), algo))
                return None
            raise error
        text = bytes(response or b"").decode("ascii", "replace").strip("\x00 \n")
        name, _, value = text.partition(" ")
        if name.lower() != algo:  # the server answers with the one algorithm it is configured for
            self._no_checksum.add((server_url(url), algo))
            return None
        return checksums.normalise(algo, value)

    def remove_tree(self, url: URL) -> None:
        """Depth-first delete, each directory's files removed in one asynchronous wave."""
        entries = self.listdir(url)
        for entry in entries:
            if entry.is_dir:
                self.remove_tree(url.join(entry.name))
        files = [url.join(e.name) for e in entries if not e.is_dir]
        from batchkit.fs.xrootd_copy import _rm_call

        answers = wave([_rm_call(self, f, self.timeout) for f in files], self.timeout)
        for f, (status, _) in zip(files, answers):
            if not status.ok:
                error = error_for(status, f)
                if not isinstance(error, FileNotFound):
                    raise error
        self.remove_dir(url)

    # ---------------------------------------------------------------- transfers
    def upload(self, local: Path, url: URL, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        from batchkit.fs.xrootd_copy import run_copy_jobs

        ((status, _),) = run_copy_jobs([(str(local), str(url))], 1, progress, [pos], cancel)
        raise_for(status, url)

    def download(self, url: URL, local: Path, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        from batchkit.fs.xrootd_copy import run_copy_jobs

        ((status, _),) = run_copy_jobs([(str(url), str(local))], 1, progress, [pos], cancel)
        raise_for(status, url)

    def put_many(
        self, items: Sequence[PutItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        from batchkit.fs.xrootd_copy import put_many

        return put_many(self, items, options, progress, cancel)

    def get_many(
        self, items: Sequence[GetItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        from batchkit.fs.xrootd_copy import get_many

        return get_many(self, items, options, progress, cancel)


def parse_checksum_config(answer: bytes) -> frozenset[str]:
    """The algorithms in a ``query config chksum`` answer (``b"0:adler32\\n"``; ``b"chksum"`` = none)."""
    names = set()
    for line in answer.decode("ascii", "replace").replace("\x00", "").split():
        for entry in line.split(","):
            number, sep, name = entry.partition(":")
            if sep and number.strip().isdigit() and name.strip():
                names.add(name.strip().lower())
    return frozenset(names)


def _checksum_query(url: URL, algo: str) -> str:
    query = f"cks.type={algo}"
    return url.path + "?" + (f"{url.query}&{query}" if url.query else query)


def _file_info(url: URL, name: str, info: Any) -> FileInfo:
    return FileInfo(
        url=url.display(),
        name=name,
        size=int(info.size),
        is_dir=bool(int(info.flags) & XRD_IS_DIR),
        mtime=float(info.modtime) if getattr(info, "modtime", None) else None,
    )
