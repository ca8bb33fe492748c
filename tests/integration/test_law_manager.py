"""The law job manager on the real local backend, driven the way law drives it (group calls).

law calls ``submit_group``/``query_group``/``cancel_group``/``cleanup_group`` from its thread
pool; these tests make the same calls, with real jobs, and count the batchkit calls behind them
with a counting subclass of the local backend (real jobs, real state; only counted).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from batchkit_law.job_id import LawJobId, parse_law_job_id
from batchkit_law.manager import BatchkitJobManager
from batchkit_law.round import Round, RoundJob

import batchkit as bk
from batchkit.backends.local import LocalJobManager
from batchkit.model import JobInfo, JobSpec


class CountingLocalJobManager(LocalJobManager):
    """The local backend, counting how often it is asked (one instance per law manager)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.calls: list[tuple[str, int]] = []

    def submit(self, specs: Sequence[JobSpec], directory: Any = None, **kw: Any) -> list[str]:
        self.calls.append(("submit", len(specs)))
        return super().submit(specs, directory, **kw)

    def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        self.calls.append(("query", len(job_ids)))
        return super().query(job_ids)

    def cancel(self, job_ids: Sequence[str]) -> None:
        self.calls.append(("cancel", len(job_ids)))
        super().cancel(job_ids)


bk.register_backend("law-test-counting-local", CountingLocalJobManager)


def _round(directory: Path, commands: dict[int, list[str]]) -> str:
    directory.mkdir(parents=True)
    jobs = tuple(RoundJob(num, 1, JobSpec(cmd), None) for num, cmd in commands.items())
    return str(Round(str(directory), "law_test_round", jobs).write())


def _wait(manager: BatchkitJobManager, ids: list[str], final: int, timeout: float = 60) -> tuple[dict[str, Any], int]:
    """Poll like law does until ``final`` jobs ended; returns the last answer and the number of polls."""
    polls = 0
    deadline = time.monotonic() + timeout
    while True:
        polls += 1
        answer = manager.query_group(ids)
        ended = [d for d in answer.values() if d["status"] in ("finished", "failed", "retry")]
        if len(ended) >= final or time.monotonic() > deadline:
            return answer, polls
        time.sleep(0.2)


def test_a_round_is_one_submit_and_every_poll_at_most_one_query(tmp_path: Path) -> None:
    path = _round(tmp_path / "round_1", {1: ["true"], 2: ["sh", "-c", "exit 7"], 3: ["sleep", "60"]})
    manager = BatchkitJobManager("law-test-counting-local", {"max_parallel": 3}, query_interval=0)
    ids = manager.submit_group([path] * 3)
    backend = manager.batchkit_manager
    assert isinstance(backend, CountingLocalJobManager)
    assert backend.calls == [("submit", 3)]
    assert [parse_law_job_id(i).index for i in ids] == [1, 2, 3]
    assert all(parse_law_job_id(i).directory == str(tmp_path / "round_1") for i in ids)

    answer, polls = _wait(manager, ids, final=2)
    assert list(answer) == ids  # law pairs results with its jobs by position
    assert answer[ids[0]]["status"] == "finished" and answer[ids[0]]["code"] == 0
    assert answer[ids[1]]["status"] == "failed" and answer[ids[1]]["code"] == 7
    assert answer[ids[1]]["extra"]["remote_host"]  # from the wrapper's start marker
    assert answer[ids[2]]["status"] in ("pending", "running")
    queries = backend.calls[1:]
    assert len(queries) == polls and {name for name, _ in queries} == {"query"}  # one per law poll
    manager.query_group(ids)
    assert backend.calls[-1] == ("query", 1)  # jobs with an exit marker are not asked about again

    assert manager.cancel_group([ids[2]]) == []
    assert backend.calls[-1] == ("cancel", 1)
    cancelled = manager.query_group([ids[2]])[ids[2]]
    assert cancelled["status"] == "failed" and "cancelled" in cancelled["error"]


def test_between_scheduler_queries_the_markers_report_progress(tmp_path: Path) -> None:
    path = _round(tmp_path / "round_1", {1: ["sleep", "1"], 2: ["sh", "-c", "sleep 1; exit 5"]})
    manager = BatchkitJobManager("law-test-counting-local", {"max_parallel": 2}, query_interval=3600)
    ids = manager.submit_group([path] * 2)
    seen: set[str] = set()
    deadline = time.monotonic() + 60
    answer: dict[str, Any] = {}
    while time.monotonic() < deadline:
        answer = manager.query_group(ids)
        seen.update(d["status"] for d in answer.values())
        if all(d["status"] in ("finished", "failed") for d in answer.values()):
            break
        time.sleep(0.1)
    assert [(d["status"], d["code"]) for d in answer.values()] == [("finished", 0), ("failed", 5)]
    assert "running" in seen  # from the start markers
    backend = manager.batchkit_manager
    assert isinstance(backend, CountingLocalJobManager)
    assert backend.calls == [("submit", 2), ("query", 2)]  # only the first poll asked the backend


def test_ids_stay_queryable_from_a_new_process_and_after_cleanup(tmp_path: Path) -> None:
    path = _round(tmp_path / "round_1", {4: ["true"], 9: ["sh", "-c", "exit 3"]})
    ids = BatchkitJobManager("local").submit_group([path] * 2)
    _wait(BatchkitJobManager("local"), ids, final=2)

    stored = [BatchkitJobManager.cast_job_id(i) for i in ids]  # as a restarted law run reads them
    fresh = BatchkitJobManager("local")
    answer = fresh.query_group(stored)
    assert [(d["status"], d["code"]) for d in answer.values()] == [("finished", 0), ("failed", 3)]

    assert fresh.cleanup_group(stored) == []  # the local run registry is gone now ...
    assert (
        fresh.batchkit_manager.query([parse_law_job_id(i).backend_id for i in stored])[
            parse_law_job_id(stored[0]).backend_id
        ].status
        is bk.JobStatus.UNKNOWN
    )
    answer = fresh.query_group(stored)  # ... and the wrapper's exit markers answer instead
    assert [(d["status"], d["code"]) for d in answer.values()] == [("finished", 0), ("failed", 3)]


def test_a_job_the_scheduler_never_knew_waits_then_is_lost(tmp_path: Path) -> None:
    ghost = str(LawJobId("0123456789.0", str(tmp_path), 1))  # no such local run, no markers
    assert BatchkitJobManager("local").query_group([ghost])[ghost]["status"] == "pending"
    lost = BatchkitJobManager("local", lost_after=0).query_group([ghost])[ghost]
    assert lost["status"] == "retry" and lost["error"].startswith("lost")


def test_ids_law_did_not_get_from_batchkit_are_retried_not_raised(tmp_path: Path) -> None:
    manager = BatchkitJobManager("local")
    answer = manager.query_group(["4711", "dummy_job_id"])
    assert [d["status"] for d in answer.values()] == ["retry", "retry"]
    errors = manager.cancel_group(["4711"])
    assert len(errors) == 1 and "4711" in str(errors[0])


def test_a_missing_round_file_fails_every_job_of_the_round(tmp_path: Path) -> None:
    missing = str(tmp_path / "nowhere" / "law_round.json")
    results = BatchkitJobManager("local").submit_group([missing] * 2)
    assert len(results) == 2 and all(isinstance(r, Exception) for r in results)


@pytest.mark.parametrize("backend", ["no-such-backend"])
def test_an_unknown_backend_is_reported_when_used(tmp_path: Path, backend: str) -> None:
    manager = BatchkitJobManager(backend)  # building a task must not fail
    path = _round(tmp_path / "round_1", {1: ["true"]})
    (result,) = manager.submit_group([path])
    assert isinstance(result, bk.BatchkitError) and backend in str(result)
