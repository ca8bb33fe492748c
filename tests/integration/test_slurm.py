"""The Slurm backend against the real single-node Slurm clusters of tests/services.

``slurm``: the cluster with accounting (sacct); ``slurm_noacct``: the second cluster without
(squeue), reached through the manager's ``env={"SLURM_CONF": ...}``. Every test uses its own
tags/directories, so other engineers' jobs in the shared queue never matter.
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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import require_service, services

import batchkit as bk
from batchkit.backends.slurm import SlurmJobManager
from batchkit.backends.slurm_scontrol import parse_scontrol_records
from batchkit.errors import SubmitError, TransientError
from batchkit.runner import CALL_COUNTS, run_command

STATUS_TOOLS = ("sacct", "squeue", "scontrol")
#: Generous limit for jobs to run: the test cluster is shared, and a busy queue delays starts
#: (the tests assert outcomes, never timings).
WAIT = 600.0
APPEND_INDEX = 'echo "$BATCHKIT_INDEX" >> "$1"'


def _options(kind: str) -> dict[str, Any]:
    if kind == "acct":
        require_service("BATCHKIT_TEST_SLURM", "Slurm")
        conf = services().get("BATCHKIT_TEST_SLURM_CONF")
        partition = services().get("BATCHKIT_TEST_SLURM_PARTITION")
    else:
        conf = require_service("BATCHKIT_TEST_SLURM_NOACCT_CONF", "Slurm without accounting")
        partition = services().get("BATCHKIT_TEST_SLURM_NOACCT_PARTITION")
    options: dict[str, Any] = {"env": {"SLURM_CONF": conf}} if conf else {}
    if partition:
        options["partition"] = partition
    return options


@pytest.fixture(params=[pytest.param("acct", marks=pytest.mark.slurm),
                        pytest.param("noacct", marks=pytest.mark.slurm_noacct)])  # fmt: skip
def cluster(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def options(cluster: str) -> dict[str, Any]:
    return _options(cluster)


@pytest.fixture
def acct_options() -> dict[str, Any]:
    return _options("acct")


def wait_for(what: str, check: Callable[[], bool], timeout: float = WAIT, interval: float = 0.5) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(interval)


def status_calls() -> int:
    return sum(CALL_COUNTS[t] for t in STATUS_TOOLS)


def append_specs(n: int, counter: Path, **extra: Any) -> list[bk.JobSpec]:
    return [bk.JobSpec(["sh", "-c", APPEND_INDEX, "x", str(counter)], **extra) for _ in range(n)]


def scontrol_job(job_id: str, options: dict[str, Any]) -> dict[str, str]:
    result = run_command(["scontrol", "show", "job", "-o", job_id], env=options.get("env"))
    (record,) = parse_scontrol_records(result.stdout)
    return record


@pytest.fixture
def cancel_later(options: dict[str, Any]) -> Iterator[list[str]]:
    """Ids to scancel at the end whatever happens (so a failing test leaves no jobs behind)."""
    ids: list[str] = []
    yield ids
    if ids:
        SlurmJobManager(**options).cancel(ids)


# ----------------------------------------------------------------------------- the big array
def test_array_succeeds_with_one_status_query_per_poll(tmp_path: Path, cluster: str, options: dict[str, Any]) -> None:
    """200 jobs (60 without accounting): one sbatch, one sacct/squeue per poll, every job once."""
    n = 200 if cluster == "acct" else 60
    counter = tmp_path / "runs"
    sub = bk.Submission.create(tmp_path / "sub", backend="slurm", specs=append_specs(n, counter),
                               backend_options=options)  # fmt: skip
    sub.manager.cluster_config()  # the one-off probe, so the counting below is per poll only
    sbatch_before = CALL_COUNTS["sbatch"]
    sub.submit()
    assert CALL_COUNTS["sbatch"] - sbatch_before == 1
    ids = [j.job_id for j in sub.jobs]
    array_id = str(ids[0]).split("_")[0]
    assert ids == [f"{array_id}_{i}" for i in range(n)]
    polls = 0
    deadline = time.monotonic() + WAIT
    while not sub.is_done:
        assert time.monotonic() < deadline, sub.counts()
        before = status_calls()
        sub.poll()
        assert status_calls() - before == 1, "a poll must be exactly one scheduler query"
        polls += 1
        time.sleep(1)
    assert sub.counts() == {"FINISHED": n}
    assert all(j.exit_code == 0 and j.attempts == 1 for j in sub.jobs)
    assert Counter(counter.read_text().split()) == Counter({str(i): 1 for i in range(n)})
    assert sub.poll_failures == 0 and polls >= 1
    tool = "sacct" if cluster == "acct" else "squeue"
    assert sub.manager.accounting is (cluster == "acct"), tool
    sub.close()


def test_exit_codes_and_failures(tmp_path: Path, options: dict[str, Any]) -> None:
    specs = [bk.JobSpec(["sh", "-c", "exit $0", str(code)]) for code in (0, 3, 0, 3)]
    sub = bk.Submission.create(tmp_path / "sub", backend="slurm", specs=specs, backend_options=options)
    counts = sub.wait(poll_interval=1, timeout=WAIT)
    assert counts == {"FINISHED": 2, "FAILED": 2}
    failed = [j for j in sub.jobs if j.status is bk.JobStatus.FAILED]
    assert [j.index for j in failed] == [1, 3]
    assert all(j.exit_code == 3 and j.reason == "exit code 3" for j in failed)
    assert [j.exit_code for j in sub.jobs if j.status is bk.JobStatus.FINISHED] == [0, 0]
    sub.close()


@pytest.mark.slurm
@pytest.mark.slow
def test_job_over_its_walltime_fails_with_a_walltime_reason(tmp_path: Path, acct_options: dict[str, Any]) -> None:
    """walltime 30 s -> --time=1 (whole minutes); Slurm kills it at the next check (~60-95 s)."""
    spec = bk.JobSpec(["sleep", "300"], resources={"walltime": 30})
    sub = bk.Submission.create(tmp_path / "sub", backend="slurm", specs=[spec], backend_options=acct_options)
    assert sub.wait(poll_interval=2, timeout=WAIT) == {"FAILED": 1}
    (job,) = sub.jobs
    assert job.native_state == "TIMEOUT"
    assert job.reason is not None and "walltime" in job.reason
    sub.close()


# ----------------------------------------------------------------------------- cancel
def test_cancel_pending_and_running(tmp_path: Path, options: dict[str, Any], cancel_later: list[str]) -> None:
    marker = tmp_path / "started"
    specs = [
        bk.JobSpec(["sh", "-c", 'touch "$0"; sleep 300', str(marker)]),
        bk.JobSpec(["true"], backend_options={"sbatch_options": ["--hold"]}),  # never starts
    ]
    sub = bk.Submission.create(tmp_path / "sub", backend="slurm", specs=specs, backend_options=options)
    sub.submit()
    ids = [str(j.job_id) for j in sub.jobs]
    cancel_later.extend(ids)
    wait_for("job 0 to run", marker.exists)
    manager = SlurmJobManager(**options)

    def states() -> list[bk.JobStatus]:
        infos = manager.query(ids)
        return [infos[i].status for i in ids]

    wait_for("running + pending", lambda: states() == [bk.JobStatus.RUNNING, bk.JobStatus.PENDING])
    assert manager.query(ids)[ids[1]].reason == "JobHeldUser"
    assert sub.cancel() == 2
    assert sub.counts() == {"CANCELLED": 2}
    wait_for("Slurm to say CANCELLED", lambda: states() == [bk.JobStatus.CANCELLED] * 2, timeout=120)
    assert all(info.reason and "cancelled" in info.reason for info in manager.query(ids).values())
    sub.close()


# ----------------------------------------------------------------------------- resources
@pytest.mark.slurm
def test_resources_visible_in_scontrol(tmp_path: Path, acct_options: dict[str, Any]) -> None:
    manager = SlurmJobManager(**acct_options, sbatch_options=["--hold"])
    spec = bk.JobSpec(["true"], resources={"cpus": 3, "memory": "300MB", "walltime": "150s"})
    (job_id,) = manager.submit([spec], tmp_path / "batch", tag="bkres.0")
    try:
        job = scontrol_job(job_id, acct_options)
        assert job["JobName"] == "bkres.0-a0"
        assert job["CPUs/Task"] == "3" and job["NumCPUs"] == "3"
        assert job["MinMemoryNode"] == "287M"  # 300 MB = 286.1 MiB, rounded up
        assert job["TimeLimit"] == "00:03:00"  # 150 s, rounded up to whole minutes
        assert job["JobState"] == "PENDING" and job["Reason"] == "JobHeldUser"
        assert job["WorkDir"] == str(tmp_path / "batch")
    finally:
        manager.cancel([job_id])


# ----------------------------------------------------------------------------- arrays split, find
@pytest.mark.slurm
def test_max_array_size_split_and_parallel_cap(tmp_path: Path, acct_options: dict[str, Any]) -> None:
    counter = tmp_path / "runs"
    options = {**acct_options, "max_array_size": 10}
    sub = bk.Submission.create(tmp_path / "sub", backend="slurm", specs=append_specs(25, counter),
                               parallel_jobs=6, backend_options=options)  # fmt: skip
    sub.submit()
    arrays = {str(j.job_id).split("_")[0] for j in sub.jobs}
    assert len(arrays) == 3
    plan = json.loads((sub.directory / "batches" / "0001" / "slurm" / "arrays.json").read_text())
    assert [a["throttle"] for a in plan["arrays"]] == [3, 2, 1]  # the cap of 6 shared out by size
    assert [a["argv"][3] for a in plan["arrays"]] == ["--array=0-9%3", "--array=0-9%2", "--array=0-4%1"]
    assert sub.wait(poll_interval=1, timeout=WAIT) == {"FINISHED": 25}
    assert Counter(counter.read_text().split()) == Counter({str(i): 1 for i in range(25)})
    sub.close()


def test_find_maps_tasks_back_to_rows(tmp_path: Path, options: dict[str, Any], cancel_later: list[str]) -> None:
    manager = SlurmJobManager(**options, max_array_size=4)
    specs = [bk.JobSpec(["true"], resources={"cpus": 1 + i % 2}, backend_options={"sbatch_options": ["--hold"]})
             for i in range(9)]  # fmt: skip
    tag = f"bkfind{os.getpid()}.{time.time_ns()}"
    ids = manager.submit(specs, tmp_path / "batch", tag=tag)
    cancel_later.extend(ids)
    found = SlurmJobManager(**options).find(tag, tmp_path / "batch")
    assert {row: info.job_id for row, info in found.items()} == dict(enumerate(ids))
    assert all(info.status is bk.JobStatus.PENDING for info in found.values())
    assert SlurmJobManager(**options).find("bknotthisone", tmp_path / "batch") == {}


# ----------------------------------------------------------------------------- errors
@pytest.mark.slurm
def test_rejected_array_reports_what_was_submitted(tmp_path: Path, acct_options: dict[str, Any]) -> None:
    manager = SlurmJobManager(**acct_options)
    bad = {"partition": "nosuchpartition"}
    specs = [bk.JobSpec(["true"]), bk.JobSpec(["true"], backend_options=bad), bk.JobSpec(["true"])]
    with pytest.raises(SubmitError) as err:
        manager.submit(specs, tmp_path / "batch", tag=f"bkrej{os.getpid()}")
    assert "Invalid partition name specified" in str(err.value)
    assert sorted(err.value.submitted) == [0, 2]  # array 0 (rows 0 and 2) went through
    array_id = err.value.submitted[0].split("_")[0]
    assert err.value.submitted == {0: f"{array_id}_0", 2: f"{array_id}_2"}


@pytest.mark.slurm
def test_transient_errors_are_retried_then_raised(tmp_path: Path, acct_options: dict[str, Any]) -> None:
    """Real unreachable daemons: slurmdbd (sacct) and slurmctld (squeue) on closed ports."""
    conf = Path(acct_options.get("env", {}).get("SLURM_CONF", "/etc/slurm/slurm.conf")).read_text()
    kept = [line for line in conf.splitlines() if not line.startswith(("AccountingStorage", "MessageTimeout"))]
    dbd_down = tmp_path / "dbd-down.conf"
    dbd_down.write_text("\n".join([*kept, "AccountingStorageType=accounting_storage/slurmdbd",
                                   "AccountingStorageHost=localhost", "AccountingStoragePort=6898",
                                   "MessageTimeout=1", ""]))  # fmt: skip
    ctld_down = tmp_path / "ctld-down.conf"
    ctld_down.write_text(
        "\n".join([*(line for line in kept if not line.startswith("SlurmctldPort")), "SlurmctldPort=6899",
                   "MessageTimeout=1", ""])
    )  # fmt: skip
    for conf_path, tool, accounting in ((dbd_down, "sacct", True), (ctld_down, "squeue", False)):
        manager = SlurmJobManager(env={"SLURM_CONF": str(conf_path)}, accounting=accounting,
                                  max_array_size=10, command_retries=2, retry_backoff=0.05)  # fmt: skip
        before = CALL_COUNTS[tool]
        with pytest.raises(TransientError, match=r"(?i)connection refused|unable to contact"):
            manager.query(["1_0", "2"])
        assert CALL_COUNTS[tool] - before == 3  # first try + 2 retries

    # a Submission whose polls fail keeps its jobs (sbatch works: only slurmdbd is "down")
    counter = tmp_path / "runs"
    options = {**acct_options, "env": {"SLURM_CONF": str(dbd_down)}, "command_retries": 0}
    sub = bk.Submission.create(tmp_path / "sub", backend="slurm", specs=append_specs(3, counter),
                               backend_options=options)  # fmt: skip
    sub.submit()
    for _ in range(3):
        sub.poll()
    assert sub.poll_failures == 3
    assert sub.counts() == {"PENDING": 3}  # as submitted: failed polls change nothing
    ids = [str(j.job_id) for j in sub.jobs]
    good = SlurmJobManager(**acct_options)
    wait_for("the jobs to finish", lambda: all(i.status.is_final for i in good.query(ids).values()))
    assert {i.status for i in good.query(ids).values()} == {bk.JobStatus.FINISHED}
    sub.close()


# ----------------------------------------------------------------------------- accounting probe
@pytest.mark.slurm_noacct
def test_accounting_probe_and_fallback(tmp_path: Path) -> None:
    options = _options("noacct")
    manager = SlurmJobManager(**options)
    assert manager.accounting is False  # from scontrol show config, without calling sacct
    forced = SlurmJobManager(**options, accounting=True, max_array_size=100)
    (job_id,) = forced.submit([bk.JobSpec(["true"])], tmp_path / "b", tag=f"bkprobe{os.getpid()}")
    before = Counter({t: CALL_COUNTS[t] for t in STATUS_TOOLS})
    forced.query([job_id])  # sacct says "accounting storage is disabled": switch to squeue
    middle = Counter({t: CALL_COUNTS[t] for t in STATUS_TOOLS})
    assert middle - before == Counter({"sacct": 1, "squeue": 1})
    wait_for("the job to finish", lambda: forced.query([job_id])[job_id].status is bk.JobStatus.FINISHED)
    after = Counter({t: CALL_COUNTS[t] for t in STATUS_TOOLS})
    assert (after - middle)["sacct"] == 0 and forced.accounting is False


# ----------------------------------------------------------------------------- kill -9 of the supervisor
CRASH_SCRIPT = textwrap.dedent(
    """
    import json, os, signal, sys
    import batchkit as bk
    from batchkit.backends.slurm import SlurmJobManager

    WHEN = os.environ.get("CRASH_WHEN", "")

    class CrashingSlurm(SlurmJobManager):
        calls = 0
        def submit_files(self, files):
            if WHEN == "before":
                os.kill(os.getpid(), signal.SIGKILL)
            ids = super().submit_files(files)
            if WHEN == "after":
                os.kill(os.getpid(), signal.SIGKILL)
            return ids
        def _sbatch(self, files, array):
            job_id = super()._sbatch(files, array)
            CrashingSlurm.calls += 1
            if WHEN == "between" and CrashingSlurm.calls == 1:
                os.kill(os.getpid(), signal.SIGKILL)
            return job_id

    bk.register_backend("crashing-slurm", CrashingSlurm)
    directory, counter, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    options = json.loads(os.environ["CRASH_OPTIONS"])
    if os.path.exists(os.path.join(directory, "batchkit.sqlite")):
        sub = bk.Submission.open(directory)
    else:
        specs = [bk.JobSpec(["sh", "-c", 'echo "$BATCHKIT_INDEX" >> "$1"', "x", counter],
                            resources={"cpus": 1 + i % 2}) for i in range(n)]
        sub = bk.Submission.create(directory, backend="crashing-slurm", specs=specs, backend_options=options)
    print(json.dumps(sub.wait(poll_interval=1, timeout=600)))
    """
)


@pytest.mark.parametrize("when", ["before", "between", "after"])
def test_kill9_during_submission_then_wait_runs_each_job_once(tmp_path: Path, options: dict[str, Any],
                                                               when: str) -> None:  # fmt: skip
    n = 10
    script = tmp_path / "supervise.py"
    script.write_text(CRASH_SCRIPT)
    d, counter = tmp_path / "sub", tmp_path / "runs"
    env = {**os.environ, "CRASH_OPTIONS": json.dumps(options), "PYTHONPATH": str(Path(bk.__file__).parent.parent)}

    def supervise(crash: str) -> subprocess.CompletedProcess[str]:
        argv = [sys.executable, str(script), str(d), str(counter), str(n)]
        return subprocess.run(argv, env={**env, "CRASH_WHEN": crash}, capture_output=True, text=True, timeout=700)

    first = supervise(when)
    assert first.returncode == -signal.SIGKILL, first.stderr
    second = supervise("")
    assert second.returncode == 0, second.stderr
    assert json.loads(second.stdout.strip().splitlines()[-1]) == {"FINISHED": n}
    assert Counter(counter.read_text().split()) == Counter({str(i): 1 for i in range(n)})
    sub = bk.Submission.open(d)
    assert all(j.attempts == 1 for j in sub.jobs)
    sub.close()
