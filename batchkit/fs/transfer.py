"""``copy`` and ``copy_many``: move bytes between any two places batchkit can address.

What callers may rely on:

* **No half-written destination.** Every file is written under a temporary sibling name,
  checked (size always; adler32 when the remote side offers it, or the checksum asked for),
  and renamed over the destination only then (XRootD ``mv``, WebDAV ``MOVE``, local
  ``os.replace``). A failed or interrupted copy removes its temporary where the server is
  still reachable.
* **Per-pair results.** :func:`copy_many` never stops at the first failure: it returns one
  :class:`~batchkit.fs.info.CopyResult` per pair, in the order given.
* **Retries only where they can help.** Transient failures (timeouts, refused connections,
  5xx, a server that went away mid-transfer) are retried in rounds with backoff, moving to the
  next base URL of a :class:`~batchkit.fs.Location` first; permanent ones are reported at once.
* **Bulk where the protocol has it.** All uploads to one protocol go to its ``put_many`` in
  one call (one XRootD ``CopyProcess`` with ``parallel`` jobs; gfal2's list ``filecopy``;
  a thread pool elsewhere).

Directions: local -> remote (upload), remote -> local (download), local -> local, and remote
-> remote, which is staged through a temporary local file (no third-party copy yet).
"""

from __future__ import annotations

import logging
import os
import tempfile
import threading
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Callable

import attrs

from batchkit.errors import FileExists, FileNotFound, TransferError, TransientTransferError
from batchkit.fs.base import FileSystem, GetItem, Outcome, PutItem, TransferOptions
from batchkit.fs.classify import os_error
from batchkit.fs.info import CopyResult, ProgressCallback, TransferProgress
from batchkit.fs.location import PathLike, candidates
from batchkit.fs.registry import get_filesystem
from batchkit.fs.retry import RetryPolicy, default_policy, gave_up
from batchkit.fs.url import URL

log = logging.getLogger(__name__)

#: Minimum seconds between two byte-progress reports (file completions always report).
PROGRESS_INTERVAL = 0.2


def copy(
    src: PathLike,
    dst: PathLike,
    *,
    overwrite: bool = True,
    checksum: str | None = "auto",
    retry: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
) -> CopyResult:
    """Copy one file; ``dst`` is the destination *file* (parents are created).

    Raises the typed error of the failure (after retries); returns the
    :class:`~batchkit.fs.info.CopyResult` on success. ``checksum``: ``"auto"`` (adler32 when
    the remote side offers it, else size only), ``"adler32"``/``"md5"`` (required), or None
    (size only).
    """
    (result,) = copy_many(
        [(src, dst)], parallel=1, overwrite=overwrite, checksum=checksum, retry=retry, progress=progress
    )
    if result.error is not None:
        raise result.error
    return result


def copy_many(
    pairs: Iterable[tuple[PathLike, PathLike]],
    *,
    parallel: int = 8,
    overwrite: bool = True,
    checksum: str | None = "auto",
    retry: RetryPolicy | None = None,
    progress: ProgressCallback | None = None,
) -> list[CopyResult]:
    """Copy many files, ``parallel`` at a time; one result per pair, failures included.

    ``progress`` is called (from worker threads, at most every 0.2 s plus once per finished
    file) with a :class:`~batchkit.fs.info.TransferProgress`.
    """
    policy = retry or default_policy()
    options = TransferOptions(checksum=checksum, parallel=max(1, parallel), policy=policy)
    jobs: list[_Pair] = []
    for index, (src, dst) in enumerate(pairs):
        job = _Pair(index)
        try:
            job.srcs = candidates(src)
            job.dsts = candidates(dst)
            for url in (*job.srcs, *job.dsts):
                get_filesystem(url.scheme)  # MissingDependencyError propagates: fix the install first
        except TransferError as exc:
            job.result = CopyResult(src=_show(src), dst=_show(dst), error=exc, attempts=0)
        jobs.append(job)
    tracker = _Tracker(progress, len(jobs))
    _Engine(options, overwrite, tracker).run(jobs)
    results = []
    for job in jobs:
        assert job.result is not None
        results.append(job.result)
    return results


def _show(value: object) -> str:
    if isinstance(value, URL):
        return value.display()
    return str(value)


@attrs.define
class _Pair:
    index: int
    srcs: list[URL] = attrs.field(factory=list)
    dsts: list[URL] = attrs.field(factory=list)
    result: CopyResult | None = None
    last: TransientTransferError | None = None
    src: URL | None = None  # the candidates used in the current round
    dst: URL | None = None
    tries: int = 0  # rounds that ended in a transient failure

    @property
    def bases(self) -> int:
        return max(len(self.srcs), len(self.dsts), 1)


class _Tracker:
    """Aggregates per-file progress into :class:`TransferProgress` reports (thread-safe).

    Running totals, not sums over every file per report: a report costs O(1), so 100,000
    files do not turn progress reporting quadratic.
    """

    def __init__(self, callback: ProgressCallback | None, files_total: int) -> None:
        self.callback = callback
        self.files_total = files_total
        self._sizes: dict[int, int] = {}
        self._size_sum = 0
        self._done: dict[int, int] = {}
        self._done_sum = 0
        self.files_done = 0
        self.files_failed = 0
        self._counted: set[int] = set()
        self._lock = threading.Lock()
        self._last = 0.0

    def sink(self, indices: Sequence[int], last_leg: bool = True) -> _Sink:
        return _Sink(self, indices, last_leg)

    def size(self, index: int, size: int) -> None:
        """The size of pair ``index`` is known (for the ``bytes_total`` of reports)."""
        with self._lock:
            self._size_sum += size - self._sizes.get(index, 0)
            self._sizes[index] = size

    def _set_done(self, index: int, done: int) -> None:
        self._done_sum += done - self._done.get(index, 0)
        self._done[index] = done

    def bytes(self, index: int, done: int) -> None:
        if self.callback is None:
            return
        with self._lock:
            self._set_done(index, done)
            now = time.monotonic()
            if now - self._last < PROGRESS_INTERVAL:
                return
            self._last = now
            report = self._report()
        self.callback(report)

    def finished(self, index: int, ok: bool) -> None:
        with self._lock:
            if index in self._counted:
                return
            self._counted.add(index)
            if ok:
                self.files_done += 1
                if index in self._sizes:
                    self._set_done(index, self._sizes[index])
            else:
                self.files_failed += 1
            if self.callback is None:
                return
            report = self._report()
        self.callback(report)

    def _report(self) -> TransferProgress:
        return TransferProgress(
            bytes_done=self._done_sum,
            bytes_total=self._size_sum if len(self._sizes) == self.files_total else None,
            files_done=self.files_done,
            files_total=self.files_total,
            files_failed=self.files_failed,
        )


@attrs.frozen
class _Sink:
    """A :class:`~batchkit.fs.base.ProgressSink` translating a bulk call's positions to pair indices."""

    tracker: _Tracker
    indices: Sequence[int]
    last_leg: bool = True

    def bytes(self, pos: int, done: int) -> None:
        self.tracker.bytes(self.indices[pos], done)

    def finished(self, pos: int, ok: bool) -> None:
        if ok and self.last_leg:  # failures are counted by the engine: they may still be retried
            self.tracker.finished(self.indices[pos], True)


class _Engine:
    def __init__(self, options: TransferOptions, overwrite: bool, tracker: _Tracker) -> None:
        self.options = options
        self.overwrite = overwrite
        self.tracker = tracker
        self.cancel = threading.Event()
        self.round = 0

    def run(self, jobs: list[_Pair]) -> None:
        policy = self.options.policy
        for job in jobs:
            if job.result is not None:
                self.tracker.finished(job.index, False)
        pending = [job for job in jobs if job.result is None]
        while pending:
            self.round += 1
            for job in pending:
                job.src = job.srcs[job.tries % len(job.srcs)]
                job.dst = job.dsts[job.tries % len(job.dsts)]
            self._round(pending)
            still = []
            for job in pending:
                if job.result is not None:
                    continue
                job.tries += 1
                if job.tries >= policy.attempts * job.bases:
                    assert job.last is not None
                    self._finish(job, Outcome(error=gave_up(job.last, policy.attempts, job.bases)), final=True)
                else:
                    still.append(job)
            pending = still
            # back off once every base of a pair was tried in this cycle
            cycles = [job.tries // job.bases for job in pending if job.tries % job.bases == 0]
            if cycles:
                delay = policy.delay(max(cycles))
                log.info("%d transfer(s) failed transiently; retrying in %.1f s", len(pending), delay)
                time.sleep(delay)

    # ------------------------------------------------------------------ one round
    def _round(self, jobs: list[_Pair]) -> None:
        puts: dict[int, list[tuple[_Pair, PutItem]]] = {}
        gets: dict[int, list[tuple[_Pair, GetItem]]] = {}
        relays: list[_Pair] = []
        filesystems: dict[int, FileSystem] = {}
        for job in jobs:
            assert job.src is not None and job.dst is not None
            try:
                if not self.overwrite:
                    self._refuse_existing(job.dst)
                if job.src.is_local:
                    item = PutItem(Path(job.src.path), job.dst, self._local_size(job.src))
                    self.tracker.size(job.index, item.size)
                    fs = get_filesystem(job.dst.scheme)
                    filesystems[id(fs)] = fs
                    puts.setdefault(id(fs), []).append((job, item))
                elif job.dst.is_local:
                    fs = get_filesystem(job.src.scheme)
                    filesystems[id(fs)] = fs
                    gets.setdefault(id(fs), []).append((job, GetItem(job.src, Path(job.dst.path))))
                else:
                    relays.append(job)
            except TransferError as exc:
                self._finish(job, Outcome(error=exc))
        for key, group in puts.items():
            self._bulk_put(filesystems[key], group)
        for key, get_group in gets.items():
            self._bulk_get(filesystems[key], get_group)
        chunk = max(1, self.options.parallel)
        for start in range(0, len(relays), chunk):
            self._relay(relays[start : start + chunk])

    def _bulk_put(self, fs: FileSystem, group: list[tuple[_Pair, PutItem]]) -> None:
        items = [item for _, item in group]
        sink = self.tracker.sink([j.index for j, _ in group])
        outcomes = _guarded(lambda: fs.put_many(items, self.options, sink, self.cancel), len(items))
        for (job, _), outcome in zip(group, outcomes):
            self._finish(job, outcome)

    def _bulk_get(self, fs: FileSystem, group: list[tuple[_Pair, GetItem]]) -> None:
        for (job, _), outcome in zip(group, self._get_group(fs, group)):
            self._finish(job, outcome)

    def _get_group(self, fs: FileSystem, group: list[tuple[_Pair, GetItem]], last_leg: bool = True) -> list[Outcome]:
        items = [item for _, item in group]
        sink = self.tracker.sink([j.index for j, _ in group], last_leg=last_leg)
        return _guarded(lambda: fs.get_many(items, self.options, sink, self.cancel), len(items))

    def _relay(self, jobs: list[_Pair]) -> None:
        """remote -> remote through a local temporary directory (two legs, both verified)."""
        with tempfile.TemporaryDirectory(prefix="batchkit-relay-") as tmp:
            gets: dict[int, list[tuple[_Pair, GetItem]]] = {}
            filesystems: dict[int, FileSystem] = {}
            for job in jobs:
                assert job.src is not None
                fs = get_filesystem(job.src.scheme)
                filesystems[id(fs)] = fs
                gets.setdefault(id(fs), []).append((job, GetItem(job.src, Path(tmp) / str(job.index))))
            fetched: list[_Pair] = []
            for key, group in gets.items():
                outcomes = self._get_group(filesystems[key], group, last_leg=False)
                for (job, _), outcome in zip(group, outcomes):
                    if outcome.error is None:
                        fetched.append(job)
                    else:
                        self._finish(job, outcome)
            puts: dict[int, list[tuple[_Pair, PutItem]]] = {}
            for job in fetched:
                assert job.dst is not None
                local = Path(tmp) / str(job.index)
                item = PutItem(local, job.dst, local.stat().st_size)
                self.tracker.size(job.index, item.size)
                fs = get_filesystem(job.dst.scheme)
                filesystems[id(fs)] = fs
                puts.setdefault(id(fs), []).append((job, item))
            for key, put_group in puts.items():
                self._bulk_put(filesystems[key], put_group)

    # ------------------------------------------------------------------ helpers
    def _refuse_existing(self, dst: URL) -> None:
        try:
            get_filesystem(dst.scheme).stat(dst)
        except FileNotFound:
            return
        raise FileExists("destination exists (overwrite=False)", dst.display())

    @staticmethod
    def _local_size(src: URL) -> int:
        path = src.local_path()
        try:
            st = os.stat(path)
        except OSError as exc:
            raise os_error(exc, path) from None
        if os.path.isdir(path):
            raise TransferError("is a directory (copy it recursively)", path)
        return st.st_size

    def _finish(self, job: _Pair, outcome: Outcome, final: bool = False) -> None:
        """Record ``outcome``; a transient error only marks the pair for the next round."""
        error = outcome.error
        if isinstance(error, TransientTransferError) and not final:
            job.last = error
            log.debug("transient failure for %s -> %s: %s", _show(job.src), _show(job.dst), error)
            return
        job.result = CopyResult(
            src=_show(job.src if job.src is not None else (job.srcs[0] if job.srcs else "")),
            dst=_show(job.dst if job.dst is not None else (job.dsts[0] if job.dsts else "")),
            error=error,
            size=outcome.size,
            checksum=outcome.checksum,
            attempts=job.tries + (0 if final else 1),
        )
        self.tracker.finished(job.index, error is None)


def _guarded(call: Callable[[], list[Outcome]], count: int) -> list[Outcome]:
    """``call()``, or its error as every item's outcome (e.g. the server refused the connection)."""
    try:
        return call()
    except TransferError as exc:
        return [Outcome(error=exc) for _ in range(count)]


def default_parallel() -> int:
    """The ``parallel`` used by the CLI when none is given (``BATCHKIT_FS_PARALLEL``, default 8)."""
    return int(os.environ.get("BATCHKIT_FS_PARALLEL", "8"))
