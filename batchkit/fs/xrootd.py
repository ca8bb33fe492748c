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

import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from XRootD import client as xrd_client
from XRootD.client.flags import DirListFlags, MkDirFlags, QueryCode

from batchkit.errors import FileNotFound, TransferError, UnsupportedOperation
from batchkit.fs import checksums, xrootd_copy
from batchkit.fs.base import FileSystem, GetItem, Outcome, ProgressSink, PutItem, TransferOptions
from batchkit.fs.info import FileInfo
from batchkit.fs.url import URL
from batchkit.fs.xrootd_calls import (
    CHECKSUM_WINDOW,
    XRD_IS_DIR,
    checksum_query,
    error_for,
    parse_checksum_config,
    raise_for,
    request_path,
    rm_call,
    server_url,
    wave,
)

__all__ = ["CHECKSUM_WINDOW", "XRootDFileSystem", "parse_checksum_config", "wave"]


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
        status, response = self.client(url).query(QueryCode.CHECKSUM, checksum_query(url, algo), timeout=self.timeout)
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
        answers = wave([rm_call(self, f, self.timeout) for f in files], self.timeout)
        for f, (status, _) in zip(files, answers):
            if not status.ok:
                error = error_for(status, f)
                if not isinstance(error, FileNotFound):
                    raise error
        self.remove_dir(url)

    # ---------------------------------------------------------------- transfers
    def upload(self, local: Path, url: URL, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        ((status, _),) = xrootd_copy.run_copy_jobs([(str(local), str(url))], 1, progress, [pos], cancel)
        raise_for(status, url)

    def download(self, url: URL, local: Path, pos: int, progress: ProgressSink, cancel: threading.Event) -> None:
        ((status, _),) = xrootd_copy.run_copy_jobs([(str(url), str(local))], 1, progress, [pos], cancel)
        raise_for(status, url)

    def put_many(
        self, items: Sequence[PutItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        return xrootd_copy.put_many(self, items, options, progress, cancel)

    def get_many(
        self, items: Sequence[GetItem], options: TransferOptions, progress: ProgressSink, cancel: threading.Event
    ) -> list[Outcome]:
        return xrootd_copy.get_many(self, items, options, progress, cancel)


def _file_info(url: URL, name: str, info: Any) -> FileInfo:
    return FileInfo(
        url=url.display(),
        name=name,
        size=int(info.size),
        is_dir=bool(int(info.flags) & XRD_IS_DIR),
        mtime=float(info.modtime) if getattr(info, "modtime", None) else None,
    )
