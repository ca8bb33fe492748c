"""The local backend as a JobManager: real detached processes, slots, cancel, re-attach."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import batchkit as bk
from batchkit.backends.local import LocalJobManager, is_alive, runner_running

FINAL = (bk.JobStatus.FINISHED, bk.JobStatus.FAILED, bk.JobStatus.CANCELLED)


def wait_final(mgr: bk.JobManager, ids: list[str], timeout: float = 60) -> dict[str, bk.JobInfo]:
    deadline = time.monotonic() + timeout
    while True:
        infos = mgr.query(ids)
        if all(i.status in FINAL for i in infos.values()):
            return infos
        assert time.monotonic() < deadline, infos
        time.sleep(0.1)


def test_parallelism_limit_is_respected(tmp_path: Path) -> None:
    mgr = LocalJobManager(max_parallel=3, state_dir=tmp_path / "state")
    log = tmp_path / "intervals"
    script = f'echo "start $(date +%s.%N)" >> {log}; sleep 0.4; echo "end $(date +%s.%N)" >> {log}'
    ids = mgr.submit([bk.JobSpec(["sh", "-c", script]) for _ in range(9)], tmp_path / "b")
    infos = wait_final(mgr, ids)
    assert all(i.status is bk.JobStatus.FINISHED for i in infos.values())
    events = sorted((float(t), kind) for kind, t in (line.split() for line in log.read_text().splitlines()))
    running = peak = 0
    for _, kind in events:
        running += 1 if kind == "start" else -1
        peak = max(peak, running)
    assert peak <= 3
    assert len(events) == 18


def test_exit_codes_and_unknown_ids(tmp_path: Path) -> None:
    mgr = LocalJobManager(max_parallel=4, state_dir=tmp_path / "state")
    ids = mgr.submit([bk.JobSpec(["sh", "-c", f"exit {c}"]) for c in (0, 3, 255)], tmp_path / "b")
    infos = wait_final(mgr, ids)
    assert [infos[i].exit_code for i in ids] == [0, 3, 255]
    assert [infos[i].status for i in ids] == [bk.JobStatus.FINISHED, bk.JobStatus.FAILED, bk.JobStatus.FAILED]
    missing = mgr.query(["deadbeef00.0", ids[0].split(".")[0] + ".99"])
    assert {i.status for i in missing.values()} == {bk.JobStatus.UNKNOWN}


def test_cancel_running_and_pending(tmp_path: Path) -> None:
    mgr = LocalJobManager(max_parallel=1, state_dir=tmp_path / "state")
    ids = mgr.submit([bk.JobSpec(["sleep", "60"]) for _ in range(3)], tmp_path / "b")
    deadline = time.monotonic() + 20
    while mgr.query(ids[:1])[ids[0]].status is not bk.JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int((tmp_path / "b" / "pids" / "0").read_text().split()[0])
    mgr.cancel(ids)
    infos = wait_final(mgr, ids, timeout=20)
    assert [infos[i].status for i in ids] == [bk.JobStatus.CANCELLED] * 3
    assert not is_alive(pid, None)
    time.sleep(0.3)
    assert not (tmp_path / "b" / "pids" / "2").exists()  # never started


def test_jobs_survive_the_submitter_and_runner_is_restarted(tmp_path: Path) -> None:
    """Kill the runner before it launched everything: a query starts a new one, no duplicates."""
    mgr = LocalJobManager(max_parallel=1, state_dir=tmp_path / "state")
    counter = tmp_path / "count"
    ids = mgr.submit(
        [bk.JobSpec(["sh", "-c", f"echo $BATCHKIT_INDEX >> {counter}; sleep 0.5"]) for _ in range(4)], tmp_path / "b"
    )
    deadline = time.monotonic() + 20
    while not runner_running(tmp_path / "b"):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    pgrep = subprocess.run(["pgrep", "-f", f"local_runner {tmp_path / 'b'}"], capture_output=True, text=True)
    for line in pgrep.stdout.split():
        os.kill(int(line), signal.SIGKILL)
    fresh = LocalJobManager(max_parallel=1, state_dir=tmp_path / "state")  # a new process would do the same
    infos = wait_final(fresh, ids)
    assert all(i.status is bk.JobStatus.FINISHED for i in infos.values())
    assert sorted(counter.read_text().split()) == ["0", "1", "2", "3"]


def test_find_adopts_a_submitted_batch(tmp_path: Path) -> None:
    mgr = LocalJobManager(max_parallel=2, state_dir=tmp_path / "state")
    ids = mgr.submit([bk.JobSpec(["true"]) for _ in range(3)], tmp_path / "b", tag="mytag")
    found = mgr.find("mytag", tmp_path / "b")
    assert {row: info.job_id for row, info in found.items()} == dict(enumerate(ids))
    assert mgr.find("othertag", tmp_path / "b") == {}
    assert mgr.find("mytag", tmp_path / "nothing") == {}


def test_job_killed_hard_is_reported_failed(tmp_path: Path) -> None:
    mgr = LocalJobManager(max_parallel=1, state_dir=tmp_path / "state")
    ids = mgr.submit([bk.JobSpec(["sleep", "60"])], tmp_path / "b")
    deadline = time.monotonic() + 20
    while mgr.query(ids)[ids[0]].status is not bk.JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pid = int((tmp_path / "b" / "pids" / "0").read_text().split()[0])
    os.killpg(pid, signal.SIGKILL)
    info = wait_final(mgr, ids)[ids[0]]
    assert info.status is bk.JobStatus.FAILED
    assert "without writing an exit marker" in (info.reason or "")


SUBMIT_WITH_SIGNALS_BLOCKED = """
import signal, sys
from batchkit.backends.local import LocalJobManager
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
signal.signal(signal.SIGHUP, signal.SIG_IGN)
mgr = LocalJobManager(state_dir=sys.argv[1])
script = 'grep -E "^Sig(Blk|Ign)" /proc/self/status /proc/$PPID/status > "$1"; exec sleep 60'
spec = {"command": ["sh", "-c", script, "sh", sys.argv[2] + "/sig.txt"]}
print(mgr.submit([spec], sys.argv[2])[0])
"""


def test_jobs_start_with_a_clean_signal_state_and_can_be_cancelled(tmp_path: Path) -> None:
    """A submitter with SIGTERM blocked (as gfal2 leaves it) must not hand that on to its jobs."""
    state, batch = tmp_path / "state", tmp_path / "b"
    submitted = subprocess.run(
        [sys.executable, "-c", SUBMIT_WITH_SIGNALS_BLOCKED, str(state), str(batch)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    job_id = submitted.stdout.strip()
    mgr = LocalJobManager(state_dir=state)
    deadline = time.monotonic() + 30
    while not (batch / "sig.txt").exists() or mgr.query([job_id])[job_id].status is not bk.JobStatus.RUNNING:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    time.sleep(0.2)
    # "/proc/<pid>/status:SigBlk:\t<hex>" for the command and for the wrapper (its parent)
    masks = [line.rsplit(":", 2)[1:] for line in (batch / "sig.txt").read_text().splitlines()]
    stop_signals = 1 << (signal.SIGTERM - 1) | 1 << (signal.SIGINT - 1) | 1 << (signal.SIGHUP - 1)
    found = [(name, int(value, 16) & stop_signals) for name, value in masks]
    assert found == [("SigBlk", 0), ("SigIgn", 0), ("SigBlk", 0), ("SigIgn", 0)]
    mgr.cancel([job_id])
    info = wait_final(mgr, [job_id], timeout=20)[job_id]
    assert info.status is bk.JobStatus.CANCELLED
    assert (batch / "markers" / "0.exit").read_text().startswith("exit=143 ")  # the wrapper trapped TERM
