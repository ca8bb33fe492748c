"""The same scenarios against every backend that has a live scheduler here.

A backend that passes these behaves, for the supervisor and the adapters, like every other:
arrays with index substitution, exit codes, retries, cancel, verbatim arguments, one query per
poll, and reconciliation after a ``kill -9`` between "the scheduler accepted" and "the ids were
recorded". Backends without a scheduler on this machine (HTCondor, LSF, ...) are tested from
recorded outputs instead (tests/unit).
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
from typing import Any

import pytest
from conftest import require_service, services

import batchkit as bk
from batchkit.registry import get_backend_class

BACKENDS = ["local", "slurm", "slurm-noacct"]


def backend_config(name: str) -> tuple[str, dict[str, Any]]:
    """(registry name, backend options) of a contract target; skips/fails if it is not up."""
    if name == "local":
        return "local", {"max_parallel": 8}
    if name == "slurm":
        require_service("BATCHKIT_TEST_SLURM", "the local Slurm")
        return "slurm", {"partition": services().get("BATCHKIT_TEST_SLURM_PARTITION", "debug")}
    if name == "slurm-noacct":
        conf = require_service("BATCHKIT_TEST_SLURM_NOACCT_CONF", "the local Slurm without accounting")
        return "slurm", {"env": {"SLURM_CONF": conf}}
    raise AssertionError(name)


@pytest.fixture(params=BACKENDS)
def target(request: pytest.FixtureRequest) -> tuple[str, dict[str, Any]]:
    return backend_config(request.param)


def create(tmp_path: Path, target: tuple[str, dict[str, Any]], specs: list[bk.JobSpec], **kw: Any) -> bk.Submission:
    backend, options = target
    return bk.Submission.create(tmp_path / "sub", backend=backend, specs=specs, backend_options=options, **kw)


def test_array_with_index_and_environment(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    script = 'echo "$BATCHKIT_INDEX $BATCHKIT_ATTEMPT $MODE $1" > "$2"'
    spec = bk.JobSpec(["sh", "-c", script, "sh", "seed-{index}", str(tmp_path / "out_{index}.txt")], env={"MODE": "m"})
    with create(tmp_path, target, [spec] * 12) as sub:
        assert sub.wait(poll_interval=1, timeout=600) == {"FINISHED": 12}
        assert all(j.exit_code == 0 and j.attempts == 1 for j in sub.jobs)
    for i in range(12):
        assert (tmp_path / f"out_{i}.txt").read_text() == f"{i} 1 m seed-{i}\n"


def test_exit_codes_and_retries(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    specs = [
        bk.JobSpec(["sh", "-c", "exit 0"]),
        bk.JobSpec(["sh", "-c", "exit 3"]),
        bk.JobSpec(["sh", "-c", "exit 42"]),
        bk.JobSpec(["sh", "-c", '[ "$BATCHKIT_ATTEMPT" -ge 2 ] || exit 5']),
    ]
    with create(tmp_path, target, specs, retries=1) as sub:
        sub.wait(poll_interval=1, timeout=600)
        jobs = sub.jobs
    assert [(j.status, j.exit_code, j.attempts) for j in jobs] == [
        (bk.JobStatus.FINISHED, 0, 1),
        (bk.JobStatus.FAILED, 3, 2),
        (bk.JobStatus.FAILED, 42, 2),
        (bk.JobStatus.FINISHED, 0, 2),
    ]
    assert all(j.reason for j in jobs if j.status is bk.JobStatus.FAILED)


def test_arguments_reach_the_job_verbatim(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    nasty = ["a b", "it's", '"q"', "$HOME", "`id`", "x\ny", "ü ✓", "*", ""]
    code = "import json, sys; json.dump(sys.argv[1:], open(sys.argv[1], 'w'))"
    spec = bk.JobSpec([sys.executable, "-c", code, str(tmp_path / "args.json"), *nasty])
    with create(tmp_path, target, [spec]) as sub:
        assert sub.wait(poll_interval=1, timeout=600) == {"FINISHED": 1}
    assert json.loads((tmp_path / "args.json").read_text())[1:] == nasty


def test_cancel_pending_and_running(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    started = tmp_path / "started"
    spec = bk.JobSpec(["sh", "-c", f'touch "{started}.$BATCHKIT_INDEX"; sleep 300'])
    with create(tmp_path, target, [spec] * 3, parallel_jobs=1) as sub:
        sub.submit()
        deadline = time.monotonic() + 600
        while not Path(f"{started}.0").exists():
            assert time.monotonic() < deadline, "first job never started"
            sub.poll()
            time.sleep(0.5)
        assert sub.cancel() == 3
        assert sub.wait(poll_interval=1, timeout=120) == {"CANCELLED": 3}
    assert not Path(f"{started}.2").exists()  # the pending ones never ran


def test_one_query_per_poll(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    with create(tmp_path, target, [bk.JobSpec(["sleep", "1"])] * 10) as sub:
        calls: list[int] = []
        manager = sub.manager
        original = manager.query

        def counting(ids: Any) -> Any:
            calls.append(len(ids))
            return original(ids)

        manager.query = counting  # type: ignore[method-assign]
        sub.submit()
        polls = 0
        deadline = time.monotonic() + 600
        while not sub.is_done:
            assert time.monotonic() < deadline
            sub.poll()
            polls += 1
            time.sleep(0.5)
        assert len(calls) == polls
        assert calls[0] == 10


def test_find_returns_the_batch(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    backend, options = target
    manager = bk.get_job_manager(backend, **options)
    tag = f"bkcontract{os.getpid()}x{int(time.time() * 1000) % 10**8}"
    ids = manager.submit([bk.JobSpec(["sleep", "2"])] * 3, tmp_path / "batch", tag=tag, cwd=str(tmp_path))
    found = manager.find(tag, tmp_path / "batch")
    assert {row: info.job_id for row, info in found.items()} == dict(enumerate(ids))
    assert manager.find(tag + "other", tmp_path / "batch") == {}
    manager.cancel(ids)


CRASHING = textwrap.dedent(
    """
    import json, os, signal, sys
    import batchkit as bk
    from batchkit.registry import get_backend_class

    base = get_backend_class(os.environ["CONTRACT_BACKEND"])

    class Crashing(base):
        def submit_files(self, files):
            ids = super().submit_files(files)
            if os.environ.get("CRASH"):
                os.kill(os.getpid(), signal.SIGKILL)   # accepted by the scheduler, ids not recorded
            return ids

    bk.register_backend("crashing", Crashing)
    directory, counter = sys.argv[1], sys.argv[2]
    options = json.loads(os.environ["CONTRACT_OPTIONS"])
    if os.path.exists(os.path.join(directory, "batchkit.sqlite")):
        sub = bk.Submission.open(directory)
    else:
        spec = bk.JobSpec(["sh", "-c", 'echo "$BATCHKIT_INDEX" >> "$1"; sleep 1', "sh", counter])
        sub = bk.Submission.create(directory, backend="crashing", specs=[spec] * 8, backend_options=options)
    print(json.dumps(sub.wait(poll_interval=1, timeout=600)))
    """
)


def test_kill9_after_the_scheduler_accepted(tmp_path: Path, target: tuple[str, dict[str, Any]]) -> None:
    backend, options = target
    get_backend_class(backend)
    script = tmp_path / "supervise.py"
    script.write_text(CRASHING)
    env = {**os.environ, "CONTRACT_BACKEND": backend, "CONTRACT_OPTIONS": json.dumps(options)}
    argv = [sys.executable, str(script), str(tmp_path / "sub"), str(tmp_path / "runs")]
    first = subprocess.run(argv, env={**env, "CRASH": "1"}, capture_output=True, text=True, timeout=900)
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.splitlines()[-1]) == {"FINISHED": 8}
    runs = Counter((tmp_path / "runs").read_text().split())
    assert runs == Counter({str(i): 1 for i in range(8)})
