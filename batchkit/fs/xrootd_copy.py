"""Bulk XRootD transfers: one ``CopyProcess`` for all files, then asynchronous verify-and-rename.

Uploads (local -> root://) go through three steps, each one call for *all* files:

1. one ``CopyProcess`` with ``parallel`` jobs writes every file to a temporary sibling name
   (``.<name>.bkpart-<hex>``); XrdCl fails a job whose written bytes differ from the source
   size. Checksums (when asked for and the server is configured for them: ``query config
   chksum``, once per server) are compared in one of two ways, chosen by measurement:

   * files up to :data:`IN_JOB_CHECKSUM_MAX` bytes: XrdCl's own ``end2end`` check inside
     the job (C++ computes the source's adler32 and queries the target's); on 1,000 x 10 kB a
     separate query wave cost more client CPU and 3x the wall time. Such jobs run at most
     :data:`IN_JOB_CHECKSUM_PARALLEL` at a time: beyond its ``xrootd.chksum max`` (default 4)
     xrootd makes a client wait 30 s;
   * larger files: a helper thread checksums the sources *while* they are copied and one wave
     of ``query checksum`` calls compares afterwards (XrdCl's ``end2end`` reads the whole
     source again before it starts: 4.4 s instead of 1.9 s for 600 MB);
2. (larger files only) that checksum wave;
3. one wave of ``mv`` calls renames the temporaries over their destinations.

A file that fails any step has its temporary removed and its error reported; the others carry
on. ``KeyboardInterrupt`` cancels the ``CopyProcess`` (its ``should_cancel`` hook), removes
every temporary and re-raises. Downloads mirror this: a ``stat`` wave first (sizes, and "no
such file" before any byte moves), the ``CopyProcess`` into local temporaries, the checks,
then ``os.replace``.

Chunk sizes follow the file size: the client's default (8 MiB x 4 chunks in flight) costs
about 30 % more CPU than needed on 10 kB files, and on a 2-core machine CPU is the limit.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from XRootD import client as xrd_client

from batchkit.errors import TransferError, UnsupportedOperation
from batchkit.fs import checksums
from batchkit.fs.base import (
    GetItem,
    Outcome,
    ProgressSink,
    PutItem,
    TransferOptions,
    compare_checksums,
    discard_failed_downloads,
    temp_name,
    verify_size,
    wanted_algorithm,
)
from batchkit.fs.classify import os_error
from batchkit.fs.interruptible import run_interruptible
from batchkit.fs.url import URL
from batchkit.fs.xrootd_calls import (
    CHECKSUM_WINDOW,
    XRD_IS_DIR,
    checksum_call,
    error_for,
    mv_call,
    rm_call,
    stat_call,
    wave,
)

if TYPE_CHECKING:
    from batchkit.fs.xrootd import XRootDFileSystem

DEFAULT_CHUNK = 8 * 1024 * 1024
MIN_CHUNK = 64 * 1024
#: files up to this size are checksummed by XrdCl inside the copy job (``end2end``)
IN_JOB_CHECKSUM_MAX = 16 * 1024 * 1024
#: at most this many such jobs at once: the server's checksum limit (see CHECKSUM_WINDOW)
IN_JOB_CHECKSUM_PARALLEL = CHECKSUM_WINDOW


def chunking(size: int | None) -> tuple[int, int]:
    """``(chunksize, parallelchunks)`` for a file of ``size`` bytes."""
    if size is None or size > DEFAULT_CHUNK:
        return DEFAULT_CHUNK, 4
    chunk = max(MIN_CHUNK, -(-size // MIN_CHUNK) * MIN_CHUNK)
    return chunk, 1


class _Handler:
    """The ``CopyProgressHandler`` protocol: progress in, cancellation out."""

    def __init__(self, progress: ProgressSink, positions: Sequence[int], cancel: threading.Event) -> None:
        self.progress = progress
        self.positions = positions
        self.cancel = cancel

    def begin(self, job_id: int, total: int, source: Any, target: Any) -> None:
        pass

    def end(self, job_id: int, results: Any) -> None:
        pass

    def update(self, job_id: int, processed: int, total: int) -> None:
        self.progress.bytes(self.positions[job_id - 1], int(processed))

    def should_cancel(self, job_id: int) -> bool:
        return self.cancel.is_set()


def run_copy_jobs(
    jobs: Sequence[tuple[str, str]],
    parallel: int,
    progress: ProgressSink,
    positions: Sequence[int],
    cancel: threading.Event,
    sizes: Sequence[int | None] | None = None,
    in_job_checksums: Sequence[str | None] | None = None,
) -> list[tuple[Any, dict[str, Any]]]:
    """Run one ``CopyProcess`` over ``jobs`` ``[(source, target), ...]``.

    Returns ``(status, results)`` per job; ``results`` holds XrdCl's ``size`` (bytes written;
    XrdCl itself fails a job whose written bytes differ from the source's declared size) and,
    for jobs with an ``in_job_checksums`` algorithm, ``sourceCheckSum``/``targetCheckSum``.
    The process runs in a helper thread so that the calling thread stays interruptible: on
    ``KeyboardInterrupt`` the jobs are cancelled, the helper is joined and the interrupt re-raised.
    """
    process = xrd_client.CopyProcess()
    if parallel > 1 and len(jobs) > 1:
        if in_job_checksums and any(in_job_checksums):
            parallel = min(parallel, IN_JOB_CHECKSUM_PARALLEL)
        process.parallel(min(parallel, len(jobs)))
    for i, (source, target) in enumerate(jobs):
        chunk, in_flight = chunking(sizes[i] if sizes else None)
        algo = in_job_checksums[i] if in_job_checksums else None
        check = {"checksummode": "end2end", "checksumtype": algo} if algo else {}
        process.add_job(source, target, force=True, mkdir=True, chunksize=chunk, parallelchunks=in_flight, **check)
    prepared = process.prepare()
    if not prepared.ok:
        return [(prepared, {})] * len(jobs)

    def run_process() -> Any:
        return process.run(_Handler(progress, positions, cancel))  # the handler polls ``cancel``

    status, results = run_interruptible(run_process, cancel, name="batchkit-xrd-copy")
    answers: list[tuple[Any, dict[str, Any]]] = []
    for i in range(len(jobs)):
        entry = results[i] if results is not None and i < len(results) else None
        if entry and "status" in entry:
            answers.append((entry["status"], dict(entry)))
        else:
            answers.append((status, {}))
    return answers


def in_job_summary(algo: str, results: dict[str, Any], shown: URL) -> str:
    """``"algo:hex"`` from XrdCl's end2end results (XrdCl already failed the job on a mismatch)."""
    source = str(results.get("sourceCheckSum", ""))
    target = str(results.get("targetCheckSum", ""))
    if not source or not target:
        raise TransferError(f"XrdCl reported no {algo} checksums for a verified copy", shown.display())
    return compare_checksums(algo, source, target, shown)


def put_many(
    fs: XRootDFileSystem,
    items: Sequence[PutItem],
    options: TransferOptions,
    progress: ProgressSink,
    cancel: threading.Event,
) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(items)
    algo = wanted_algorithm(options.checksum)
    if algo is not None and items and not fs.offers_checksum(items[0].url, algo):
        if options.checksum != "auto":
            error = UnsupportedOperation(f"the server offers no {algo} checksum", items[0].url.server)
            return _report(progress, [Outcome(error=error)] * len(items))
        algo = None
    tmps = [item.url.with_name(temp_name(item.url.name)) for item in items]
    in_job = [algo if algo and item.size <= IN_JOB_CHECKSUM_MAX else None for item in items]
    later = [i for i in range(len(items)) if algo and in_job[i] is None]
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchkit-cksum")
    try:
        local_sums = None
        if algo is not None and later:  # checksum large sources while they are copied (zlib releases the GIL)
            local_sums = pool.submit(_local_checksums, [items[i].local for i in later], algo, cancel)
        answers = run_copy_jobs(
            [(str(item.local), str(tmp)) for item, tmp in zip(items, tmps)],
            options.parallel,
            progress,
            list(range(len(items))),
            cancel,
            [item.size for item in items],
            in_job,
        )
        summaries: dict[int, str | None] = {}
        for i, (status, results) in enumerate(answers):
            try:
                if not status.ok:
                    raise _upload_error(status, items[i])
                verify_size(items[i].size, int(results.get("size", items[i].size)), items[i].url)
                algo_i = in_job[i]
                if algo_i is not None:
                    summaries[i] = in_job_summary(algo_i, results, items[i].url)
            except TransferError as exc:
                outcomes[i] = Outcome(error=exc)
        live = [i for i in later if outcomes[i] is None]
        if algo is not None and local_sums is not None and live:
            replies = wave([checksum_call(fs, tmps[i], algo) for i in live], fs.timeout, CHECKSUM_WINDOW)
            local = dict(zip(later, local_sums.result()))
            for i, (status, response) in zip(live, replies):
                try:
                    summaries[i] = _compare(fs, tmps[i], items[i].url, algo, status, response, local[i], options)
                except TransferError as exc:
                    outcomes[i] = Outcome(error=exc)
        live = [i for i in range(len(items)) if outcomes[i] is None]
        replies = wave([mv_call(fs, tmps[i], items[i].url) for i in live], fs.timeout)
        for i, (status, _) in zip(live, replies):
            if status.ok:
                outcomes[i] = Outcome(size=items[i].size, checksum=summaries.get(i))
            else:
                outcomes[i] = Outcome(error=error_for(status, items[i].url))
    except BaseException:
        cancel.set()
        _remove_remote_quietly(fs, tmps)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    _remove_remote_quietly(fs, [tmps[i] for i, o in enumerate(outcomes) if o is None or o.error is not None])
    return _report(progress, outcomes)


def get_many(
    fs: XRootDFileSystem,
    items: Sequence[GetItem],
    options: TransferOptions,
    progress: ProgressSink,
    cancel: threading.Event,
) -> list[Outcome]:
    algo = wanted_algorithm(options.checksum)
    outcomes: list[Outcome | None] = [None] * len(items)
    sizes: list[int] = [0] * len(items)
    for i, (status, info) in enumerate(wave([stat_call(fs, item.url) for item in items], fs.timeout)):
        if not status.ok:
            outcomes[i] = Outcome(error=error_for(status, items[i].url))
        elif int(info.flags) & XRD_IS_DIR:
            outcomes[i] = Outcome(error=TransferError("is a directory (copy it recursively)", items[i].url.display()))
        else:
            sizes[i] = int(info.size)
    if algo is not None and items and not fs.offers_checksum(items[0].url, algo):
        if options.checksum != "auto":
            error = UnsupportedOperation(f"the server offers no {algo} checksum", items[0].url.server)
            return _report(progress, [o or Outcome(error=error) for o in outcomes])
        algo = None
    tmps: dict[int, Path] = {}
    try:
        for i in range(len(items)):
            if outcomes[i] is None:
                try:
                    items[i].local.parent.mkdir(parents=True, exist_ok=True)
                    tmps[i] = items[i].local.with_name(temp_name(items[i].local.name))
                except OSError as exc:
                    outcomes[i] = Outcome(error=os_error(exc, str(items[i].local.parent)))
        live = list(tmps)
        in_job = [algo if algo and sizes[i] <= IN_JOB_CHECKSUM_MAX else None for i in live]
        answers = (
            run_copy_jobs(
                [(str(items[i].url), str(tmps[i])) for i in live],
                options.parallel,
                progress,
                live,
                cancel,
                [sizes[i] for i in live],
                in_job,
            )
            if live
            else []
        )
        summaries: dict[int, str | None] = {}
        later: list[int] = []
        for i, algo_i, (status, results) in zip(live, in_job, answers):
            try:
                if not status.ok:
                    raise error_for(status, items[i].url)
                verify_size(sizes[i], tmps[i].stat().st_size, items[i].url)
                if algo_i is not None:
                    summaries[i] = in_job_summary(algo_i, results, items[i].url)
                elif algo is not None:
                    later.append(i)
            except TransferError as exc:
                outcomes[i] = Outcome(error=exc)
            except OSError as exc:
                outcomes[i] = Outcome(error=os_error(exc, str(tmps[i])))
        if algo is not None and later:
            replies = wave([checksum_call(fs, items[i].url, algo) for i in later], fs.timeout, CHECKSUM_WINDOW)
            local = _local_checksums([tmps[i] for i in later], algo, cancel)
            for n, (i, (status, response)) in enumerate(zip(later, replies)):
                try:
                    summaries[i] = _compare(fs, items[i].url, items[i].url, algo, status, response, local[n], options)
                except TransferError as exc:
                    outcomes[i] = Outcome(error=exc)
        for i in live:
            if outcomes[i] is None:
                try:
                    os.replace(tmps[i], items[i].local)
                    outcomes[i] = Outcome(size=sizes[i], checksum=summaries.get(i))
                except OSError as exc:
                    outcomes[i] = Outcome(error=os_error(exc, str(items[i].local)))
    finally:
        discard_failed_downloads(tmps, outcomes)
    return _report(progress, outcomes)


def _report(progress: ProgressSink, outcomes: Sequence[Outcome | None]) -> list[Outcome]:
    final = [o if o is not None else Outcome(error=TransferError("not transferred")) for o in outcomes]
    for pos, outcome in enumerate(final):
        progress.finished(pos, outcome.error is None)
    return final


# ---------------------------------------------------------------------------- helpers
def _local_checksums(paths: Sequence[os.PathLike[str]], algo: str, cancel: threading.Event) -> list[str | None]:
    sums: list[str | None] = []
    for path in paths:
        if cancel.is_set():
            sums.append(None)
            continue
        try:
            sums.append(checksums.of_file(path, algo))
        except OSError:
            sums.append(None)  # the copy reports the missing/unreadable source
    return sums


def _upload_error(status: Any, item: PutItem) -> TransferError:
    """Errors about the local source name the local file, others the destination URL."""
    if int(status.code) == 402 and "(source)" in str(status.message):
        return error_for(status, URL("file", "", str(item.local)))
    return error_for(status, item.url)


def _compare(
    fs: XRootDFileSystem,
    remote: URL,
    shown: URL,
    algo: str,
    status: Any,
    response: Any,
    local: str | None,
    options: TransferOptions,
) -> str | None:
    value = fs.parse_checksum_answer(remote, algo, status, response)
    if value is None or local is None:
        if options.checksum != "auto":
            raise UnsupportedOperation(f"the server offers no {algo} checksum", shown.display())
        return None
    return compare_checksums(algo, local, value, shown)


def _remove_remote_quietly(fs: XRootDFileSystem, urls: Sequence[URL]) -> None:
    """Best-effort removal of temporaries (a dead server cannot be asked; short timeout)."""
    if not urls:
        return
    with contextlib.suppress(Exception):  # the caller's error matters more than a failed clean-up
        wave([rm_call(fs, u, 5) for u in urls], 5)
