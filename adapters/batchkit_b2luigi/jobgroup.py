"""One batchkit submission shared by every task of a b2luigi worker that uses the same backend.

b2luigi creates one :class:`~batchkit_b2luigi.process.BatchkitProcess` per task and asks each
for its status about once a second, all from luigi's single worker thread. A :class:`JobGroup`
turns that into what a scheduler likes:

* **Submitting.** ``start`` only queues the task's job. The queue is handed to batchkit as *one*
  ``Submission.submit`` (one job array on Slurm, one cluster on HTCondor) when the worker has
  been quiet for a moment (no new start for :data:`QUIET_SECONDS`) or the oldest queued start
  is ``submit_window`` seconds old. luigi checks its running tasks at least once per
  ``wait_interval`` (1 s), so a burst of starts is submitted about a second after its last
  start; the scheduling loop itself is never delayed.
* **Polling.** A status request asks batchkit at most once per ``poll_interval`` -- one
  ``Submission.poll`` for every job of the group, i.e. one scheduler query -- and answers all
  other requests from the record it read then.
* **Restarts.** The job record is a :class:`batchkit.Submission` in a directory derived from
  the settings (:attr:`GroupKey.directory`), and every job is named by its luigi task id. A
  restarted b2luigi process reopens the record: a task whose job is still queued or running
  is *re-attached* (not submitted again, b2luigi issue #204); a task whose job finished is
  done if its outputs are complete; jobs that were queued in memory but never reached the
  scheduler are dropped (marked cancelled) and submitted afresh when luigi starts their tasks.

The record's supervisor lock makes a second b2luigi process on the same record fail its tasks
with a clear message instead of submitting everything twice.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import attrs

from batchkit.errors import BatchkitError, SubmitError, TransientError
from batchkit.model import JobSpec, JobStatus
from batchkit.record import RECORD_NAME, JobRecord, Phase
from batchkit.submission import Submission
from batchkit_b2luigi.settings import GroupKey, WorkerSettings
from batchkit_b2luigi.status import job_outcome

log = logging.getLogger(__name__)

#: Starts this close together are one burst: submit once the worker has been quiet this long.
QUIET_SECONDS = 0.5


@attrs.frozen
class TaskState:
    """What the group knows about one task's job.

    ``outcome`` is ``"running"``, ``"successful"`` or ``"aborted"``; ``record`` the job's
    record once it has one; ``error`` why the job could not be submitted at all.
    """

    outcome: str
    record: JobRecord | None = None
    error: str | None = None


class JobGroup:
    """Queue, submit and poll the jobs of every task that shares one :class:`GroupKey`."""

    def __init__(self, key: GroupKey, worker: WorkerSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.key = key
        self.worker = worker
        self.directory = Path(key.directory)
        self._clock = clock
        self._submission: Submission | None = None
        #: task id -> index of its latest job in the record (this session or earlier ones)
        self._index: dict[str, int] = {}
        #: index -> the record as last read
        self._records: dict[int, JobRecord] = {}
        #: task ids with a live BatchProcess in this worker
        self._attached: set[str] = set()
        #: task id -> spec, waiting for the next submission
        self._pending: dict[str, JobSpec] = {}
        self._first_pending = 0.0
        self._last_pending = 0.0
        self._last_poll: float | None = None
        #: task id -> why its job could not be submitted
        self._errors: dict[str, str] = {}
        #: how often this group called ``Submission.submit`` and ``Submission.refresh`` (each
        #: refresh is at most one status query for all jobs); diagnostics for tests and benchmarks
        self.submits = 0
        self.polls = 0

    # ------------------------------------------------------------------ the record
    def submission(self) -> Submission:
        """The group's submission, opened (or created) on first use.

        Opening takes the record's supervisor lock, settles what a killed predecessor left
        behind (batches caught mid-submit are reconciled with the scheduler by batchkit; jobs
        it had only queued are dropped) and learns which task ran which job.
        """
        if self._submission is not None:
            return self._submission
        if (self.directory / RECORD_NAME).exists():
            sub = Submission.open(self.directory)
        else:
            sub = Submission.create(
                self.directory,
                backend=self.key.backend,
                retries=self.key.retries,
                backend_options=self.key.options,
            )
        try:
            sub.refresh()  # lock + reconcile + one query for jobs a previous session left active
            self.polls += 1
            leftovers = [j.index for j in sub.jobs if j.phase is Phase.NEW]
            if leftovers:
                log.info(
                    "%s: dropping %d jobs a previous b2luigi run queued but never submitted",
                    self.directory,
                    len(leftovers),
                )
                sub.cancel(leftovers)
        except BaseException:
            sub.close()
            raise
        for job in sub.jobs:
            if job.name:
                self._index[job.name] = job.index  # later (newer) jobs of a task win
            self._records[job.index] = job
        self._last_poll = self._clock()
        self._submission = sub
        return sub

    def close(self) -> None:
        """Release the record (and its supervisor lock); the next use opens it again."""
        if self._submission is not None:
            self._submission.close()
            self._submission = None

    @property
    def interrupt_policy(self) -> str:
        """``"cancel"`` or ``"keep"``: the setting, else the backend's own policy."""
        return self.worker.on_interrupt or self.submission().manager.interrupt_policy

    # ------------------------------------------------------------------ start
    def start(self, task_id: str, spec: JobSpec, is_complete: Callable[[], bool]) -> str:
        """Attach ``task_id`` to its job: ``"reattached"``, ``"finished"`` or ``"queued"``.

        A task whose latest job is still waiting, being submitted or at the scheduler is
        re-attached; one whose latest job finished and whose outputs are complete is done;
        anything else (no job yet, a failed or cancelled job, a finished job whose outputs
        are gone) gets a new job, queued for the next submission.
        """
        self.submission()
        self._attached.add(task_id)
        self._errors.pop(task_id, None)
        record = self._latest(task_id)
        if record is not None and record.phase is not Phase.DONE:
            log.info(
                "%s: re-attached to job %s (%s) instead of submitting again",
                task_id,
                record.job_id,
                record.status.value,
            )
            return "reattached"
        if record is not None and record.status is JobStatus.FINISHED and is_complete():
            log.info("%s: job %s already finished successfully", task_id, record.job_id)
            return "finished"
        if record is not None and record.status is JobStatus.FINISHED:
            log.warning("%s: job %s finished but the task is not complete; submitting it again", task_id, record.job_id)
        now = self._clock()
        if not self._pending:
            self._first_pending = now
        self._last_pending = now
        self._pending[task_id] = spec
        if self.worker.submit_window <= 0:
            self.flush()
        return "queued"

    def record(self, task_id: str) -> JobRecord | None:
        """The record of the task's latest job as last read (None if it has none yet)."""
        return self._latest(task_id)

    def _latest(self, task_id: str) -> JobRecord | None:
        index = self._index.get(task_id)
        return None if index is None else self._records.get(index)

    # ------------------------------------------------------------------ status
    def status(self, task_id: str, interrupted: bool = False) -> TaskState:
        """The task's state; may submit the queue and poll batchkit first.

        ``interrupted``: the worker is going down (Ctrl+C). Nothing is submitted or polled, and
        every task counts as running, so luigi hands each to ``terminate`` (the interrupt
        policy) instead of reporting a failure for every job the policy just cancelled.
        """
        if interrupted:
            return TaskState("running", self._latest(task_id))
        if task_id in self._pending:
            self._flush_if_due()
        if task_id not in self._pending and task_id not in self._errors:
            self._poll_if_due()
        if task_id in self._errors:
            return TaskState("aborted", self._latest(task_id), self._errors[task_id])
        if task_id in self._pending:
            return TaskState("running")
        record = self._latest(task_id)
        if record is None:  # cannot happen once started; never crash the worker over it
            return TaskState("running")
        outcome = job_outcome(record)
        if outcome != "running":
            self._attached.discard(task_id)
        return TaskState(outcome, record)

    def _flush_if_due(self) -> None:
        now = self._clock()
        if now - self._last_pending >= QUIET_SECONDS or now - self._first_pending >= self.worker.submit_window:
            self.flush()

    def _poll_if_due(self) -> None:
        if self._last_poll is not None and self._clock() - self._last_poll < self.worker.poll_interval:
            return
        if not any((r := self._latest(t)) is not None and r.phase is not Phase.DONE for t in self._attached):
            return
        self.poll()

    # ------------------------------------------------------------------ submit / poll
    def flush(self) -> None:
        """Hand every queued job to batchkit as one submission (one scheduler submit)."""
        if not self._pending:
            return
        task_ids = list(self._pending)
        specs = [self._pending[t] for t in task_ids]
        self._pending.clear()
        sub = self.submission()
        try:
            indices = sub.add(specs)
        except BatchkitError as exc:
            for task_id in task_ids:
                self._errors[task_id] = f"could not record the job in {self.directory}: {exc}"
            return
        self._index.update(zip(task_ids, indices))
        self._submit(sub)
        self._reread(indices)
        log.info("%s: submitted %d b2luigi tasks as one batch", self.directory, len(indices))

    def poll(self) -> None:
        """One batchkit poll for the whole group: resubmit retries, then one status query."""
        sub = self.submission()
        self._submit(sub)
        self.polls += 1
        sub.refresh()
        self._last_poll = self._clock()
        self._reread(None)

    def _submit(self, sub: Submission) -> None:
        """``sub.submit()`` (new jobs and retries); a refused batch fails its tasks, never the worker."""
        if not any(j.phase is Phase.NEW for j in sub.jobs):
            return
        self.submits += 1
        try:
            sub.submit()
        except TransientError as exc:
            # batchkit kept the intent and reconciles it with the scheduler on the next poll
            log.warning("%s: submission failed transiently (%s); checking again on the next poll", self.directory, exc)
        except SubmitError as exc:
            self._refused(sub, str(exc))
        except BatchkitError as exc:
            self._refused(sub, str(exc))

    def _refused(self, sub: Submission, message: str) -> None:
        """Jobs the scheduler refused go back to NEW in batchkit; cancel them and fail their tasks."""
        refused = [j for j in sub.jobs if j.phase is Phase.NEW]
        if not refused:
            return
        sub.cancel([j.index for j in refused])
        by_index = {index: task_id for task_id, index in self._index.items()}
        for job in refused:
            task_id = by_index.get(job.index)
            if task_id is not None:
                self._errors[task_id] = f"batchkit could not submit the job: {message}"
        log.error("%s: %d jobs were refused: %s", self.directory, len(refused), message)

    def _reread(self, indices: Sequence[int] | None) -> None:
        sub = self.submission()
        wanted = None if indices is None else set(indices)
        for job in sub.jobs:
            if wanted is None or job.index in wanted:
                self._records[job.index] = job

    # ------------------------------------------------------------------ terminate
    def cancel(self, task_ids: Sequence[str]) -> int:
        """Cancel the jobs of ``task_ids`` (queued ones are just dropped); returns how many."""
        dropped = [t for t in task_ids if self._pending.pop(t, None) is not None]
        active = []
        for task_id in task_ids:
            record = self._latest(task_id)
            if task_id not in dropped and record is not None and record.phase is not Phase.DONE:
                active.append(record.index)
        if active:
            self.submission().cancel(active)
            self._reread(active)
        for task_id in task_ids:
            self._attached.discard(task_id)
        return len(dropped) + len(active)

    def shutdown(self) -> tuple[str, int]:
        """The worker is going down (Ctrl+C): apply the interrupt policy to every attached task.

        Returns the policy and how many jobs it concerned. Queued jobs never reached the
        scheduler and are dropped either way; with ``"keep"`` the others keep running and a
        restarted b2luigi process re-attaches to them.
        """
        self._pending.clear()
        attached = sorted(self._attached)
        if not attached or self._submission is None:
            return "keep", 0
        policy = self.interrupt_policy
        if policy == "cancel":
            count = self.cancel(attached)
        else:
            count = sum(1 for t in attached if (r := self._latest(t)) is not None and r.phase is not Phase.DONE)
            self._attached.clear()
        return policy, count

    def job_files(self, task_id: str) -> dict[str, Path]:
        """batchkit's own log and marker files of the task's latest job ({} if it has none)."""
        record = self._latest(task_id)
        if record is None or self._submission is None:
            return {}
        return self._submission.job_files(record.index)


# ---------------------------------------------------------------------- per-process registry
_GROUPS: dict[GroupKey, JobGroup] = {}


def group_for(key: GroupKey, worker: Callable[[], WorkerSettings]) -> JobGroup:
    """The one :class:`JobGroup` of this process for ``key`` (created on first use)."""
    group = _GROUPS.get(key)
    if group is None:
        group = _GROUPS[key] = JobGroup(key, worker())
    return group


def all_groups() -> list[JobGroup]:
    return list(_GROUPS.values())
