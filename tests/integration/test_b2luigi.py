"""Real b2luigi workflows through the ``batchkit`` batch system, on the local backend and on Slurm.

Each test runs ``tests/fixtures/b2luigi/workflow.py`` (21 tasks: 16 Gen -> 4 Merge -> Final)
in a subprocess with its own result/log/task-file directories under tmp_path, exactly as a
user would run a b2luigi script. Every task run appends a line to a shared file, so "ran
exactly once" is counted, not inferred. The b2luigi process is killed with SIGKILL or
interrupted with SIGINT while its jobs run, and started again.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from conftest import FIXTURES, slurm_backend_options

import batchkit as bk
from batchkit.backends.local import is_alive, parse_marker
from batchkit.model import JobStatus

WORKFLOW = FIXTURES / "b2luigi" / "workflow.py"
GENS = [f"Gen {i}" for i in range(16)]
MERGES = [f"Merge {j}" for j in range(4)]
ALL_TASKS = [*GENS, *MERGES, "Final -"]
FINAL = sum(i * i for i in range(16))

pytestmark = pytest.mark.slow


@pytest.fixture(params=["local", pytest.param("slurm", marks=pytest.mark.slurm)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


class Workflow:
    """One b2luigi project directory: the script, its settings and what its tasks left behind."""

    def __init__(self, tmp_path: Path, backend: str, **env: str) -> None:
        self.project = tmp_path / "project"
        self.project.mkdir(exist_ok=True)
        self.script = self.project / "workflow.py"
        shutil.copyfile(WORKFLOW, self.script)
        self.base = tmp_path / "run"
        self.runs_file = tmp_path / "runs.txt"
        self.stats_file = tmp_path / "stats.json"
        self.started = 0
        self.log = tmp_path / "b2luigi-0.log"
        options = slurm_backend_options() if backend == "slurm" else {}
        self.env = {
            **os.environ,
            "B2L_DIR": str(self.base),
            "B2L_RUNS": str(self.runs_file),
            "B2L_BACKEND": backend,
            "B2L_OPTIONS": json.dumps(options),
            "B2L_STATS": str(self.stats_file),
            **env,
        }
        self.env.pop("B2LUIGI_SETTINGS_JSON", None)

    def start(self, **env: str) -> subprocess.Popen[str]:
        """Start the b2luigi script; its output goes to :attr:`log` (read it with :meth:`output`)."""
        self.started += 1
        self.log = self.base.parent / f"b2luigi-{self.started}.log"
        with open(self.log, "w") as log:
            return subprocess.Popen(
                [sys.executable, str(self.script)],
                cwd=self.project,
                env={**self.env, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def run(self, timeout: float = 900, **env: str) -> str:
        proc = self.start(**env)
        rc = proc.wait(timeout=timeout)
        assert rc == 0, self.output()[-3000:]
        return self.output()

    def output(self) -> str:
        return self.log.read_text()

    def runs(self) -> Counter[str]:
        if not self.runs_file.exists():
            return Counter()
        return Counter(line for line in self.runs_file.read_text().splitlines() if line)

    def wait_for_runs(self, count: int, timeout: float = 600) -> None:
        """Until ``count`` task runs were recorded (the shared Slurm may be busy with others' jobs)."""
        deadline = time.monotonic() + timeout
        while sum(self.runs().values()) < count:
            assert time.monotonic() < deadline, self.runs()
            time.sleep(0.2)

    def interrupt_while_running(self) -> None:
        """Start the workflow, press Ctrl+C once two tasks have run, and see it exit with an error."""
        proc = self.start()
        self.wait_for_runs(2)
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=60) != 0

    def final(self) -> str:
        return (self.base / "results" / "final.txt").read_text().strip()

    def stats(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.stats_file.read_text())
        return data

    def submission(self) -> bk.Submission:
        records = list((self.base / "task_files" / "batchkit").iterdir())
        assert len(records) == 1, records
        return bk.Submission.open(records[0])


def assert_each_ran_once(flow: Workflow, tasks: list[str] = ALL_TASKS) -> None:
    assert flow.runs() == Counter({t: 1 for t in tasks})


def test_workflow_runs_to_completion_with_few_submissions(tmp_path: Path, backend: str) -> None:
    flow = Workflow(tmp_path, backend)
    out = flow.run()
    assert "21 ran successfully" in out, out[-3000:]
    assert flow.final() == str(FINAL)
    assert_each_ran_once(flow)
    with flow.submission() as sub:
        jobs = sub.jobs
        assert len(jobs) == 21 and {j.status for j in jobs} == {JobStatus.FINISHED}
        batches = Counter(j.batch for j in jobs)
    # starts are coalesced: the 16 Gen tasks, runnable at once, go out together
    assert len(batches) < 21 and max(batches.values()) >= 8, batches
    stats = flow.stats()
    assert stats["submits"] == len(batches)
    if backend == "slurm":
        calls = stats["calls"]
        assert calls.get("sbatch", 0) == len(batches)  # one array per submission
        status_calls = calls.get("sacct", 0) + calls.get("squeue", 0)
        assert 0 < status_calls <= stats["polls"], calls  # at most one query per poll, for all jobs
        assert calls.get("scontrol", 0) <= 1


def test_failed_job_is_reported_with_its_log_location_and_a_rerun_completes(tmp_path: Path, backend: str) -> None:
    flow = Workflow(tmp_path, backend)
    out = flow.run(B2L_FAIL="5")
    log_dir = flow.base / "logs" / "i=5" / "Gen"
    assert "Failed task Gen(i=5)" in out and str(log_dir) in out, out[-3000:]
    assert "Gen 5 fails on purpose" in (log_dir / "stderr").read_text()
    failed_jobs = (log_dir / "failed_jobs.log").read_text()
    assert str(log_dir) in failed_jobs and "exit code 3" in failed_jobs
    # the failure stops only what depends on it
    assert_each_ran_once(flow, [*GENS, "Merge 0", "Merge 2", "Merge 3"])
    assert not (flow.base / "results" / "final.txt").exists()

    flow.run()
    assert flow.final() == str(FINAL)
    expected = Counter({t: 1 for t in ALL_TASKS})
    expected["Gen 5"] = 2  # failed once, then ran again in the second run
    assert flow.runs() == expected


def test_kill9_while_jobs_run_then_restart_runs_no_task_twice(tmp_path: Path, backend: str) -> None:
    flow = Workflow(tmp_path, backend, B2L_SLEEP="6")
    proc = flow.start()
    flow.wait_for_runs(2)  # Gen jobs are running
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    with flow.submission() as sub:
        before = {j.name for j in sub.jobs}
    assert before, "nothing was submitted before the kill"

    out = flow.run()
    assert flow.final() == str(FINAL), out[-3000:]
    assert_each_ran_once(flow)
    with flow.submission() as sub:
        names = Counter(j.name for j in sub.jobs)
    # b2luigi issue #204: a restart must not submit tasks whose jobs are queued or running
    assert names == Counter({name: 1 for name in names}) and len(names) == 21


def test_ctrl_c_on_the_local_backend_stops_the_jobs(tmp_path: Path) -> None:
    flow = Workflow(tmp_path, "local", B2L_SLEEP="60")
    flow.interrupt_while_running()
    with flow.submission() as sub:
        jobs = sub.jobs
        assert jobs and {j.status for j in jobs} == {JobStatus.CANCELLED}
        hosts = [parse_marker(p.read_text()) for p in (tmp_path / "run").rglob("markers/*.start")]
    assert hosts
    for host in hosts:  # every job that had started is gone
        assert not is_alive(int(host["pid"]), None)
    assert "cancelled 16 batchkit jobs" in flow.output()


@pytest.mark.slurm
def test_ctrl_c_on_slurm_keeps_the_jobs_and_a_restart_reattaches(tmp_path: Path) -> None:
    flow = Workflow(tmp_path, "slurm", B2L_SLEEP="8")
    flow.interrupt_while_running()
    assert "keep running" in flow.output()
    with flow.submission() as sub:
        active = [j for j in sub.jobs if j.job_id]
        infos = sub.manager.query([j.job_id for j in active if j.job_id])
    assert active and any(i.status in (JobStatus.PENDING, JobStatus.RUNNING) for i in infos.values())

    flow.run()
    assert flow.final() == str(FINAL)
    assert_each_ran_once(flow)
    with flow.submission() as sub:
        assert len(sub.jobs) == 21  # the kept jobs were adopted, not submitted again


@pytest.mark.slurm
def test_a_refused_submission_fails_the_tasks_not_the_worker(tmp_path: Path) -> None:
    flow = Workflow(tmp_path, "slurm")
    flow.env["B2L_OPTIONS"] = json.dumps({**slurm_backend_options(), "partition": "nosuchpartition"})
    out = flow.run()
    assert "16 failed" in out or "failed:" in out, out[-3000:]
    failed_jobs = (flow.base / "logs" / "i=0" / "Gen" / "failed_jobs.log").read_text()
    assert "invalid partition" in failed_jobs.lower()
    assert flow.runs() == Counter()


@pytest.mark.slurm
def test_a_requeued_job_keeps_the_worker_alive_and_reruns(tmp_path: Path) -> None:
    # b2luigi's own Slurm backend raises ValueError("Unknown Slurm Job status: REQUEUED")
    flow = Workflow(tmp_path, "slurm", B2L_SLEEP="8")
    proc = flow.start()
    flow.wait_for_runs(1)
    first = sorted(flow.runs())[0]  # e.g. "Gen 7": its job is running
    with flow.submission() as sub:  # reading the record needs no lock
        job_id = next(j.job_id for j in sub.jobs if j.name and j.name.startswith(first.replace(" ", "_") + "_"))
    assert job_id
    env = {**os.environ, **slurm_backend_options().get("env", {})}
    subprocess.run(["scontrol", "requeue", job_id], env=env, check=True, capture_output=True, timeout=60)
    assert proc.wait(timeout=900) == 0, flow.output()[-3000:]
    out = flow.output()
    assert "21 ran successfully" in out and "Traceback" not in out, out[-3000:]
    assert flow.final() == str(FINAL)
    expected = Counter({t: 1 for t in ALL_TASKS})
    expected[first] = 2  # killed by the requeue, then run again by Slurm under the same job id
    assert flow.runs() == expected
