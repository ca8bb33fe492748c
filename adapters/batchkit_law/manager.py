"""law's job manager contract, fulfilled by a batchkit backend.

law drives every remote workflow through a :class:`law.job.base.BaseJobManager`: ``submit``,
``query``, ``cancel`` and ``cleanup``, each also in a *batch* form (a thread pool over chunks)
and a *group* form (one call per group of jobs). This manager declares grouping for all four
and puts every job into one group, so

* one law submission round (every job law submits at once: the first round, and each round
  of retries and newly free ``parallel_jobs`` slots) is ONE batchkit submit -- one Slurm
  array, one HTCondor cluster, one local run -- instead of one ``sbatch`` per job;
* one law poll is at most ONE batchkit query for all active jobs, whatever their round --
  none for jobs whose wrapper already wrote its exit marker, and none at all between
  ``query_interval`` seconds (default 30) while the markers tell how the jobs are doing;
* ``--cancel-jobs`` / ``--cleanup-jobs`` are one batchkit cancel / cleanup.

Job ids are :class:`~batchkit_law.job_id.LawJobId` strings (scheduler id, batch directory, law
job number), stable across ``law run`` processes: ``cast_job_id`` returns them unchanged.
Results keep the order of the ids law asked for (law pairs them with its jobs by position).

Errors from batchkit propagate as they are (they derive from
:class:`~batchkit.errors.BatchkitError`); law turns an exception of a group call into one
error per job, counts a failed query as a failed poll (``--poll-fails``), and never mistakes
it for failed jobs.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from law.job.base import BaseJobManager

import batchkit as bk
from batchkit.backends.local import ExitMarker, parse_marker, read_exit_marker
from batchkit.errors import BatchkitError, SpecError, SubmitError
from batchkit.model import JobInfo, JobStatus
from batchkit_law.job_id import LawJobId, parse_law_job_id
from batchkit_law.round import read_round
from batchkit_law.status import RETRY, law_status, status_dict

log = logging.getLogger(__name__)

#: The one group every job belongs to.
GROUP = "batchkit"
#: Default seconds between two scheduler queries while the wrapper's markers tell what happens.
DEFAULT_QUERY_INTERVAL = 30.0
#: Default seconds a job may be unknown to its scheduler, without an exit marker, before it counts as lost.
DEFAULT_LOST_AFTER = 600.0


class BatchkitJobManager(BaseJobManager):  # type: ignore[misc]  # law is untyped
    """Submit, query, cancel and clean up law jobs through ``bk.get_job_manager(backend, **options)``.

    ``backend`` names a batchkit backend (``"local"``, ``"slurm"``, ``"htcondor"``, ...),
    ``backend_options`` are its constructor options (e.g. ``{"partition": "debug"}``). The
    batchkit manager is created on first use, so building a task never touches a scheduler.
    ``query_interval``: seconds between scheduler queries (0: every poll) -- in between, the
    wrapper's markers report progress; ``lost_after``: seconds a job may be unknown to the
    scheduler without an exit marker before law retries it.
    """

    job_grouping_submit = True
    job_grouping_cancel = True
    job_grouping_cleanup = True
    job_grouping_query = True

    def __init__(
        self,
        backend: str = "local",
        backend_options: Mapping[str, Any] | None = None,
        lost_after: float = DEFAULT_LOST_AFTER,
        query_interval: float = DEFAULT_QUERY_INTERVAL,
        status_names: Sequence[str] | None = None,
        status_diff_styles: Mapping[str, Any] | None = None,
        threads: int = 1,
    ) -> None:
        super().__init__(status_names=status_names, status_diff_styles=status_diff_styles, threads=threads)
        self.backend = backend
        self.backend_options = dict(backend_options or {})
        self.lost_after = float(lost_after)
        self.query_interval = float(query_interval)
        self._manager: bk.JobManager | None = None
        self._lock = threading.Lock()
        self._unknown_since: dict[str, float] = {}
        self._known: dict[str, JobInfo] = {}  # the scheduler's last word per backend id
        self._last_query = float("-inf")

    @property
    def batchkit_manager(self) -> bk.JobManager:
        """The batchkit JobManager doing the work (created on first use)."""
        with self._lock:
            if self._manager is None:
                self._manager = bk.get_job_manager(self.backend, **self.backend_options)
            return self._manager

    # ------------------------------------------------------------------ law hooks
    @classmethod
    def cast_job_id(cls, job_id: Any) -> Any:
        """Ids come back from law's jobs JSON as the strings they were; keep them (None stays None)."""
        return job_id if job_id is None or isinstance(job_id, str) else str(job_id)

    def group_job_ids(self, job_ids: Sequence[Any]) -> dict[str, list[Any]]:
        """Every job in one group: one batchkit call per law operation."""
        return {GROUP: list(job_ids)}

    # ------------------------------------------------------------------ submit
    def submit(
        self,
        job_file: Any,
        job_files: Sequence[Any] | None = None,
        retries: int = 0,
        retry_delay: float = 3,
        silent: bool = False,
        _processes: Any = None,
        **kwargs: Any,
    ) -> list[Any] | None:
        """Submit the round described by ``job_file`` (its ``law_round.json``) as one batch.

        Returns one id per job of the round, in the round's order. If the scheduler took only
        part of the batch, the jobs it did not take get the exception in place of an id, so
        law records the others and resubmits only those. ``retries`` is not used: batchkit
        retries transient scheduler errors itself, and only where a retry cannot submit twice.
        """
        round_ = read_round(str(job_file))
        if job_files is not None and len(job_files) != len(round_.jobs):
            raise SpecError(f"law asked for {len(job_files)} job(s) but {job_file} describes {len(round_.jobs)}")
        jobs = round_.jobs
        try:
            ids = self.batchkit_manager.submit(
                [job.spec for job in jobs],
                round_.directory,
                indices=[job.job_num for job in jobs],
                attempts=[job.attempt for job in jobs],
                tag=round_.tag,
                cwd=round_.directory,
            )
        except SubmitError as exc:
            if silent and not exc.submitted:
                return None
            log.warning("batchkit accepted %d of %d job(s) of %s: %s", len(exc.submitted), len(jobs), job_file, exc)
            return [
                str(LawJobId(exc.submitted[row], round_.directory, job.job_num)) if row in exc.submitted else exc
                for row, job in enumerate(jobs)
            ]
        except BatchkitError:
            if silent:
                return None
            raise
        return [str(LawJobId(job_id, round_.directory, job.job_num)) for job_id, job in zip(ids, jobs)]

    # ------------------------------------------------------------------ query
    def query(
        self,
        job_id: Any,
        job_ids: Sequence[Any] | None = None,
        silent: bool = False,
        _processes: Any = None,
        **kwargs: Any,
    ) -> Any:
        """law status dicts of the jobs (see :mod:`batchkit_law.status`): markers, then AT MOST one query.

        The wrapper's markers come first (one directory listing per round): a job with an exit
        marker is settled without the scheduler (unless a signal ended it: then the scheduler
        is asked once why). The jobs without one are asked about in ONE
        batchkit query -- every ``query_interval`` seconds, and at once for ids not asked
        about before (a new round, a restarted ``law run``); in between, the scheduler's last
        answer stands, and start markers turn "pending" into "running".

        Called by law as ``query(group, ids)``; ``query(id)`` and ``query([ids])`` work too. An id
        that is not a batchkit law id is reported as ``retry`` ("unknown job id"), which is what
        law does with jobs it has no id for.
        """
        single = job_ids is None and not isinstance(job_id, (list, tuple))
        wanted = list(job_ids) if job_ids is not None else ([job_id] if single else list(job_id))
        parsed: dict[str, LawJobId] = {}
        for text in wanted:
            with contextlib.suppress(SpecError):
                parsed[text] = parse_law_job_id(text)
        listings: dict[str, set[str]] = {}
        for job in parsed.values():
            if job.directory not in listings:
                listings[job.directory] = _listdir(Path(job.directory) / "markers")
        exits: dict[str, ExitMarker | None] = {
            text: read_exit_marker(job.exit_marker) if f"{job.index}.exit" in listings[job.directory] else None
            for text, job in parsed.items()
        }
        now = time.time()
        self._ask_scheduler(
            [job for text, job in parsed.items() if exits[text] is None],
            [job for text, job in parsed.items() if _killed(exits[text])],
            now,
        )
        result: dict[Any, dict[str, Any]] = {}
        for text in wanted:
            known = parsed.get(text)
            if known is None:
                result[text] = status_dict(text, RETRY, error=f"unknown job id {text!r} (not made by batchkit)")
                continue
            started = f"{known.index}.start" in listings[known.directory]
            result[text] = self._status_of(text, known, exits[text], started, now)
        return result[wanted[0]] if single else result

    def _ask_scheduler(self, open_jobs: Sequence[LawJobId], killed: Sequence[LawJobId], now: float) -> None:
        """At most one batchkit query: open jobs if due (else only those never asked about), and
        jobs killed by a signal whose end the scheduler has not reported yet (it knows why:
        cancelled, time limit, memory limit, ...)."""
        due = now - self._last_query >= self.query_interval
        ask = list(open_jobs) if due else [job for job in open_jobs if job.backend_id not in self._known]
        for job in killed:
            info = self._known.get(job.backend_id)
            if info is None or not info.status.is_final:
                ask.append(job)
        backend_ids = list(dict.fromkeys(job.backend_id for job in ask))
        if not backend_ids:
            return
        self._known.update(self.batchkit_manager.query(backend_ids))
        if due:
            self._last_query = now

    def _status_of(
        self, text: str, job: LawJobId, marker: ExitMarker | None, started: bool, now: float
    ) -> dict[str, Any]:
        info = self._known.get(job.backend_id)
        if marker is not None and not _killed(marker):
            self._known.pop(job.backend_id, None)  # settled: never asked about again
        unknown_for = 0.0
        if marker is None and (info is None or info.status is JobStatus.UNKNOWN):
            unknown_for = now - self._unknown_since.setdefault(text, now)
        else:
            self._unknown_since.pop(text, None)
        data = law_status(text, info, marker, started, unknown_for, self.lost_after)
        if data["status"] in ("failed", "retry"):
            host = _remote_host(job)
            if host:
                data["extra"]["remote_host"] = host
        return data

    # ------------------------------------------------------------------ cancel / cleanup
    def cancel(self, job_id: Any, job_ids: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        """Cancel the jobs with one batchkit call; ids that already ended are ignored."""
        return self._control(self.batchkit_manager.cancel, job_id, job_ids)

    def cleanup(self, job_ids_or_group: Any, job_ids: Sequence[Any] | None = None, **kwargs: Any) -> Any:
        """Remove scheduler-side leftovers of the jobs (batchkit's ``cleanup``), one call."""
        return self._control(self.batchkit_manager.cleanup, job_ids_or_group, job_ids)

    def _control(self, action: Any, job_id: Any, job_ids: Sequence[Any] | None) -> Any:
        single = job_ids is None and not isinstance(job_id, (list, tuple))
        wanted = list(job_ids) if job_ids is not None else ([job_id] if single else list(job_id))
        backend_ids = []
        bad = []
        for text in wanted:
            try:
                backend_ids.append(parse_law_job_id(text).backend_id)
            except SpecError:
                bad.append(text)
        if backend_ids:
            action(list(dict.fromkeys(backend_ids)))
        if bad:
            raise SpecError(f"not batchkit law job id(s), left alone: {bad[:5]}{' ...' if len(bad) > 5 else ''}")
        return None if single else {text: None for text in wanted}


def _killed(marker: ExitMarker | None) -> bool:
    """True for an exit marker of a job that ended by a signal (exit code 128 + N)."""
    return marker is not None and marker.exit_code > 128


def _listdir(path: Path) -> set[str]:
    try:
        return set(os.listdir(path))
    except OSError:  # not there yet (no job started), or not visible from here
        return set()


def _remote_host(job: LawJobId) -> str | None:
    """The host the wrapper's start marker names (law shows it next to failed jobs)."""
    try:
        return parse_marker(job.start_marker.read_text()).get("host")
    except OSError:
        return None
