"""batchkit job states as law's status dicts (pure functions, no I/O).

law's job managers answer a query with ``{job_id, status, code, error, extra}`` per job, where
``status`` is one of law's five strings. law itself decides what a failure means (retry or
give up, tolerance, acceptance); the adapter only says what happened:

=================  ==============================================================
batchkit           law
=================  ==============================================================
PENDING            ``pending``
RUNNING            ``running``
FINISHED           ``finished`` (code 0)
FAILED             ``failed`` with the exit code and the wrapper's reason
CANCELLED          ``failed`` ("cancelled ...")
UNKNOWN            the wrapper's exit marker decides; without one the job counts as
                   ``pending`` (``running`` if it started) until it has been unknown
                   for ``lost_after`` seconds, then ``retry`` ("lost ...")
=================  ==============================================================

The wrapper's markers are read first: an exit marker settles a job (the scheduler need not be
asked about it again), a start marker says "running" before the scheduler does.

law's exit codes of ``law_job.sh`` (60 = task failed, 20 = bootstrap failed, ...) come back
unchanged as ``code``, so law prints its own explanation next to them.
"""

from __future__ import annotations

from typing import Any

from batchkit.backends.local import ExitMarker, info_from_exit_marker
from batchkit.model import JobInfo, JobStatus

# law's status strings (law.job.base.BaseJobManager.PENDING, ...); a unit test checks they match.
PENDING = "pending"
RUNNING = "running"
FINISHED = "finished"
RETRY = "retry"
FAILED = "failed"


def status_dict(
    job_id: str,
    status: str,
    code: int | None = None,
    error: str | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The dict law expects from a query, for one job (same keys as law's ``job_status_dict``)."""
    return {"job_id": job_id, "status": status, "code": code, "error": error, "extra": extra or {}}


def law_status(
    job_id: str,
    info: JobInfo | None,
    marker: ExitMarker | None = None,
    started: bool = False,
    unknown_for: float = 0.0,
    lost_after: float = 600.0,
) -> dict[str, Any]:
    """law's view of one job, from the scheduler's last answer and the wrapper's markers.

    ``info`` is what the scheduler said (possibly a while ago; None: never asked), ``marker``
    the wrapper's exit marker if there is one, ``started`` whether the wrapper wrote its start
    marker, ``unknown_for`` how long (seconds) the job has been UNKNOWN without an exit marker.

    The exit marker is the job's own word and wins -- except that the scheduler's "cancelled",
    or its reason for a failure ("TIMEOUT", "OUT_OF_MEMORY", ...), says more than "killed by
    SIGTERM".
    A start marker turns a (possibly outdated) "pending" into "running".
    """
    if info is None:
        info = JobInfo(job_id, JobStatus.UNKNOWN, None, "not asked yet", None)
    explained = info.status is JobStatus.CANCELLED or (info.status is JobStatus.FAILED and bool(info.reason))
    if marker is not None and not explained:
        info = info_from_exit_marker(info.job_id, marker)
    elif info.status is JobStatus.PENDING and started:
        info = JobInfo(info.job_id, JobStatus.RUNNING, None, None, info.native_state)
    extra: dict[str, Any] = {"native_state": info.native_state} if info.native_state else {}
    if info.status is JobStatus.PENDING:
        return status_dict(job_id, PENDING, extra=extra)
    if info.status is JobStatus.RUNNING:
        return status_dict(job_id, RUNNING, extra=extra)
    if info.status is JobStatus.FINISHED:
        return status_dict(job_id, FINISHED, code=0 if info.exit_code is None else info.exit_code, extra=extra)
    if info.status is JobStatus.FAILED:
        reason = info.reason or (f"exit code {info.exit_code}" if info.exit_code is not None else "failed")
        return status_dict(job_id, FAILED, code=info.exit_code, error=reason, extra=extra)
    if info.status is JobStatus.CANCELLED:
        reason = "cancelled" + (f" ({info.reason})" if info.reason and info.reason != "cancelled" else "")
        return status_dict(job_id, FAILED, code=info.exit_code, error=reason, extra=extra)
    # UNKNOWN and no exit marker: the scheduler may lag behind or have forgotten the job
    if unknown_for >= lost_after:
        what = "started but" if started else "never started and"
        error = f"lost: the scheduler no longer knows the job, which {what} left no exit marker"
        return status_dict(job_id, RETRY, error=error, extra=extra)
    return status_dict(job_id, RUNNING if started else PENDING, extra=extra)
