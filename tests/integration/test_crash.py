"""Lose the supervising process at any instant; the next ``wait`` runs every job exactly once.

Each job appends its index to a shared file, so duplicates and losses are visible directly.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter
from pathlib import Path

import pytest

from batchkit.backends.local import is_alive

N = 24
JOB = 'echo "$BATCHKIT_INDEX" >> "$1"; sleep 0.2'

# A real local backend that SIGKILLs its own process at an exact point of the submit
# protocol: "before" the scheduler call (intent recorded, nothing submitted) or "after" it
# (the scheduler has the jobs, their ids are not recorded yet).
SCRIPT = textwrap.dedent(
    """
    import os, signal, sys
    import batchkit as bk
    from batchkit.backends.local import LocalJobManager

    WHEN = os.environ.get("CRASH_WHEN", "")
    JOB = os.environ["CRASH_JOB"]

    class Crashing(LocalJobManager):
        def submit_files(self, files):
            if WHEN == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            ids = super().submit_files(files)
            if WHEN == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return ids

    bk.register_backend("crashing", Crashing)
    directory, counter, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    if os.path.exists(os.path.join(directory, "batchkit.sqlite")):
        sub = bk.Submission.open(directory)
    else:
        spec = bk.JobSpec(["sh", "-c", JOB, "x", counter])
        sub = bk.Submission.create(directory, backend="crashing", specs=[spec] * n,
                                   backend_options={"max_parallel": 8})
    sub.wait(poll_interval=0.2)
    print(sub.counts())
    """
)


def run_script(tmp_path: Path, d: Path, counter: Path, when: str) -> subprocess.CompletedProcess[str]:
    script = tmp_path / "supervise.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "CRASH_WHEN": when, "CRASH_JOB": JOB}
    return subprocess.run(
        [sys.executable, str(script), str(d), str(counter), str(N)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def assert_exactly_once(counter: Path) -> None:
    runs = Counter(counter.read_text().split())
    assert runs == Counter({str(i): 1 for i in range(N)}), runs


@pytest.mark.parametrize("when", ["before", "after"])
def test_kill9_at_exact_points_of_submit(tmp_path: Path, when: str) -> None:
    d, counter = tmp_path / "sub", tmp_path / "runs"
    first = run_script(tmp_path, d, counter, when)
    assert first.returncode == -signal.SIGKILL
    second = run_script(tmp_path, d, counter, "")
    assert second.returncode == 0, second.stderr
    assert "'FINISHED': 24" in second.stdout
    assert_exactly_once(counter)


def bk_cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "batchkit", *args]


@pytest.mark.parametrize("delay", [0.05, 0.25, 0.4, 0.55, 0.7, 0.9, 1.3])
def test_kill9_of_cli_at_random_instants(tmp_path: Path, delay: float) -> None:
    """Kill `batchkit submit --wait` wherever it happens to be, then resume with the CLI."""
    d, counter = tmp_path / "sub", tmp_path / "runs"
    submit = bk_cli(
        "submit", "-b", "local", "-d", str(d), "--array", str(N), "-o", "max_parallel=6", "--wait", "-q",
        "--poll-interval", "0.2", "--", "sh", "-c", JOB, "x", str(counter),
    )  # fmt: skip
    proc = subprocess.Popen(submit, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(delay)
    proc.kill()
    proc.wait()
    if (d / "batchkit.sqlite").exists():
        resume = subprocess.run(bk_cli("wait", str(d), "-q", "--poll-interval", "0.2"), timeout=120)
    else:  # killed before the record existed: the user just runs the same command again
        resume = subprocess.run(submit, timeout=120)
    assert resume.returncode == 0
    assert_exactly_once(counter)
    data = json.loads(subprocess.run(bk_cli("status", str(d), "--json"), capture_output=True, text=True).stdout)
    assert data["counts"] == {"FINISHED": N}
    assert all(j["attempts"] == 1 for j in data["jobs"])


def _start_waiting(d: Path, marker: Path, policy: list[str]) -> subprocess.Popen[bytes]:
    cmd = bk_cli(
        "submit", "-b", "local", "-d", str(d), "--array", "2", "-o", "max_parallel=2", "--wait", "-q",
        "--poll-interval", "0.2", *policy, "--", "sh", "-c", 'touch "$1.$BATCHKIT_INDEX"; sleep 4', "x", str(marker),
    )  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not (Path(f"{marker}.0").exists() and Path(f"{marker}.1").exists()):
        assert time.monotonic() < deadline, "jobs did not start"
        time.sleep(0.05)
    return proc


def test_ctrl_c_stops_local_jobs_by_default(tmp_path: Path) -> None:
    d = tmp_path / "sub"
    proc = _start_waiting(d, tmp_path / "started", [])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    data = json.loads(subprocess.run(bk_cli("status", str(d), "--json"), capture_output=True, text=True).stdout)
    assert data["counts"] == {"CANCELLED": 2}
    pids = [p.read_text().split() for p in (d / "batches" / "0001" / "pids").iterdir()]
    assert len(pids) == 2
    for pid, start in pids:
        assert not is_alive(int(pid), start)  # gone (or a zombie waiting to be reaped by init)


def test_ctrl_c_keep_then_wait_picks_them_up(tmp_path: Path) -> None:
    d = tmp_path / "sub"
    proc = _start_waiting(d, tmp_path / "started", ["--on-interrupt", "keep"])
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    resume = subprocess.run(bk_cli("wait", str(d), "-q", "--poll-interval", "0.2"), timeout=60)
    assert resume.returncode == 0
    data = json.loads(subprocess.run(bk_cli("status", str(d), "--json"), capture_output=True, text=True).stdout)
    assert data["counts"] == {"FINISHED": 2}
    assert [j["attempts"] for j in data["jobs"]] == [1, 1]
