"""Plumbing shared by :mod:`batchkit.fs.xrootd` and :mod:`batchkit.fs.xrootd_copy`.

Status-to-error mapping, the request path of a URL, asynchronous "waves" of requests, and the
client settings batchkit changes at import (see :mod:`batchkit.fs.xrootd`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from XRootD import client as xrd_client
from XRootD.client.flags import QueryCode, StatInfoFlags

from batchkit.errors import TransferError, TransientTransferError
from batchkit.fs.classify import xrootd_status
from batchkit.fs.url import URL

if TYPE_CHECKING:
    from batchkit.fs.xrootd import XRootDFileSystem

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
    are in flight: servers throttle some requests (xrootd answers "wait 30 s" to checksum
    requests beyond its limit, see :data:`CHECKSUM_WINDOW`).
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


#: Concurrent checksum requests (queries, and copy jobs with XrdCl's end2end check). xrootd
#: computes at most ``xrootd.chksum max`` checksums at once (default 4) and answers a request
#: beyond that with "wait 30 s": with 8 at once, 1 in 8 to 2 in 3 bulk uploads of 1,000 files
#: stalled for 30 s (measured, xrootd 5.5); with 4, none in 28.
CHECKSUM_WINDOW = 4


def parse_checksum_config(answer: bytes) -> frozenset[str]:
    """The algorithms in a ``query config chksum`` answer (``b"0:adler32\\n"``; ``b"chksum"`` = none)."""
    names = set()
    for line in answer.decode("ascii", "replace").replace("\x00", "").split():
        for entry in line.split(","):
            number, sep, name = entry.partition(":")
            if sep and number.strip().isdigit() and name.strip():
                names.add(name.strip().lower())
    return frozenset(names)


def checksum_query(url: URL, algo: str) -> str:
    query = f"cks.type={algo}"
    return url.path + "?" + (f"{url.query}&{query}" if url.query else query)


def stat_call(fs: XRootDFileSystem, url: URL) -> Any:
    client = fs.client(url)
    return lambda cb: client.stat(request_path(url), timeout=fs.timeout, callback=cb)


def checksum_call(fs: XRootDFileSystem, url: URL, algo: str) -> Any:
    client = fs.client(url)
    return lambda cb: client.query(QueryCode.CHECKSUM, checksum_query(url, algo), timeout=fs.timeout, callback=cb)


def rm_call(fs: XRootDFileSystem, url: URL, timeout: int) -> Any:
    client = fs.client(url)
    return lambda cb: client.rm(request_path(url), timeout=timeout, callback=cb)


def mv_call(fs: XRootDFileSystem, src: URL, dst: URL) -> Any:
    client = fs.client(src)
    return lambda cb: client.mv(request_path(src), request_path(dst), timeout=fs.timeout, callback=cb)
