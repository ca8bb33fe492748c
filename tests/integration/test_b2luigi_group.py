"""JobGroup with the real local backend: coalesced submits, one query per poll, restarts.

The group's clock is a fake (so "the worker was quiet for 0.5 s" and "the poll interval has
passed" are exact), the jobs are real local processes. ``CountingLocal`` is the real local
backend plus a counter of its ``query``/``cancel``/``submit_files`` calls.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest
from batchkit_b2luigi.jobgroup import QUIET_SECONDS, JobGroup
from batchkit_b2luigi.settings import GroupKey, WorkerSettings, options_json

import batchkit as bk
from batchkit.backends.local import LocalJobManager
from batchkit.errors import SubmissionBusyError
from batchkit.jobfiles import JobFiles
from batchkit.model import JobInfo
from batchkit.record import Phase

CALLS: Counter[str] = Counter()


class CountingLocal(LocalJobManager):
    """The local backend, counting how often the adapter calls it."""

    def submit_files(self, files: JobFiles) -> list[str]:
        CALLS["submit"] += 1
        return super().submit_files(files)

    def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        CALLS["query"] += 1
        return super().query(job_ids)

    def cancel(self, job_ids: Sequence[str]) -> None:
        CALLS["cancel"] += 1
        super().cancel(job_ids)


bk.register_backend("counting-local", CountingLocal)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def key(tmp_path: Path) -> GroupKey:
    CALLS.clear()
    return GroupKey(str(tmp_path / "record"), "counting-local", options_json({"max_parallel": 8}), 0)


@pytest.fixture
def make_group(key: GroupKey, clock: Clock) -> Iterator[Callable[..., JobGroup]]:
    groups: list[JobGroup] = []

    def make(**worker: object) -> JobGroup:
        group = JobGroup(key, WorkerSettings(**worker), clock)  # type: ignore[arg-type]
        groups.append(group)
        return group

    yield make
    for group in groups:  # never leave sleeping jobs behind
        if group._submission is not None:
            active = [j.index for j in group.submission().jobs if j.phase is not Phase.DONE]
            if active:
                group.submission().cancel(active)
            group.close()


def sh(script: str, name: str) -> bk.JobSpec:
    return bk.JobSpec(["sh", "-c", script], name=name)


def wait_until_final(group: JobGroup, clock: Clock, task_ids: Sequence[str], timeout: float = 60) -> dict[str, str]:
    deadline = time.monotonic() + timeout
    while True:
        clock.now += group.worker.poll_interval
        states = {t: group.status(t).outcome for t in task_ids}
        if all(s != "running" for s in states.values()):
            return states
        assert time.monotonic() < deadline, states
        time.sleep(0.2)


def test_a_burst_of_starts_is_one_submission_once_the_worker_is_quiet(
    make_group: Callable[..., JobGroup], clock: Clock
) -> None:
    group = make_group()
    tasks = [f"T{i}" for i in range(10)]
    for task in tasks:
        assert group.start(task, sh("exit 0", task), lambda: False) == "queued"
        clock.now += 0.01
        assert group.status(tasks[0]).outcome == "running"  # luigi polls in between: no submit yet
    assert CALLS["submit"] == 0
    clock.now += QUIET_SECONDS
    assert group.status(tasks[3]).outcome == "running"
    assert CALLS["submit"] == 1
    jobs = group.submission().jobs
    assert sorted(j.name for j in jobs) == sorted(tasks)
    assert {j.batch for j in jobs} == {1}  # one batch, i.e. one scheduler submit for all ten
    assert wait_until_final(group, clock, tasks) == {t: "successful" for t in tasks}


def test_a_long_burst_is_cut_by_the_submit_window(make_group: Callable[..., JobGroup], clock: Clock) -> None:
    group = make_group(submit_window=2.0)
    for i in range(10):
        group.start(f"T{i}", sh("exit 0", f"T{i}"), lambda: False)
        group.status("T0")
        clock.now += 0.3  # never quiet for 0.5 s
    assert CALLS["submit"] == 1  # the window (2 s) expired during the burst
    first = {j.name for j in group.submission().jobs}
    assert len(first) == 8  # T0..T7: T7 was queued at 2.1 s, and the status call right after submitted
    clock.now += QUIET_SECONDS
    group.status("T9")
    assert CALLS["submit"] == 2
    wait_until_final(group, clock, [f"T{i}" for i in range(10)])


def test_submit_window_zero_submits_each_start_at_once(make_group: Callable[..., JobGroup], clock: Clock) -> None:
    group = make_group(submit_window=0.0)
    group.start("A", sh("exit 0", "A"), lambda: False)
    group.start("B", sh("exit 0", "B"), lambda: False)
    assert CALLS["submit"] == 2


def test_one_query_per_poll_interval_for_all_tasks(make_group: Callable[..., JobGroup], clock: Clock) -> None:
    group = make_group(poll_interval=10.0)
    tasks = [f"T{i}" for i in range(12)]
    for task in tasks:
        group.start(task, sh("sleep 1; exit 0", task), lambda: False)
    clock.now += QUIET_SECONDS
    group.status(tasks[0])
    queries = CALLS["query"]
    for _ in range(5):  # luigi asks every task about once a second
        for task in tasks:
            assert group.status(task).outcome == "running"
        clock.now += 1.0
    assert CALLS["query"] == queries  # 60 status requests, 5 s < interval: no query at all
    clock.now += 5.0
    for task in tasks:
        group.status(task)
    assert CALLS["query"] == queries + 1  # interval passed: one query answered all twelve
    states = wait_until_final(group, clock, tasks)
    assert states == {t: "successful" for t in tasks}


def test_a_failed_job_is_aborted_with_its_exit_code(make_group: Callable[..., JobGroup], clock: Clock) -> None:
    group = make_group()
    group.start("ok", sh("exit 0", "ok"), lambda: False)
    group.start("bad", sh("echo boom >&2; exit 3", "bad"), lambda: False)
    clock.now += QUIET_SECONDS
    assert wait_until_final(group, clock, ["ok", "bad"]) == {"ok": "successful", "bad": "aborted"}
    record = group.record("bad")
    assert record is not None and record.exit_code == 3
    assert "boom" in group.job_files("bad")["stderr"].read_text()


def test_restart_reattaches_queued_and_running_jobs_and_reports_finished_ones(
    make_group: Callable[..., JobGroup], clock: Clock
) -> None:
    first = make_group()
    first.start("long", sh("sleep 30", "long"), lambda: False)
    first.start("short", sh("exit 0", "short"), lambda: False)
    first.start("failed", sh("exit 1", "failed"), lambda: False)
    clock.now += QUIET_SECONDS
    first.status("long")
    wait_until_final(first, clock, ["short", "failed"])
    first.close()  # the b2luigi process died; the jobs live on

    second = make_group()
    assert second.start("long", sh("sleep 30", "long"), lambda: False) == "reattached"
    assert second.start("short", sh("exit 0", "short"), lambda: True) == "finished"
    assert second.start("failed", sh("exit 0", "failed"), lambda: False) == "queued"
    assert second.status("short").outcome == "successful"
    assert second.status("long").outcome == "running"
    clock.now += QUIET_SECONDS
    assert wait_until_final(second, clock, ["failed"]) == {"failed": "successful"}
    names = Counter(j.name for j in second.submission().jobs)
    assert names == {"long": 1, "short": 1, "failed": 2}  # only the failed task got a new job


def test_a_finished_job_whose_outputs_are_gone_is_submitted_again(
    make_group: Callable[..., JobGroup], clock: Clock
) -> None:
    first = make_group()
    first.start("t", sh("exit 0", "t"), lambda: False)
    clock.now += QUIET_SECONDS
    wait_until_final(first, clock, ["t"])
    first.close()
    second = make_group()
    assert second.start("t", sh("exit 0", "t"), lambda: False) == "queued"


def test_jobs_queued_but_never_submitted_by_a_killed_run_are_dropped(
    make_group: Callable[..., JobGroup], clock: Clock, tmp_path: Path
) -> None:
    first = make_group()
    first.start("seed", sh("exit 0", "seed"), lambda: False)  # opens the record
    # the b2luigi process died between "recorded" and "submitted"
    first.submission().add([sh(f"echo x >> {tmp_path / 'ran'}", "orphan")])
    first._pending.clear()
    first.close()
    second = make_group()
    orphan = [j for j in second.submission().jobs if j.name == "orphan"]
    assert [j.status.value for j in orphan] == ["CANCELLED"]
    assert second.start("orphan", sh(f"echo x >> {tmp_path / 'ran'}", "orphan"), lambda: False) == "queued"
    clock.now += QUIET_SECONDS
    assert wait_until_final(second, clock, ["orphan"]) == {"orphan": "successful"}
    assert (tmp_path / "ran").read_text() == "x\n"  # ran once


def test_a_second_worker_on_the_same_record_is_refused(make_group: Callable[..., JobGroup]) -> None:
    first = make_group()
    first.submission()
    second = make_group()
    with pytest.raises(SubmissionBusyError):
        second.start("t", sh("exit 0", "t"), lambda: False)


def test_shutdown_with_the_local_policy_cancels_every_job_in_one_call(
    make_group: Callable[..., JobGroup], clock: Clock
) -> None:
    group = make_group()
    tasks = ["a", "b", "c"]
    for task in tasks:
        group.start(task, sh("sleep 30", task), lambda: False)
    clock.now += QUIET_SECONDS
    group.status("a")
    group.start("queued", sh("sleep 30", "queued"), lambda: False)  # never reaches the backend
    assert group.status("a", interrupted=True).outcome == "running"  # no poll, no failure report
    assert group.shutdown() == ("cancel", 3)
    assert CALLS["cancel"] == 1
    assert {j.name: j.status.value for j in group.submission().jobs} == {t: "CANCELLED" for t in tasks}
    assert group.shutdown() == ("keep", 0)  # luigi terminates each task: later calls are no-ops


def test_shutdown_with_keep_leaves_the_jobs_running(make_group: Callable[..., JobGroup], clock: Clock) -> None:
    group = make_group(on_interrupt="keep")
    group.start("a", sh("sleep 30", "a"), lambda: False)
    clock.now += QUIET_SECONDS
    group.status("a")
    assert group.shutdown() == ("keep", 1)
    assert CALLS["cancel"] == 0
    group.poll()
    record = group.record("a")
    assert record is not None and record.phase is Phase.ACTIVE


def test_cancel_stops_one_task_only(make_group: Callable[..., JobGroup], clock: Clock) -> None:
    group = make_group()
    group.start("a", sh("sleep 30", "a"), lambda: False)
    group.start("b", sh("sleep 30", "b"), lambda: False)
    clock.now += QUIET_SECONDS
    group.status("a")
    assert group.cancel(["a"]) == 1
    assert group.status("a").outcome == "aborted"
    assert group.status("b").outcome == "running"
