"""The SQLite job record: creation, corruption, the submit protocol, retries, lost jobs."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

import batchkit as bk
from batchkit.errors import RecordCorruptError, SubmissionNotFoundError
from batchkit.record import RECORD_NAME, JobRecordStore, Phase

SPECS = [bk.JobSpec(["true"], name=f"j{i}") for i in range(5)]


def make(tmp_path: Path) -> JobRecordStore:
    return JobRecordStore.create(tmp_path, {"backend": "local", "retries": 1}, SPECS)


def test_create_and_reopen(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.count() == 5
    assert store.meta()["backend"] == "local"
    store.close()
    again = JobRecordStore.open(tmp_path)
    assert [j.name for j in again.jobs()] == [f"j{i}" for i in range(5)]
    assert again.specs([3, 1]) == [SPECS[3], SPECS[1]]
    assert not (tmp_path / (RECORD_NAME + ".creating")).exists()


def test_missing_and_corrupt(tmp_path: Path) -> None:
    with pytest.raises(SubmissionNotFoundError):
        JobRecordStore.open(tmp_path)
    (tmp_path / RECORD_NAME).write_bytes(b"this is not sqlite" * 100)
    before = (tmp_path / RECORD_NAME).read_bytes()
    with pytest.raises(RecordCorruptError):
        JobRecordStore.open(tmp_path)
    assert (tmp_path / RECORD_NAME).read_bytes() == before  # nothing changed on disk


def test_foreign_sqlite_is_rejected(tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / RECORD_NAME)
    conn.execute("CREATE TABLE something(x)")
    conn.commit()
    conn.close()
    with pytest.raises(RecordCorruptError, match="not a batchkit record"):
        JobRecordStore.open(tmp_path)


def test_truncated_record(tmp_path: Path) -> None:
    make(tmp_path).close()
    path = tmp_path / RECORD_NAME
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(RecordCorruptError):
        JobRecordStore.open(tmp_path).jobs()


def test_submit_protocol(tmp_path: Path) -> None:
    store = make(tmp_path)
    batch = store.begin_batch([0, 1, 2], lambda b: tmp_path / f"b{b}", lambda b: f"tag.{b}")
    assert [j.phase for j in store.jobs(indices=[0, 1, 2])] == [Phase.SUBMITTING] * 3
    assert [j.attempts for j in store.jobs(indices=[0, 1, 2])] == [1, 1, 1]
    assert store.batches("submitting")[0].indices == (0, 1, 2)
    # the scheduler accepted rows 0 and 1, then refused
    store.fail_batch(batch, "refused", {0: "id0", 1: "id1"})
    jobs = {j.index: j for j in store.jobs()}
    assert (jobs[0].phase, jobs[0].job_id) == (Phase.ACTIVE, "id0")
    assert (jobs[2].phase, jobs[2].attempts, jobs[2].job_id) == (Phase.NEW, 0, None)
    assert store.batch(batch.id).state == "partial"


def test_apply_retries_then_done(tmp_path: Path) -> None:
    store = make(tmp_path)
    batch = store.begin_batch([0], lambda b: tmp_path, lambda b: "t")
    store.complete_batch(batch, {0: "a"})
    changed = store.apply({0: bk.JobInfo("a", bk.JobStatus.FAILED, 3, "boom")}, retries=1, lost_after=60)
    assert changed[0].phase is Phase.NEW  # one retry left
    assert changed[0].status is bk.JobStatus.FAILED
    assert store.counts() == {"RETRYING": 1, "UNSUBMITTED": 4}
    batch = store.begin_batch([0], lambda b: tmp_path, lambda b: "t2")
    store.complete_batch(batch, {0: "b"})
    changed = store.apply({0: bk.JobInfo("b", bk.JobStatus.FAILED, 3, "boom")}, retries=1, lost_after=60)
    assert (changed[0].phase, changed[0].attempts, changed[0].exit_code) == (Phase.DONE, 2, 3)
    statuses = [e["status"] for e in store.events(0)]
    assert statuses == ["PENDING", "FAILED", "PENDING", "FAILED"]
    # resubmit gives a fresh budget
    store.reset([0])
    assert store.job(0).phase is Phase.NEW


def test_unknown_becomes_lost_only_after_grace(tmp_path: Path) -> None:
    store = make(tmp_path)
    batch = store.begin_batch([0], lambda b: tmp_path, lambda b: "t")
    store.complete_batch(batch, {0: "a"})
    unknown = {0: bk.JobInfo("a", bk.JobStatus.UNKNOWN)}
    assert store.apply(unknown, retries=0, lost_after=3600) == []
    assert store.apply(unknown, retries=0, lost_after=3600) == []
    assert store.job(0).phase is Phase.ACTIVE
    lost = store.apply(unknown, retries=0, lost_after=0)
    assert lost[0].status is bk.JobStatus.FAILED
    assert "lost" in (lost[0].reason or "")


def test_large_batches_do_not_hit_sqlite_limits(tmp_path: Path) -> None:
    specs = [bk.JobSpec(["true"]) for _ in range(40_000)]
    store = JobRecordStore.create(tmp_path, {"backend": "local"}, specs)
    indices = list(range(40_000))
    batch = store.begin_batch(indices, lambda b: tmp_path, lambda b: "t")
    store.complete_batch(batch, {i: str(i) for i in indices})
    changed = store.apply({i: bk.JobInfo(str(i), bk.JobStatus.FINISHED, 0) for i in indices}, 0, 60)
    assert len(changed) == 40_000
    assert store.counts() == {"FINISHED": 40_000}
    assert len(store.specs(indices)) == 40_000
