"""``BatchkitProcess``: the b2luigi batch system ``batchkit``.

b2luigi's ``SendJobWorker`` creates one :class:`BatchkitProcess` per task and drives it from
luigi's single worker thread: ``run()`` -> :meth:`start_job` once, ``is_alive()`` ->
:meth:`get_job_status` about once a second, and ``terminate()`` -> :meth:`terminate_job` on
Ctrl+C (luigi's ``Worker.__exit__``) or when luigi's ``[worker] timeout`` expires. All the
work is done by the task's :class:`~batchkit_b2luigi.jobgroup.JobGroup`, shared by every task
with the same backend settings, so that starts are submitted together and one poll answers
every status request.

Nothing here raises into luigi for a problem with one job: a task whose job cannot be
submitted (bad settings, a refused submission, a record held by another b2luigi process) is
reported aborted, with the reason in the log and in ``<log dir>/failed_jobs.log``.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import Any

from b2luigi.batch.processes import BatchProcess
from b2luigi.batch.processes import JobStatus as B2luigiStatus
from b2luigi.core.utils import get_log_file_dir

from batchkit.errors import BatchkitError
from batchkit_b2luigi.command import task_job_spec
from batchkit_b2luigi.jobgroup import JobGroup, TaskState, group_for
from batchkit_b2luigi.settings import read_task_settings, read_worker_settings
from batchkit_b2luigi.status import B2LUIGI_STATUS, describe_failure

log = logging.getLogger(__name__)


def interrupted() -> bool:
    """True while luigi's ``Worker.__exit__`` runs because of Ctrl+C (or ``sys.exit``).

    luigi asks every running process ``is_alive()`` and then ``terminate()`` from inside the
    ``with worker:`` block's exit, where the KeyboardInterrupt is the exception being handled.
    No job may be submitted, and no scheduler asked, on the way out.
    """
    return isinstance(sys.exc_info()[1], (KeyboardInterrupt, SystemExit))


class BatchkitProcess(BatchProcess):  # type: ignore[misc]  # b2luigi is untyped
    """Run one b2luigi task as a batchkit job (settings: see :mod:`batchkit_b2luigi.settings`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._group: JobGroup | None = None
        self._error: str | None = None
        self._failure_written = False

    @property
    def task_id(self) -> str:
        return str(self.task.task_id)

    # ------------------------------------------------------------------ the contract
    def start_job(self) -> None:
        """Attach the task to its job: queue a new one, or re-attach to one a killed run left.

        Called exactly once per process. Errors become an aborted task, not an exception.
        """
        try:
            settings = read_task_settings(self.task)
            spec = task_job_spec(self.task, settings)
            self._group = group_for(settings.group, read_worker_settings)
            self._group.start(self.task_id, spec, self.task.complete)
        except (BatchkitError, OSError, ValueError, TypeError, AttributeError) as exc:
            self._error = f"{type(exc).__name__}: {exc}"
            log.error("b2luigi task %s cannot run through batchkit: %s", self.task_id, self._error)

    def get_job_status(self) -> Any:
        """running / successful / aborted -- never ``idle``, never an exception for a job state."""
        if self._error is not None:
            self._write_failure(self._error)
            return B2luigiStatus.aborted
        if self._group is None:  # terminate_job before start_job, or start_job never ran
            return B2luigiStatus.aborted
        try:
            state = self._group.status(self.task_id, interrupted=interrupted())
        except BatchkitError as exc:  # e.g. the record became unreadable: fail this task only
            state = TaskState("aborted", None, f"{type(exc).__name__}: {exc}")
        if state.outcome == "aborted":
            reason = state.error or (describe_failure(state.record) if state.record else "job failed")
            self._write_failure(reason)
        return B2LUIGI_STATUS[state.outcome]

    def terminate_job(self) -> None:
        """Stop the task's job on luigi's timeout; on Ctrl+C apply the interrupt policy.

        Timeout: this job is cancelled. Ctrl+C (luigi terminates every running task): with the
        ``"cancel"`` policy (default of the local backend, or ``batchkit_on_interrupt``) all
        jobs of the worker's group are cancelled in one call; with ``"keep"`` (default of batch
        backends) they keep running and a restarted b2luigi process re-attaches to them.
        """
        if self._group is None:
            return
        timed_out = self.timeout_time is not None and time.time() > float(self.timeout_time)
        try:
            if timed_out:
                self._group.cancel([self.task_id])
                return
            policy, count = self._group.shutdown()
        except BatchkitError as exc:
            log.error("could not stop the job of %s: %s", self.task_id, exc)
            return
        if count and policy == "keep":
            log.warning(
                "%d batchkit jobs keep running; start the b2luigi script again to re-attach to them (record: %s)",
                count,
                self._group.directory,
            )
        elif count:
            log.warning("cancelled %d batchkit jobs (record: %s)", count, self._group.directory)

    # ------------------------------------------------------------------ failure report
    def _write_failure(self, reason: str) -> None:
        """``<log dir>/failed_jobs.log``: which job failed, why, and where its output is."""
        if self._failure_written:
            return
        self._failure_written = True
        log_dir = os.path.abspath(get_log_file_dir(self.task))
        lines = [f"{self._job_id() or 'not submitted'}: {log_dir}", f"  reason: {reason}"]
        if self._group is not None:
            files = self._group.job_files(self.task_id)
            if files:
                lines.append(f"  batchkit logs: {files['stdout']} {files['stderr']}")
            lines.append(f"  batchkit record: {self._group.directory}")
        log.error("b2luigi task %s failed: %s (logs in %s)", self.task_id, reason, log_dir)
        try:
            os.makedirs(log_dir, exist_ok=True)
            with open(os.path.join(log_dir, "failed_jobs.log"), "w") as fh:
                fh.write("\n".join(lines) + "\n")
        except OSError as exc:
            log.warning("cannot write failed_jobs.log into %s: %s", log_dir, exc)

    def _job_id(self) -> str | None:
        if self._group is None:
            return None
        record = self._group.record(self.task_id)
        return record.job_id if record is not None else None
