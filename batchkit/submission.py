"""A persistent, supervised set of jobs in one directory.

:class:`Submission` is what users and adapters hold on to. It keeps the job record
(:mod:`batchkit.record`), hands batches to a :class:`~batchkit.backends.base.JobManager`, asks
it for the state of *all* active jobs with one query per poll, resubmits failures within the
retry budget, and yields jobs as they finish (:meth:`Submission.as_completed`), which is what
pipelining builds on.

Crash safety: the intent to submit is recorded before the backend is called and the ids after.
A batch still marked ``submitting`` when the submission is opened again (the process was
killed in between) is reconciled with the backend by the batch's tag -- jobs the scheduler
knows are adopted, jobs it never saw are submitted again -- so every job runs exactly once
(retries aside). Only one process supervises a submission at a time (a lock file, released by
the kernel even after ``kill -9``).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.backends.base import JobManager
from batchkit.backends.local import info_from_exit_marker, read_exit_marker
from batchkit.environment import Environment
from batchkit.errors import (
    BatchkitError,
    SpecError,
    SubmissionBusyError,
    SubmissionExistsError,
    SubmitError,
    TransientError,
    UserError,
)
from batchkit.model import JobInfo, JobSpec, JobStatus
from batchkit.record import RECORD_NAME, BatchRecord, JobRecord, JobRecordStore, Phase, specs_json
from batchkit.registry import get_job_manager

log = logging.getLogger(__name__)

LOCK_NAME = "supervisor.lock"
#: Seconds a job may be UNKNOWN to its scheduler (and leave no marker) before it counts as lost.
DEFAULT_LOST_AFTER = 600.0


def _fingerprint(backend: str, spec_texts: Sequence[str], settings: Mapping[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(json.dumps({"backend": backend, **settings}, sort_keys=True, default=str).encode())
    for text in spec_texts:
        digest.update(text.encode())
    return digest.hexdigest()


class Submission:
    """A set of jobs, their record, and the supervisor that drives them to completion.

    Create with :meth:`create`, reopen with :meth:`open`. Methods that change anything take
    the supervisor lock for the lifetime of this object (:meth:`close` releases it).
    """

    def __init__(self, directory: Path, store: JobRecordStore) -> None:
        self.directory = directory
        self._store = store
        self._meta = store.meta()
        self._manager: JobManager | None = None
        self._lock_fd: int | None = None
        self._reconciled = False
        self.poll_failures = 0

    # ------------------------------------------------------------------ construction
    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        backend: str,
        specs: Sequence[JobSpec | Mapping[str, Any]] = (),
        retries: int = 0,
        parallel_jobs: int | None = None,
        backend_options: Mapping[str, Any] | None = None,
        setup_script: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        environment: Environment | Mapping[str, Any] | None = None,
    ) -> Submission:
        """Create a submission in ``directory`` (or open it, if it holds this very one).

        Nothing is submitted yet: call :meth:`submit` or :meth:`wait`. A directory holding a
        *different* submission raises :class:`SubmissionExistsError` and is left untouched.
        ``environment`` (:class:`~batchkit.environment.Environment`) is what every job runs in;
        ``setup_script`` is short for ``Environment(setup_script=...)``. The setup script is
        copied into the submission once; a tarball is unpacked once per node, not per job.
        """
        path = Path(directory).absolute()
        job_specs = [JobSpec.from_dict(s) for s in specs]
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise SpecError(f"retries must be a non-negative integer, got {retries!r}")
        if parallel_jobs is not None and (
            isinstance(parallel_jobs, bool) or not isinstance(parallel_jobs, int) or parallel_jobs < 1
        ):
            raise SpecError(f"parallel_jobs must be a positive integer, got {parallel_jobs!r}")
        env = Environment.from_dict(environment)
        if setup_script is not None:
            if env.setup_script is not None:
                raise SpecError("give the setup script either as setup_script or in environment, not both")
            env = attrs.evolve(env, setup_script=setup_script)
        env.check()
        options = dict(backend_options or {})
        # unknown backend or bad options -> error before anything is written (constructors
        # of JobManagers do not contact the scheduler)
        get_job_manager(backend, **options)
        settings = {
            "retries": retries,
            "parallel_jobs": parallel_jobs,
            "backend_options": options,
            "environment": env.to_dict(),
        }
        spec_texts = specs_json(job_specs)
        fingerprint = _fingerprint(backend, spec_texts, settings)
        if (path / RECORD_NAME).exists():
            existing = cls.open(path)
            if existing._meta.get("fingerprint") != fingerprint:
                what = f"{existing._meta.get('backend')}, {existing._store.count()} jobs"
                existing.close()
                raise SubmissionExistsError(
                    f"{path} already holds a different submission ({what}); "
                    "choose another directory or open it with Submission.open"
                )
            return existing
        if env.setup_script is not None:  # shipped once: later edits of the original do not leak in
            path.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(env.setup_script, path / "setup.sh")
            env = attrs.evolve(env, setup_script=path / "setup.sh")
        meta = {
            "backend": backend,
            "backend_options": options,
            "retries": retries,
            "parallel_jobs": parallel_jobs,
            "tag": "bk" + fingerprint[:10] + hashlib.sha1(str(path).encode()).hexdigest()[:4],
            "cwd": str(Path(cwd).absolute()) if cwd else os.getcwd(),
            "created": time.time(),
            "fingerprint": fingerprint,
            "environment": env.to_dict(),
            "cancel_requested": False,
        }
        store = JobRecordStore.create(path, meta, job_specs, spec_texts)
        return cls(path, store)

    @classmethod
    def open(cls, directory: str | os.PathLike[str]) -> Submission:
        """Open the submission recorded in ``directory``."""
        path = Path(directory).absolute()
        return cls(path, JobRecordStore.open(path))

    def close(self) -> None:
        """Release the supervisor lock and the record."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None
        self._store.close()

    def __enter__(self) -> Submission:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ properties
    @property
    def backend(self) -> str:
        return str(self._meta["backend"])

    @property
    def retries(self) -> int:
        return int(self._meta["retries"])

    @property
    def parallel_jobs(self) -> int | None:
        value = self._meta.get("parallel_jobs")
        return None if value is None else int(value)

    @property
    def backend_options(self) -> dict[str, Any]:
        return dict(self._meta.get("backend_options") or {})

    @property
    def environment(self) -> Environment:
        """What the jobs run in (setup script, packed environment, command prefix)."""
        return Environment.from_dict(self._meta.get("environment"))

    @property
    def tag(self) -> str:
        """The string that marks this submission's jobs at the scheduler."""
        return str(self._meta["tag"])

    @property
    def jobs(self) -> list[JobRecord]:
        """All jobs, by index (a fresh read of the record)."""
        return self._store.jobs()

    def job(self, index: int) -> JobRecord:
        return self._store.job(index)

    def counts(self) -> dict[str, int]:
        """Jobs per status (``UNSUBMITTED``/``RETRYING`` for jobs waiting to be submitted)."""
        return self._store.counts()

    def events(self, index: int | None = None) -> list[dict[str, Any]]:
        """Every recorded status change (of one job, or all)."""
        return self._store.events(index)

    @property
    def is_done(self) -> bool:
        return not any(j.phase is not Phase.DONE for j in self._store.jobs())

    @property
    def manager(self) -> JobManager:
        """The backend's JobManager, configured with the submission's backend options."""
        if self._manager is None:
            self._manager = get_job_manager(self.backend, **self.backend_options)
        return self._manager

    def spec(self, index: int) -> JobSpec:
        return self._store.specs([index])[0]

    def job_files(self, index: int) -> dict[str, Path]:
        """Paths of the latest attempt's logs and markers of job ``index``."""
        record = self._store.job(index)
        if record.batch is None:
            return {}
        directory = self._store.batch(record.batch).directory
        return {
            "stdout": directory / "logs" / f"{index}.out",
            "stderr": directory / "logs" / f"{index}.err",
            "start_marker": directory / "markers" / f"{index}.start",
            "exit_marker": directory / "markers" / f"{index}.exit",
        }

    def job_host(self, index: int) -> dict[str, str]:
        """What the wrapper's start marker says (host, pid, start time) of job ``index``."""
        from batchkit.backends.local import parse_marker

        files = self.job_files(index)
        try:
            return parse_marker(files["start_marker"].read_text())
        except (KeyError, OSError):
            return {}

    # ------------------------------------------------------------------ locking
    def _lock(self) -> None:
        if self._lock_fd is not None:
            return
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            raise SubmissionBusyError(
                f"another batchkit process ({holder or 'unknown pid'}) is supervising {self.directory}; "
                "wait for it to finish or stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}".encode())
        self._lock_fd = fd

    # ------------------------------------------------------------------ adding jobs
    def add(self, specs: Sequence[JobSpec | Mapping[str, Any]]) -> list[int]:
        """Append jobs (e.g. the next workflow step of a job that just finished).

        They are submitted by the next :meth:`submit` or :meth:`poll`; returns their indices.
        """
        job_specs = [JobSpec.from_dict(s) for s in specs]
        if not job_specs:
            return []
        self._lock()
        return self._store.add_jobs(job_specs)

    # ------------------------------------------------------------------ submit
    def submit(self) -> list[JobRecord]:
        """Submit every job waiting to be submitted, as one batch; return their records."""
        self._lock()
        self._reconcile()
        if self._meta_value("cancel_requested"):
            return []
        due = self._store.jobs(phase=Phase.NEW)
        if not due:
            return []
        indices = [j.index for j in due]
        specs = self._store.specs(indices)
        batch = self._store.begin_batch(
            indices,
            lambda b: self.directory / "batches" / f"{b:04d}",
            lambda b: f"{self.tag}.{b}",
        )
        attempts = [j.attempts + 1 for j in due]
        options: dict[str, Any] = {}
        if self.parallel_jobs:
            options = {"parallel_jobs": self.parallel_jobs, "group": self.tag}
        try:
            ids = self.manager.submit(
                specs,
                batch.directory,
                indices=indices,
                attempts=attempts,
                tag=batch.tag,
                cwd=self._meta.get("cwd"),
                environment=self.environment,
                options=options,
            )
        except SubmitError as exc:
            accepted = {indices[row]: job_id for row, job_id in exc.submitted.items()}
            self._store.fail_batch(batch, str(exc), accepted)
            raise
        except TransientError:
            # The scheduler may or may not have the jobs: leave the intent, reconcile later.
            self._reconciled = False
            raise
        except BatchkitError as exc:
            self._store.fail_batch(batch, str(exc))
            raise
        except KeyboardInterrupt:
            self._reconciled = False
            raise
        if len(ids) != len(indices):
            self._store.fail_batch(batch, f"backend returned {len(ids)} ids for {len(indices)} jobs")
            raise SubmitError(f"backend {self.backend} returned {len(ids)} ids for {len(indices)} jobs")
        self._store.complete_batch(batch, dict(zip(indices, ids)))
        return self._store.jobs(indices=indices)

    def _meta_value(self, key: str) -> Any:
        self._meta = self._store.meta()
        return self._meta.get(key)

    def _reconcile(self) -> None:
        """Settle batches left in ``submitting`` by a process that died mid-submit."""
        if self._reconciled:
            return
        for batch in self._store.batches(state="submitting"):
            self._reconcile_batch(batch)
        self._reconciled = True

    def _reconcile_batch(self, batch: BatchRecord) -> None:
        found = self.manager.find(batch.tag, batch.directory) if batch.directory.exists() else {}
        ids: dict[int, str] = {}
        infos: dict[int, JobInfo] = {}
        for row, index in enumerate(batch.indices):
            if row in found:
                ids[index] = found[row].job_id
                infos[index] = found[row]
                continue
            marker = read_exit_marker(batch.directory / "markers" / f"{index}.exit")
            started = (batch.directory / "markers" / f"{index}.start").exists()
            if marker is not None or started:  # it ran, but the scheduler forgot it
                ids[index] = f"unknown:{batch.tag}:{row}"
                infos[index] = (
                    info_from_exit_marker(ids[index], marker)
                    if marker is not None
                    else JobInfo(ids[index], JobStatus.UNKNOWN, None, "started; the scheduler forgot it", None)
                )
        log.info("reconciled batch %s: %d of %d jobs found at the scheduler", batch.id, len(ids), len(batch.indices))
        if len(ids) == len(batch.indices):
            self._store.complete_batch(batch, ids, infos)
        else:
            self._store.fail_batch(batch, "interrupted during submission (reconciled)", ids)
        if infos:
            self._store.apply(infos, self.retries, DEFAULT_LOST_AFTER)

    # ------------------------------------------------------------------ poll
    def poll(self, lost_after: float = DEFAULT_LOST_AFTER) -> list[JobRecord]:
        """One supervision step: reconcile, submit what is due, one query, record changes.

        Returns the records that changed. A failed query, or a submit that failed in a way
        worth retrying (the scheduler timed out, ...), is logged and counted in
        :attr:`poll_failures`; it never fails jobs, and the next poll tries again (after
        reconciling, so a submit that did go through is not repeated). A submit the scheduler
        refused for good (:class:`SubmitError`, e.g. an unknown partition) is raised.
        """
        self._lock()
        self._reconcile()
        try:
            submitted = self.submit()
        except TransientError as exc:
            self.poll_failures += 1
            log.warning("submission failed, will retry at the next poll: %s", exc)
            submitted = []
        return submitted + self.refresh(lost_after)

    def refresh(self, lost_after: float = DEFAULT_LOST_AFTER) -> list[JobRecord]:
        """Ask the backend once about every active job and record changes; submits nothing."""
        self._lock()
        self._reconcile()
        active = self._store.jobs(phase=Phase.ACTIVE)
        if not active:
            return []
        try:
            infos = self.manager.query([j.job_id for j in active if j.job_id])
        except (TransientError, BatchkitError, OSError) as exc:
            if isinstance(exc, UserError):
                raise
            self.poll_failures += 1
            log.warning("status query failed (jobs are not affected): %s", exc)
            return []
        updates: dict[int, JobInfo] = {}
        for job in active:
            info = infos.get(job.job_id or "")
            if info is None:
                info = JobInfo(job.job_id or "", JobStatus.UNKNOWN, None, "missing from the query result", None)
            if info.status is JobStatus.UNKNOWN and job.batch is not None:
                info = self._from_markers(job, info)
            updates[job.index] = info
        return self._store.apply(updates, self.retries, lost_after)

    def _from_markers(self, job: JobRecord, info: JobInfo) -> JobInfo:
        """The wrapper's exit marker decides when the scheduler does not know the job."""
        assert job.batch is not None
        directory = self._store.batch(job.batch).directory
        marker = read_exit_marker(directory / "markers" / f"{job.index}.exit")
        return info if marker is None else info_from_exit_marker(info.job_id, marker)

    # ------------------------------------------------------------------ waiting
    def as_completed(
        self,
        poll_interval: float = 5.0,
        timeout: float | None = None,
        on_interrupt: str | None = None,
        progress: Callable[[Submission], None] | None = None,
    ) -> Iterator[JobRecord]:
        """Yield each job once, as it reaches a final state (already final ones first).

        Polls with an interval that starts small and grows to ``poll_interval`` while nothing
        changes. ``timeout`` (seconds) raises :class:`TimeoutError` when jobs are still open.
        On Ctrl+C the ``on_interrupt`` policy applies (``"cancel"`` or ``"keep"``; default:
        the backend's -- local jobs are stopped, batch jobs keep running).
        """
        seen: set[int] = set()
        deadline = None if timeout is None else time.monotonic() + timeout
        interval = min(0.2, poll_interval)
        try:
            while True:
                changed = self.poll()
                jobs = self._store.jobs()
                for job in jobs:
                    if job.phase is Phase.DONE and job.index not in seen:
                        seen.add(job.index)
                        yield job
                if progress is not None:
                    progress(self)
                if len(seen) == len(jobs) and self._store.count() == len(jobs):
                    return
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"{len(jobs) - len(seen)} jobs of {self.directory} still open after {timeout} s")
                interval = min(0.2, poll_interval) if changed else min(poll_interval, interval * 1.5)
                time.sleep(interval)
        except KeyboardInterrupt:
            self._on_interrupt(on_interrupt)
            raise

    def wait(
        self,
        poll_interval: float = 5.0,
        timeout: float | None = None,
        on_interrupt: str | None = None,
        progress: Callable[[Submission], None] | None = None,
    ) -> dict[str, int]:
        """Drive every job to a final state; return the counts per status."""
        for _ in self.as_completed(poll_interval, timeout, on_interrupt, progress):
            pass
        return self.counts()

    def _on_interrupt(self, policy: str | None) -> None:
        policy = policy or self.manager.interrupt_policy
        if policy not in ("cancel", "keep"):
            raise SpecError(f"on_interrupt must be 'cancel' or 'keep', got {policy!r}")
        if policy == "cancel":
            log.warning("interrupted: cancelling the submission's jobs")
            self.cancel()
        else:
            log.warning("interrupted: jobs keep running; `batchkit wait %s` picks them up", self.directory)

    # ------------------------------------------------------------------ cancel / resubmit / cleanup
    def cancel(self, indices: Sequence[int] | None = None) -> int:
        """Cancel jobs (all by default): active ones at the scheduler, unsubmitted ones here.

        Cancelling everything also stops this submission from submitting anything more
        until :meth:`resubmit`. Returns the number of jobs cancelled. Works while another
        process supervises the submission (that process sees the cancellations).
        """
        if indices is None:
            self._store.set_meta("cancel_requested", True)
        wanted = None if indices is None else set(indices)
        jobs = [j for j in self._store.jobs() if wanted is None or j.index in wanted]
        active = [j for j in jobs if j.phase in (Phase.ACTIVE, Phase.SUBMITTING) and j.job_id]
        if active:
            self.manager.cancel([j.job_id for j in active if j.job_id])
            infos = {
                j.index: JobInfo(j.job_id or "", JobStatus.CANCELLED, None, "cancelled by user", "CANCELLED")
                for j in active
            }
            # the scheduler's word wins later if the job had already ended
            with contextlib.suppress(BatchkitError):
                current = self.manager.query([j.job_id for j in active if j.job_id])
                for j in active:
                    info = current.get(j.job_id or "")
                    if info is not None and info.status.is_final:
                        infos[j.index] = info
            self._store.apply(infos, 0, DEFAULT_LOST_AFTER)
        new = [j.index for j in jobs if j.phase is Phase.NEW]
        self._store.mark_cancelled(new)
        return len(active) + len(new)

    def resubmit(self, failed_only: bool = False) -> list[int]:
        """Queue final jobs that did not finish (or only FAILED ones) for another attempt.

        The retry budget starts afresh for them. They are submitted by the next
        :meth:`submit`/:meth:`poll`/:meth:`wait`. Returns their indices.
        """
        self._lock()
        self._store.set_meta("cancel_requested", False)
        wanted = {JobStatus.FAILED} if failed_only else {JobStatus.FAILED, JobStatus.CANCELLED}
        indices = [j.index for j in self._store.jobs(phase=Phase.DONE) if j.status in wanted]
        self._store.reset(indices)
        return indices

    def cleanup(self, force: bool = False) -> None:
        """Remove job files (batch directories) and scheduler leftovers; keep record and logs.

        Refuses while jobs are active unless ``force``.
        """
        self._lock()
        jobs = self._store.jobs()
        active = [j for j in jobs if j.phase in (Phase.ACTIVE, Phase.SUBMITTING)]
        if active and not force:
            raise UserError(f"{len(active)} jobs of {self.directory} are still active; cancel them first")
        ids = [j.job_id for j in jobs if j.job_id]
        if ids:
            self.manager.cleanup(ids)
        for batch in self._store.batches():
            for name in ("table", "wrapper.sh", "setup.sh"):
                target = batch.directory / name
                if target.is_dir():
                    shutil.rmtree(target, ignore_errors=True)
                elif target.exists():
                    target.unlink()
