"""Real law workflows with ``--workflow batchkit``: on the local backend and on the real Slurm.

Each test runs ``law run lawtasks.CountedTask`` (tests/fixtures/law/lawtasks.py) in a
subprocess with its own LAW_HOME, law.cfg (``[luigi_core] local_scheduler: True``) and output
directory. Every branch appends its number to ``runs.log`` when it runs, so duplicates and
retries are counted, not guessed.
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
from batchkit_law.job_id import parse_law_job_id
from conftest import FIXTURES, slurm_backend_options

import batchkit as bk

LAW_FIXTURES = FIXTURES / "law"
VENV_BIN = Path(sys.executable).parent
TASK = "lawtasks.CountedTask"
JOBS_JSON = "batchkit_jobs_0To{n}.json"
SCHEDULER_TOOLS = ("sbatch", "squeue", "sacct", "scontrol", "scancel")


def law_env(tmp_path: Path, backend_options: dict[str, Any] | None = None) -> dict[str, str]:
    """Environment of one test's law runs (and of its jobs, which inherit it)."""
    (tmp_path / "out").mkdir(parents=True, exist_ok=True)
    config = tmp_path / "law.cfg"
    config.write_text((LAW_FIXTURES / "law.cfg.in").read_text().replace("@DIR@", str(tmp_path)))
    env = dict(os.environ)
    env.update(
        PATH=f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}",
        PYTHONPATH=os.pathsep.join(p for p in (str(LAW_FIXTURES), env.get("PYTHONPATH", "")) if p),
        LAW_HOME=str(tmp_path / "law_home"),
        LAW_CONFIG_FILE=str(config),
        LAWTEST_OUT=str(tmp_path / "out"),
        LAWTEST_BACKEND_OPTIONS=json.dumps(backend_options or {}),
    )
    return env


def law_args(*args: str) -> list[str]:
    return [str(VENV_BIN / "law"), "run", TASK, "--workflow", "batchkit", "--poll-interval", "0.02", *args]


def law_run(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(law_args(*args), env=env, capture_output=True, text=True, timeout=timeout, check=False)


def runs(tmp_path: Path) -> Counter[int]:
    """How often each branch's run() started."""
    log = tmp_path / "out" / "runs.log"
    return Counter(int(line) for line in log.read_text().split()) if log.exists() else Counter()


def jobs_json(tmp_path: Path, n: int) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((tmp_path / "out" / "jobs" / JOBS_JSON.format(n=n)).read_text())
    return data


def rounds(tmp_path: Path) -> list[dict[str, Any]]:
    """Every submission round law made (its law_round.json), oldest first."""
    files = sorted((tmp_path / "jobfiles").glob("*/round_*/law_round.json"), key=lambda p: p.stat().st_mtime)
    return [json.loads(p.read_text()) for p in files]


def explain(result: subprocess.CompletedProcess[str]) -> str:
    return (
        f"law run exited {result.returncode}\n--- stdout\n{result.stdout[-6000:]}\n--- stderr\n{result.stderr[-6000:]}"
    )


def check_retry_workflow(tmp_path: Path, result: subprocess.CompletedProcess[str]) -> None:
    """20 branches, 2 per job, branch 5 fails once: everything ran once, branch 5 twice."""
    assert result.returncode == 0, explain(result)
    outputs = tmp_path / "out" / "outputs"
    assert sorted(p.name for p in outputs.iterdir()) == sorted(f"out_{b}.txt" for b in range(20))
    assert all((outputs / f"out_{b}.txt").read_text() == f"{b}\n" for b in range(20))
    assert runs(tmp_path) == Counter({**{b: 1 for b in range(20)}, 5: 2})

    data = jobs_json(tmp_path, 20)
    assert sorted(data["jobs"], key=int) == [str(n) for n in range(1, 11)]
    assert {job["status"] for job in data["jobs"].values()} == {"finished"}
    assert data["attempts"] == {"3": 1}  # job 3 = branches 4 and 5
    assert data["unsubmitted_jobs"] == {}

    made = rounds(tmp_path)
    assert [[j["job_num"] for j in r["jobs"]] for r in made] == [list(range(1, 11)), [3]]
    assert [j["attempt"] for j in made[1]["jobs"]] == [2]
    assert "going to submit 10 batchkit job(s)" in result.stdout
    assert "going to submit 1 batchkit job(s)" in result.stdout


# ----------------------------------------------------------------------------- local backend


@pytest.mark.slow
def test_workflow_with_a_retry_runs_to_completion_on_the_local_backend(tmp_path: Path) -> None:
    env = law_env(tmp_path)
    result = law_run(env, "--n", "20", "--tasks-per-job", "2", "--fail-once", "5", "--retries", "2", "--transfer-logs")
    check_retry_workflow(tmp_path, result)
    # --transfer-logs: law_job.sh tees each job's output where law expects it, and law knows where
    data = jobs_json(tmp_path, 20)
    log = Path(data["jobs"]["1"]["extra"]["log"])
    assert log == tmp_path / "out" / "jobs" / "stdall_0To2.txt"
    assert "law remote job script" in log.read_text()
    failed_then_ok = (tmp_path / "out" / "jobs" / "stdall_4To6.txt").read_text()
    assert failed_then_ok.count("law remote job script") == 2  # both attempts appended
    assert "job exit code : 60" in failed_then_ok and "job exit code : 0" in failed_then_ok


@pytest.mark.slow
def test_cancel_jobs_cancels_the_submitted_jobs(tmp_path: Path) -> None:
    env = law_env(tmp_path)
    args = ("--n", "4", "--tasks-per-job", "2", "--sleep", "300")
    submitted = law_run(env, *args, "--no-poll", timeout=120)
    assert submitted.returncode == 0, explain(submitted)
    ids = [parse_law_job_id(job["job_id"]) for job in jobs_json(tmp_path, 4)["jobs"].values()]
    assert len(ids) == 2
    deadline = time.monotonic() + 60
    while not all(job.start_marker.exists() for job in ids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert all(job.start_marker.exists() for job in ids), "the jobs should be running before they are cancelled"

    cancelled = law_run(env, *args, "--cancel-jobs", timeout=120)
    assert cancelled.returncode == 0, explain(cancelled)
    assert "going to cancel 2 jobs" in cancelled.stdout
    states = bk.get_job_manager("local").query([job.backend_id for job in ids])
    assert {info.status for info in states.values()} == {bk.JobStatus.CANCELLED}
    assert all(job.exit_marker.exists() for job in ids)  # the wrapper saw the signal and ended
    assert not (tmp_path / "out" / "outputs").exists()


@pytest.mark.slow
def test_interrupted_law_run_resumes_polling_the_same_jobs(tmp_path: Path) -> None:
    env = law_env(tmp_path)
    args = ("--n", "8", "--tasks-per-job", "2", "--sleep", "5")
    first = subprocess.Popen(law_args(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        jobs_file = tmp_path / "out" / "jobs" / JOBS_JSON.format(n=8)
        ids: list[Any] = []
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and first.poll() is None:
            if jobs_file.exists():
                ids = [job["job_id"] for job in json.loads(jobs_file.read_text())["jobs"].values()]
                if len(ids) == 4 and all(parse_law_job_id(i).start_marker.exists() for i in ids[:1]):
                    break
            time.sleep(0.2)
        assert first.poll() is None and len(ids) == 4, "law should be polling running jobs by now"
        # Like a user pressing Ctrl+C again if the first press did nothing: law has bare
        # ``except:`` clauses (e.g. law.util.colored, run for every status line) that would
        # swallow a KeyboardInterrupt raised inside them. Our part (nothing lost, no duplicates
        # after the restart) is what the assertions below check.
        output = ""
        for _ in range(5):
            first.send_signal(signal.SIGINT)
            try:
                output, _ = first.communicate(timeout=4)
                break
            except subprocess.TimeoutExpired:
                continue
        else:
            output, _ = first.communicate(timeout=60)
    finally:
        if first.poll() is None:
            first.kill()
            first.wait()
    assert first.returncode != 0, output
    assert "KeyboardInterrupt" in output
    assert sum(runs(tmp_path).values()) < 8, "the interrupt should come while branches are still to run"

    second = law_run(env, *args, timeout=600)
    assert second.returncode == 0, explain(second)
    assert "going to submit" not in second.stdout  # it polled the jobs the first run submitted
    assert runs(tmp_path) == Counter(range(8))  # every branch ran exactly once
    assert len(rounds(tmp_path)) == 1
    assert {job["status"] for job in jobs_json(tmp_path, 8)["jobs"].values()} == {"finished"}


# ----------------------------------------------------------------------------- real Slurm


def shim_directory(tmp_path: Path) -> tuple[Path, Path]:
    """A PATH directory of wrappers that log each scheduler call, then exec the real command."""
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "scheduler-calls.log"
    for tool in SCHEDULER_TOOLS:
        real = shutil.which(tool)
        if real is None:
            continue
        script = shim / tool
        script.write_text(f'#!/bin/sh\necho "{tool} $*" >> "{log}"\nexec "{real}" "$@"\n')
        script.chmod(0o755)
    return shim, log


def slurm_env(tmp_path: Path) -> tuple[dict[str, str], Path]:
    """law's environment for the test Slurm, with a shim that logs every scheduler call."""
    env = law_env(tmp_path, slurm_backend_options())
    shim, calls_log = shim_directory(tmp_path)
    env["PATH"] = f"{shim}{os.pathsep}{env['PATH']}"
    return env, calls_log


def scheduler_calls(calls_log: Path) -> Counter[str]:
    return Counter(line.split()[0] for line in calls_log.read_text().splitlines())


def polls_of(result: subprocess.CompletedProcess[str], jobs: int) -> int:
    """How many times law polled (it prints one status line per poll)."""
    return sum(1 for line in result.stdout.splitlines() if f": all: {jobs}, " in line)


@pytest.mark.slurm
@pytest.mark.slow
def test_workflow_with_a_retry_runs_to_completion_on_slurm(tmp_path: Path) -> None:
    env, calls_log = slurm_env(tmp_path)
    env["LAWTEST_QUERY_INTERVAL"] = "0"  # ask Slurm on every poll that has unfinished jobs
    result = law_run(
        env, "--batchkit-backend", "slurm", "--n", "20", "--tasks-per-job", "2", "--fail-once", "5", "--retries", "2"
    )
    check_retry_workflow(tmp_path, result)
    calls = scheduler_calls(calls_log)
    assert calls["sbatch"] == 2  # one array per submission round: the first 10 jobs, then the retry
    polls = polls_of(result, 10)
    assert polls >= 3
    assert 2 <= calls["sacct"] + calls["squeue"] <= polls  # at most one status query per law poll
    assert calls["scontrol"] <= 1  # the cluster's configuration, asked once


@pytest.mark.slurm
@pytest.mark.slow
def test_polls_between_scheduler_queries_follow_the_markers_on_slurm(tmp_path: Path) -> None:
    env, calls_log = slurm_env(tmp_path)
    env["LAWTEST_QUERY_INTERVAL"] = "3600"  # Slurm is asked only about new jobs and killed ones
    result = law_run(env, "--batchkit-backend", "slurm", "--n", "6", "--tasks-per-job", "2", "--sleep", "3")
    assert result.returncode == 0, explain(result)
    assert runs(tmp_path) == Counter(range(6))
    polls = polls_of(result, 3)
    assert polls >= 3  # law followed pending -> running -> finished ...
    assert "running: 3" in result.stdout or "running: 2" in result.stdout
    calls = scheduler_calls(calls_log)
    assert (calls["sbatch"], calls["sacct"] + calls["squeue"]) == (1, 1)  # ... from one sbatch and one sacct
