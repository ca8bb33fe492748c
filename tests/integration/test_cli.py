"""The ``batchkit`` command end to end (real processes, local backend)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


def bk(*args: str, cwd: Path | None = None, check: bool = False) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [sys.executable, "-m", "batchkit", *args], capture_output=True, text=True, cwd=cwd, timeout=180
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def status(d: Path) -> dict:  # type: ignore[type-arg]
    proc = bk("status", str(d), "--json", check=True)
    return json.loads(proc.stdout)  # type: ignore[no-any-return]


def test_help_on_every_command() -> None:
    for cmd in ("submit", "status", "wait", "cancel", "resubmit", "cleanup", "backends", "demo"):
        proc = bk(cmd, "--help")
        assert proc.returncode == 0
        assert "usage: batchkit" in proc.stdout


def test_submit_wait_status_array(tmp_path: Path) -> None:
    d = tmp_path / "sub"
    proc = bk(
        "submit", "--backend", "local", "--dir", str(d), "--array", "10-14", "--retries", "1",
        "--parallel-jobs", "3", "--cpus", "1", "--memory", "100MB", "--walltime", "5m", "-o", "max_parallel=4",
        "--", "sh", "-c", 'echo "$1 $2" > "out_$BATCHKIT_INDEX"; exit $(( $2 % 2 ))', "x", "{array}", "{index}",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "submitted 5 jobs" in proc.stdout
    wait = bk("wait", str(d), "--poll-interval", "0.3", "--quiet")
    assert wait.returncode == 1  # two jobs fail on every attempt
    data = status(d)
    assert data["counts"] == {"FINISHED": 3, "FAILED": 2}
    failed = [j for j in data["jobs"] if j["status"] == "FAILED"]
    assert [(j["index"], j["exit_code"], j["attempts"]) for j in failed] == [(1, 1, 2), (3, 1, 2)]
    assert (tmp_path / "out_4").read_text() == "14 4\n"
    table = bk("status", str(d)).stdout
    assert "FAILED" in table and "exit code 1" in table


def test_jobs_file_and_quoting(tmp_path: Path) -> None:
    weird = ["it's", '"q"', "$HOME `id`", "new\nline"]
    jobs = [{"command": ["printf", "%s|", *weird], "env": {"V": "a b$c"}}]
    (tmp_path / "jobs.json").write_text(json.dumps(jobs))
    d = tmp_path / "sub"
    bk("submit", "-b", "local", "-d", str(d), "--jobs", str(tmp_path / "jobs.json"), "--wait", "-q", check=True)
    out = (d / "batches" / "0001" / "logs" / "0.out").read_text()
    assert out == "|".join(weird) + "|"


def test_cancel_resubmit_cleanup(tmp_path: Path) -> None:
    d = tmp_path / "sub"
    bk("submit", "-b", "local", "-d", str(d), "--array", "3", "-o", "max_parallel=3", "--", "sleep", "60", check=True)
    proc = bk("cancel", str(d), check=True)
    assert "cancelled 3 jobs" in proc.stdout
    bk("wait", str(d), "-q", "--poll-interval", "0.2")
    assert status(d)["counts"] == {"CANCELLED": 3}
    assert bk("resubmit", str(d), "--failed").stdout.strip() == "nothing to resubmit"
    proc = bk("resubmit", str(d), check=True)
    assert "resubmitted 3 jobs" in proc.stdout
    assert bk("cleanup", str(d)).returncode == 2  # still active
    bk("cancel", str(d), check=True)
    bk("wait", str(d), "-q", "--poll-interval", "0.2")
    bk("cleanup", str(d), check=True)
    assert [j["attempts"] for j in status(d)["jobs"]] == [2, 2, 2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["submit", "-b", "nosuch", "-d", "{d}", "--", "true"], "unknown backend 'nosuch'"),
        (["submit", "-b", "local", "-d", "{d}", "--memory", "2XB", "--", "true"], "unknown unit"),
        (["submit", "-b", "local", "-d", "{d}"], "no command"),
        (["submit", "-b", "local", "-d", "{d}", "--array", "a-b", "--", "true"], "--array"),
        (["submit", "-b", "local", "-d", "{d}", "--jobs", "/nonexistent.json"], "cannot read jobs file"),
        (["status", "{d}"], "no batchkit submission"),
        (["wait", "{d}"], "no batchkit submission"),
    ],
)
def test_user_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    proc = bk(*[a.replace("{d}", str(tmp_path / "d")) for a in args])
    assert proc.returncode == 2
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_corrupt_record_and_other_submission(tmp_path: Path) -> None:
    d = tmp_path / "d"
    bk("submit", "-b", "local", "-d", str(d), "--", "true", check=True)
    proc = bk("submit", "-b", "local", "-d", str(d), "--", "false")
    assert proc.returncode == 2 and "different submission" in proc.stderr
    record = d / "batchkit.sqlite"
    for suffix in ("-wal", "-shm"):
        Path(str(record) + suffix).unlink(missing_ok=True)
    record.write_bytes(b"garbage" * 50)
    proc = bk("status", str(d))
    assert proc.returncode == 2 and "cannot be read" in proc.stderr and "Traceback" not in proc.stderr
    assert record.read_bytes() == b"garbage" * 50


def test_backends_lists_local(tmp_path: Path) -> None:
    out = bk("backends", check=True).stdout
    assert any(line.split()[:2] == ["local", "yes"] for line in out.splitlines())


def test_demo_runs(tmp_path: Path) -> None:
    proc = bk("demo", "--dir", str(tmp_path / "demo"), "--files", "3", "--events", "2000", check=True)
    assert "peak at" in proc.stdout
    assert sum("histogram job" in line and "FINISHED" in line for line in proc.stdout.splitlines()) == 3
    assert os.path.exists(tmp_path / "demo" / "hists" / "hist_2.json")
