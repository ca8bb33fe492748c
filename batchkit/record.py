"""The job record: one SQLite file per submission, the only durable state batchkit keeps.

Every state change is one transaction, so a ``kill -9`` at any instant leaves the record as it
was before or after that change, never in between. The submit protocol writes the *intent*
(batch row in state ``submitting``, the jobs' ``phase = submitting``, attempt counted) before
the scheduler is called, and the returned ids after; a batch found in ``submitting`` when the
record is opened again is *reconciled* with the scheduler (by its tag) instead of being
submitted again blindly.

Tables:

* ``meta`` -- key/value: backend, options, retries, tag, schema version, fingerprint, ...
* ``jobs`` -- one row per job: spec (JSON), phase, status, attempts, job id, exit code, ...
* ``batches`` -- one row per ``JobManager.submit`` call: state, indices, directory, error.
* ``events`` -- every status change of every job (the history ``batchkit status`` can show).
"""

from __future__ import annotations

import enum
import json
import os
import sqlite3
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import attrs

from batchkit.errors import RecordCorruptError, SubmissionNotFoundError
from batchkit.model import JobInfo, JobSpec, JobStatus

SCHEMA_VERSION = 1
RECORD_NAME = "batchkit.sqlite"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE jobs (
    idx INTEGER PRIMARY KEY,
    name TEXT,
    spec TEXT NOT NULL,
    phase TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    base_attempts INTEGER NOT NULL DEFAULT 0,
    job_id TEXT,
    batch INTEGER,
    exit_code INTEGER,
    reason TEXT,
    native_state TEXT,
    submitted_at REAL,
    finished_at REAL,
    unknown_since REAL
);
CREATE INDEX jobs_phase ON jobs(phase);
CREATE TABLE batches (
    id INTEGER PRIMARY KEY,
    state TEXT NOT NULL,
    created REAL NOT NULL,
    directory TEXT NOT NULL,
    tag TEXT NOT NULL,
    indices TEXT NOT NULL,
    error TEXT
);
CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    time REAL NOT NULL,
    idx INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    batch INTEGER,
    job_id TEXT,
    status TEXT NOT NULL,
    exit_code INTEGER,
    reason TEXT
);
"""


class Phase(str, enum.Enum):
    """Where a job is in the supervisor's life cycle (independent of the scheduler state).

    ``NEW`` -- waiting to be submitted (first time, or again after a failure within the retry
    budget); ``SUBMITTING`` -- the intent to submit is recorded, the ids are not (yet);
    ``ACTIVE`` -- the scheduler has it; ``DONE`` -- final, no more attempts.
    """

    NEW = "new"
    SUBMITTING = "submitting"
    ACTIVE = "active"
    DONE = "done"


@attrs.frozen
class JobRecord:
    """One job as the record knows it (a snapshot; re-read ``Submission.jobs`` for news)."""

    index: int
    name: str | None
    phase: Phase = attrs.field(converter=Phase)
    status: JobStatus = attrs.field(converter=JobStatus)
    attempts: int
    job_id: str | None
    batch: int | None
    exit_code: int | None
    reason: str | None
    native_state: str | None
    submitted_at: float | None
    finished_at: float | None

    @property
    def is_done(self) -> bool:
        """True once the job is final (finished, or failed/cancelled with no retry left)."""
        return self.phase is Phase.DONE

    def to_dict(self) -> dict[str, Any]:
        data = attrs.asdict(self)
        data["phase"] = self.phase.value
        data["status"] = self.status.value
        return data


@attrs.frozen
class BatchRecord:
    """One submit call: its state (``submitting``/``submitted``/``failed``) and its jobs."""

    id: int
    state: str
    directory: Path
    tag: str
    indices: tuple[int, ...]
    error: str | None


_JOB_COLUMNS = (
    "idx, name, phase, status, attempts, job_id, batch, exit_code, reason, native_state, submitted_at, finished_at"
)


def _job(row: Sequence[Any]) -> JobRecord:
    return JobRecord(*row)


class JobRecordStore:
    """Transactional access to one submission's SQLite record."""

    def __init__(self, path: Path, conn: sqlite3.Connection) -> None:
        self.path = path
        self._conn = conn

    # ------------------------------------------------------------------ open / create
    @classmethod
    def create(
        cls,
        directory: Path,
        meta: Mapping[str, Any],
        specs: Sequence[JobSpec],
        texts: Sequence[str] | None = None,
    ) -> JobRecordStore:
        """Create the record with ``meta`` and ``specs`` in one transaction.

        ``texts`` are the specs' :func:`spec_json`, if the caller already has them.
        """
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / RECORD_NAME
        tmp = directory / (RECORD_NAME + ".creating")
        for leftover in (tmp, Path(str(tmp) + "-wal"), Path(str(tmp) + "-shm"), Path(str(tmp) + "-journal")):
            leftover.unlink(missing_ok=True)
        # Build the record under a temporary name and rename it into place: a crash during
        # creation leaves no half-made record behind.
        conn = sqlite3.connect(tmp, isolation_level=None)
        try:
            conn.executescript(_SCHEMA)
            conn.execute("BEGIN")
            conn.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)",
                [(k, json.dumps(v)) for k, v in {**meta, "schema_version": SCHEMA_VERSION}.items()],
            )
            texts = specs_json(specs) if texts is None else texts
            conn.executemany(
                "INSERT INTO jobs(idx, name, spec, phase, status) VALUES (?, ?, ?, 'new', 'PENDING')",
                ((i, s.name, t) for i, (s, t) in enumerate(zip(specs, texts))),
            )
            conn.execute("COMMIT")
        finally:
            conn.close()
        os.replace(tmp, path)
        return cls.open(directory)

    @classmethod
    def open(cls, directory: Path) -> JobRecordStore:
        """Open an existing record; :class:`RecordCorruptError` if it is not a sound one."""
        path = directory / RECORD_NAME
        if not path.is_file():
            raise SubmissionNotFoundError(f"no batchkit submission in {directory} (no {RECORD_NAME})")
        try:
            conn = sqlite3.connect(f"file:{path}?mode=rw", uri=True, isolation_level=None, timeout=30)
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
            if not {"meta", "jobs", "batches", "events"} <= tables:
                conn.close()
                raise RecordCorruptError(f"{path} is not a batchkit record (tables missing)")
            version = conn.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
            if version is None or json.loads(version[0]) != SCHEMA_VERSION:
                conn.close()
                raise RecordCorruptError(f"{path}: unsupported record version {version and version[0]}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        except sqlite3.DatabaseError as exc:
            raise RecordCorruptError(f"{path} cannot be read as a batchkit record: {exc}") from exc
        return cls(path, conn)

    def close(self) -> None:
        self._conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: writers queue instead of failing)."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # ------------------------------------------------------------------ meta
    def meta(self) -> dict[str, Any]:
        try:
            return {k: json.loads(v) for k, v in self._conn.execute("SELECT key, value FROM meta")}
        except (sqlite3.DatabaseError, ValueError) as exc:
            raise RecordCorruptError(f"{self.path}: unreadable meta data: {exc}") from exc

    def set_meta(self, key: str, value: Any) -> None:
        with self.transaction() as conn:
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, json.dumps(value)))

    # ------------------------------------------------------------------ jobs
    def jobs(self, phase: Phase | None = None, indices: Iterable[int] | None = None) -> list[JobRecord]:
        query = f"SELECT {_JOB_COLUMNS} FROM jobs"
        args: list[Any] = []
        if phase is not None:
            query += " WHERE phase = ?"
            args.append(phase.value)
        query += " ORDER BY idx"
        rows = [_job(r) for r in self._conn.execute(query, args)]
        if indices is not None:
            wanted = set(indices)
            rows = [r for r in rows if r.index in wanted]
        return rows

    def job(self, index: int) -> JobRecord:
        row = self._conn.execute(f"SELECT {_JOB_COLUMNS} FROM jobs WHERE idx = ?", (index,)).fetchone()
        if row is None:
            raise KeyError(index)
        return _job(row)

    def count(self) -> int:
        return int(self._conn.execute("SELECT COUNT(*) FROM jobs").fetchone()[0])

    def counts(self) -> dict[str, int]:
        """Jobs per status, with not-yet-submitted ones counted as ``UNSUBMITTED``."""
        out: dict[str, int] = {}
        for phase, status, n in self._conn.execute("SELECT phase, status, COUNT(*) FROM jobs GROUP BY phase, status"):
            key = status
            if phase in (Phase.NEW.value, Phase.SUBMITTING.value):
                key = "RETRYING" if status == JobStatus.FAILED.value else "UNSUBMITTED"
            out[key] = out.get(key, 0) + n
        return out

    def specs(self, indices: Sequence[int]) -> list[JobSpec]:
        found: dict[int, str] = {}
        for chunk in _chunks(indices):
            found.update(self._conn.execute(f"SELECT idx, spec FROM jobs WHERE idx IN ({_marks(chunk)})", chunk))
        try:
            return [JobSpec.from_dict(json.loads(found[i])) for i in indices]
        except (KeyError, ValueError) as exc:
            raise RecordCorruptError(f"{self.path}: cannot read job specs: {exc}") from exc

    def add_jobs(self, specs: Sequence[JobSpec]) -> list[int]:
        with self.transaction() as conn:
            start = int(conn.execute("SELECT COALESCE(MAX(idx), -1) + 1 FROM jobs").fetchone()[0])
            conn.executemany(
                "INSERT INTO jobs(idx, name, spec, phase, status) VALUES (?, ?, ?, 'new', 'PENDING')",
                ((start + i, s.name, spec_json(s)) for i, s in enumerate(specs)),
            )
        return list(range(start, start + len(specs)))

    # ------------------------------------------------------------------ batches
    def begin_batch(self, indices: Sequence[int], directory_for: Any, tag_for: Any) -> BatchRecord:
        """Record the intent to submit ``indices`` (attempts counted) and return the batch."""
        with self.transaction() as conn:
            batch_id = int(conn.execute("SELECT COALESCE(MAX(id), 0) + 1 FROM batches").fetchone()[0])
            directory, tag = str(directory_for(batch_id)), str(tag_for(batch_id))
            conn.execute(
                "INSERT INTO batches(id, state, created, directory, tag, indices) VALUES (?, 'submitting', ?, ?, ?, ?)",
                (batch_id, time.time(), directory, tag, json.dumps(list(indices))),
            )
            conn.executemany(
                "UPDATE jobs SET phase='submitting', attempts=attempts+1, batch=?, job_id=NULL, "
                "unknown_since=NULL WHERE idx=?",
                [(batch_id, i) for i in indices],
            )
        return BatchRecord(batch_id, "submitting", Path(directory), tag, tuple(indices), None)

    def complete_batch(
        self, batch: BatchRecord, ids: Mapping[int, str], infos: Mapping[int, JobInfo] | None = None
    ) -> None:
        """Record the job ids the scheduler returned; the batch is submitted."""
        now = time.time()
        with self.transaction() as conn:
            for index, job_id in ids.items():
                info = (infos or {}).get(index)
                status = info.status.value if info else JobStatus.PENDING.value
                conn.execute(
                    "UPDATE jobs SET phase='active', job_id=?, status=?, exit_code=NULL, reason=NULL, "
                    "native_state=?, submitted_at=? WHERE idx=? AND batch=?",
                    (job_id, status, info.native_state if info else None, now, index, batch.id),
                )
                self._event(conn, index, batch.id, job_id, status, None, None)
            conn.execute("UPDATE batches SET state='submitted' WHERE id=?", (batch.id,))

    def fail_batch(self, batch: BatchRecord, error: str, submitted: Mapping[int, str] | None = None) -> None:
        """The scheduler refused (part of) the batch: record accepted ids, undo the rest."""
        submitted = dict(submitted or {})
        if submitted:
            self.complete_batch(batch, submitted)
        rest = [i for i in batch.indices if i not in submitted]
        with self.transaction() as conn:
            if rest:
                conn.executemany(
                    "UPDATE jobs SET phase='new', attempts=attempts-1, batch=NULL WHERE batch=? AND idx=?",
                    [(batch.id, i) for i in rest],
                )
            conn.execute(
                "UPDATE batches SET state=?, error=? WHERE id=?",
                ("partial" if submitted else "failed", error, batch.id),
            )

    def batches(self, state: str | None = None) -> list[BatchRecord]:
        query = "SELECT id, state, directory, tag, indices, error FROM batches"
        args: list[Any] = []
        if state is not None:
            query += " WHERE state = ?"
            args.append(state)
        return [
            BatchRecord(r[0], r[1], Path(r[2]), r[3], tuple(json.loads(r[4])), r[5])
            for r in self._conn.execute(query + " ORDER BY id", args)
        ]

    def batch(self, batch_id: int) -> BatchRecord:
        for b in self.batches():
            if b.id == batch_id:
                return b
        raise KeyError(batch_id)

    # ------------------------------------------------------------------ state changes
    def apply(self, updates: Mapping[int, JobInfo], retries: int, lost_after: float) -> list[JobRecord]:
        """Apply scheduler states to active jobs; return the records that changed.

        FAILED with attempts left goes back to ``NEW`` (resubmitted by the next poll);
        FINISHED, CANCELLED and FAILED without attempts left become ``DONE``. UNKNOWN never
        fails a job by itself: only after ``lost_after`` seconds of UNKNOWN is it failed as
        lost (and retried like any failure).
        """
        if not updates:
            return []
        now = time.time()
        changed: list[int] = []
        with self.transaction() as conn:
            current = {}
            for chunk in _chunks(list(updates)):
                for r in conn.execute(
                    f"SELECT idx, status, attempts - base_attempts, batch, job_id, exit_code, reason, native_state, "
                    f"unknown_since "
                    f"FROM jobs WHERE phase='active' AND idx IN ({_marks(chunk)})",
                    chunk,
                ):
                    current[r[0]] = r
            for index, info in updates.items():
                row = current.get(index)
                if row is None:
                    continue
                _, status, attempts, batch, job_id, exit_code, reason, native, unknown_since = row
                if info.status is JobStatus.UNKNOWN:
                    if unknown_since is None:
                        conn.execute("UPDATE jobs SET unknown_since=? WHERE idx=?", (now, index))
                        continue
                    if now - unknown_since < lost_after:
                        continue
                    info = JobInfo(
                        info.job_id,
                        JobStatus.FAILED,
                        None,
                        f"lost: the scheduler no longer knows job {job_id} and it left no exit marker",
                        info.native_state,
                    )
                new = (info.status.value, info.exit_code, info.reason, info.native_state)
                if new == (status, exit_code, reason, native) and unknown_since is None:
                    continue
                phase = Phase.ACTIVE.value
                finished_at = None
                if info.status.is_final:
                    finished_at = now
                    retry = info.status is JobStatus.FAILED and attempts < retries + 1
                    phase = Phase.NEW.value if retry else Phase.DONE.value
                conn.execute(
                    "UPDATE jobs SET phase=?, status=?, exit_code=?, reason=?, native_state=?, finished_at=?, "
                    "unknown_since=NULL WHERE idx=?",
                    (phase, *new, finished_at, index),
                )
                if new[0] != status or info.status.is_final:
                    self._event(conn, index, batch, job_id, info.status.value, info.exit_code, info.reason)
                changed.append(index)
        return self.jobs(indices=changed) if changed else []

    def reset(self, indices: Sequence[int], status: JobStatus | None = None) -> None:
        """Make jobs ``NEW`` again with a fresh retry budget; attempts keep counting."""
        if not indices:
            return
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE jobs SET phase='new', base_attempts=attempts, status=COALESCE(?, status) WHERE idx=?",
                [(status.value if status else None, i) for i in indices],
            )

    def mark_cancelled(self, indices: Sequence[int], reason: str = "cancelled by user") -> None:
        """Jobs that will never be submitted (cancel before submission) become DONE/CANCELLED."""
        if not indices:
            return
        now = time.time()
        with self.transaction() as conn:
            conn.executemany(
                "UPDATE jobs SET phase='done', status='CANCELLED', reason=?, finished_at=? WHERE phase='new' AND idx=?",
                [(reason, now, i) for i in indices],
            )
            for index in indices:
                self._event(conn, index, None, None, JobStatus.CANCELLED.value, None, reason)

    def events(self, index: int | None = None) -> list[dict[str, Any]]:
        query = "SELECT time, idx, attempt, batch, job_id, status, exit_code, reason FROM events"
        args: list[Any] = []
        if index is not None:
            query += " WHERE idx = ?"
            args.append(index)
        keys = ("time", "index", "attempt", "batch", "job_id", "status", "exit_code", "reason")
        return [dict(zip(keys, r)) for r in self._conn.execute(query + " ORDER BY id", args)]

    def _event(
        self,
        conn: sqlite3.Connection,
        index: int,
        batch: int | None,
        job_id: str | None,
        status: str,
        exit_code: int | None,
        reason: str | None,
    ) -> None:
        conn.execute(
            "INSERT INTO events(time, idx, attempt, batch, job_id, status, exit_code, reason) "
            "VALUES (?, ?, (SELECT attempts FROM jobs WHERE idx=?), ?, ?, ?, ?, ?)",
            (time.time(), index, index, batch, job_id, status, exit_code, reason),
        )


def spec_json(spec: JobSpec) -> str:
    """The canonical JSON of a spec (sorted keys): stored in the record, hashed for fingerprints."""
    return json.dumps(spec.to_dict(), sort_keys=True, separators=(",", ":"))


def specs_json(specs: Sequence[JobSpec]) -> list[str]:
    """:func:`spec_json` of many specs; equal specs are serialised only once."""
    memo: dict[JobSpec, str] = {}
    out = []
    for spec in specs:
        text = memo.get(spec)
        if text is None:
            text = memo[spec] = spec_json(spec)
        out.append(text)
    return out


def _marks(items: Sequence[Any]) -> str:
    return ",".join("?" * len(items))


def _chunks(items: Sequence[int], size: int = 500) -> Iterator[list[int]]:
    """Split id lists so a query never exceeds SQLite's limit on bound parameters."""
    for start in range(0, len(items), size):
        yield list(items[start : start + size])
