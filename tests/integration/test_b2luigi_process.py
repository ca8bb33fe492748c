"""BatchkitProcess driven the way b2luigi's worker drives it: start_job, then is_alive until done.

b2luigi's own ``BatchProcess.is_alive`` (unchanged) turns our answers into luigi results on
the result queue, so these tests see exactly what luigi would. Jobs run on the real local
backend; b2luigi's batch-runner command is replaced by ``/bin/true``/``/bin/false`` through
b2luigi's ``executable`` setting, so no task graph is needed.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import b2luigi
import luigi.scheduler
import pytest
from b2luigi.core.settings import with_new_settings
from batchkit_b2luigi import BatchkitProcess, jobgroup

from batchkit.record import Phase


class Job(b2luigi.Task):
    n = b2luigi.IntParameter()


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("B2LUIGI_TASK_FILE", str(tmp_path / "tasks.py"))
    monkeypatch.delenv("B2LUIGI_SETTINGS_JSON", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(jobgroup, "_GROUPS", {})
    with with_new_settings():
        b2luigi.set_setting("log_dir", str(tmp_path / "logs"))
        b2luigi.set_setting("task_file_dir", str(tmp_path / "task_files"))
        b2luigi.set_setting("batchkit_poll_interval", 0.2)
        b2luigi.set_setting("batchkit_submit_window", 0.5)
        yield tmp_path
    for group in jobgroup.all_groups():
        if group._submission is not None:
            active = [j.index for j in group.submission().jobs if j.phase is not Phase.DONE]
            if active:
                group.submission().cancel(active)
            group.close()


def process(task: Any, results: queue.Queue[Any]) -> BatchkitProcess:
    return BatchkitProcess(task=task, scheduler=None, result_queue=results, worker_timeout=None)


def drive(processes: list[BatchkitProcess], timeout: float = 60) -> None:
    """What luigi's worker loop does: ask every process is_alive() about once a second."""
    deadline = time.monotonic() + timeout
    alive = list(processes)
    while alive:
        alive = [p for p in alive if p.is_alive()]
        assert time.monotonic() < deadline, [p.task for p in alive]
        time.sleep(0.1)


def test_successful_and_failed_jobs_reach_luigis_result_queue(settings: Path) -> None:
    results: queue.Queue[Any] = queue.Queue()
    b2luigi.set_setting("executable", ["/bin/true"])
    good = [process(Job(n=i), results) for i in range(5)]
    for p in good:
        p.run()
    b2luigi.set_setting("executable", ["/bin/false"])
    bad = process(Job(n=99), results)
    bad.run()
    drive([*good, bad])
    got = {}
    while not results.empty():
        task_id, status, explanation, _missing, _new_deps = results.get()
        got[task_id] = (status, explanation)
    assert {p.task.task_id: got[p.task.task_id][0] for p in good} == {
        p.task.task_id: luigi.scheduler.DONE for p in good
    }
    status, explanation = got[bad.task.task_id]
    assert status == luigi.scheduler.FAILED
    log_dir = settings / "logs" / "n=99" / "Job"
    assert str(log_dir) in explanation  # b2luigi's explanation points at the log directory
    failed = (log_dir / "failed_jobs.log").read_text()
    assert "FAILED, exit code 1" in failed and str(log_dir) in failed
    # one submission for all six jobs (they were started within the submit window)
    group = jobgroup.all_groups()[0]
    assert {j.batch for j in group.submission().jobs} == {1}


def test_bad_settings_fail_the_task_not_the_worker(settings: Path) -> None:
    results: queue.Queue[Any] = queue.Queue()
    b2luigi.set_setting("batchkit_resources", {"ram": "2GB"})
    p = process(Job(n=1), results)
    p.run()  # must not raise into luigi's worker loop
    assert p.is_alive() is False
    task_id, status, _explanation, _, _ = results.get_nowait()
    assert (task_id, status) == (p.task.task_id, luigi.scheduler.FAILED)
    failed = (settings / "logs" / "n=1" / "Job" / "failed_jobs.log").read_text()
    assert "not submitted" in failed and "unknown field" in failed


def test_unknown_backend_fails_the_task_with_the_known_ones_named(settings: Path) -> None:
    results: queue.Queue[Any] = queue.Queue()
    b2luigi.set_setting("batchkit_backend", "no-such-scheduler")
    p = process(Job(n=2), results)
    p.run()
    assert p.is_alive() is False
    assert "local" in (settings / "logs" / "n=2" / "Job" / "failed_jobs.log").read_text()


def test_terminate_before_start_is_harmless() -> None:
    p = process(Job(n=3), queue.Queue())
    p.terminate()
    assert p.get_job_status() is not None


def test_worker_timeout_cancels_only_that_job(settings: Path) -> None:
    results: queue.Queue[Any] = queue.Queue()
    b2luigi.set_setting("executable", ["/bin/sleep", "30"])
    slow = BatchkitProcess(task=Job(n=4), scheduler=None, result_queue=results, worker_timeout=0.5)
    other = process(Job(n=5), results)
    slow.run()
    other.run()
    time.sleep(1.0)
    assert slow.is_alive() and other.is_alive()  # submitted, running
    slow.terminate()  # what luigi's _purge_children does once timeout_time has passed
    group = jobgroup.all_groups()[0]
    states = {j.name: j.status.value for j in group.submission().jobs}
    assert states[slow.task.task_id] == "CANCELLED"
    assert states[other.task.task_id] in ("PENDING", "RUNNING")


def test_b2luigi_finds_the_batch_system_through_its_entry_point() -> None:
    from b2luigi.batch.workers import BatchSystems

    system = BatchSystems("batchkit")
    assert system.kind == "plugin"
    assert system.load_process_class() is BatchkitProcess
