"""The Python API end to end on the local backend."""

from __future__ import annotations

import time
from pathlib import Path

import attrs
import pytest

import batchkit as bk
from batchkit.backends.local import LocalJobManager
from batchkit.errors import (
    SpecError,
    SubmissionBusyError,
    SubmissionExistsError,
    SubmitError,
    TransientCommandError,
    UnknownBackendError,
    UserError,
)
from batchkit.jobfiles import JobFiles
from batchkit.runner import CALL_COUNTS

FAST = {"max_parallel": 8}


def test_array_with_index_substitution(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    specs = [bk.JobSpec(["sh", "-c", 'echo "$BATCHKIT_INDEX" > "$1"', "x", str(out / "f_{index}.txt")])] * 20
    sub = bk.Submission.create(tmp_path / "sub", backend="local", specs=specs, backend_options=FAST)
    assert sub.wait(poll_interval=0.3) == {"FINISHED": 20}
    for i in range(20):
        assert (out / f"f_{i}.txt").read_text() == f"{i}\n"
    assert [j.attempts for j in sub.jobs] == [1] * 20


def test_failures_with_exit_codes_and_retries(tmp_path: Path) -> None:
    script = 'echo x >> "runs_$BATCHKIT_INDEX"; [ "$BATCHKIT_ATTEMPT" -ge "$1" ] || exit 3'
    needs = [1, 2, 3, 9]  # attempts each job needs to succeed
    specs = [bk.JobSpec(["sh", "-c", script, "x", str(n)]) for n in needs]
    sub = bk.Submission.create(
        tmp_path / "sub", backend="local", specs=specs, retries=2, backend_options=FAST, cwd=tmp_path
    )
    counts = sub.wait(poll_interval=0.3)
    assert counts == {"FINISHED": 3, "FAILED": 1}
    jobs = sub.jobs
    assert [j.attempts for j in jobs] == [1, 2, 3, 3]
    assert (jobs[3].status, jobs[3].exit_code) == (bk.JobStatus.FAILED, 3)
    for i, n in enumerate(needs):
        assert (tmp_path / f"runs_{i}").read_text().count("x") == min(n, 3)
    history = [e["status"] for e in sub.events(3) if e["status"] in ("FAILED", "FINISHED")]
    assert history == ["FAILED"] * 3


def test_as_completed_yields_in_finishing_order(tmp_path: Path) -> None:
    delays = [1.2, 0.1, 0.6]
    specs = [bk.JobSpec(["sleep", str(d)]) for d in delays]
    sub = bk.Submission.create(tmp_path / "sub", backend="local", specs=specs, backend_options=FAST)
    order = [job.index for job in sub.as_completed(poll_interval=0.1)]
    assert order == [1, 2, 0]
    # a second iterator yields every final job once more, then stops
    assert sorted(j.index for j in sub.as_completed(poll_interval=0.1)) == [0, 1, 2]


def test_pipelining_with_add(tmp_path: Path) -> None:
    sub = bk.Submission.create(
        tmp_path / "sub", backend="local", specs=[bk.JobSpec(["true"])] * 3, backend_options=FAST
    )
    seen = []
    for job in sub.as_completed(poll_interval=0.1):
        seen.append(job.index)
        if job.index < 3:  # every first-step job gets a follow-up job
            sub.add([bk.JobSpec(["sh", "-c", f"exit {job.index}"])])
    assert sorted(seen) == [0, 1, 2, 3, 4, 5]
    assert sub.counts() == {"FINISHED": 4, "FAILED": 2}


def test_one_query_per_poll(tmp_path: Path) -> None:
    """Status of all active jobs comes from one JobManager.query call per poll."""
    sub = bk.Submission.create(
        tmp_path / "sub", backend="local", specs=[bk.JobSpec(["sleep", "0.5"])] * 12, backend_options=FAST
    )
    calls: list[int] = []
    manager = sub.manager
    original = manager.query

    def counting(ids):  # type: ignore[no-untyped-def]
        calls.append(len(ids))
        return original(ids)

    manager.query = counting  # type: ignore[method-assign]
    sub.submit()
    polls = 0
    while not sub.is_done:
        sub.poll()
        polls += 1
        time.sleep(0.1)
    assert len(calls) == polls
    assert calls[0] == 12


def test_cancel_everything(tmp_path: Path) -> None:
    sub = bk.Submission.create(
        tmp_path / "sub", backend="local", specs=[bk.JobSpec(["sleep", "60"])] * 4, backend_options={"max_parallel": 2}
    )
    sub.submit()
    deadline = time.monotonic() + 20
    while sub.counts().get("RUNNING", 0) < 2:
        assert time.monotonic() < deadline
        sub.poll()
        time.sleep(0.1)
    assert sub.cancel() == 4
    assert sub.wait(poll_interval=0.2, timeout=30) == {"CANCELLED": 4}
    assert sub.submit() == []  # a cancelled submission submits nothing more
    assert sorted(sub.resubmit()) == [0, 1, 2, 3]
    assert len(sub.submit()) == 4
    sub.cancel()


def test_reopen_and_same_or_different_submission(tmp_path: Path) -> None:
    specs = [bk.JobSpec(["true"])] * 2
    first = bk.Submission.create(tmp_path / "s", backend="local", specs=specs, backend_options=FAST)
    first.wait(poll_interval=0.2)
    first.close()
    same = bk.Submission.create(tmp_path / "s", backend="local", specs=specs, backend_options=FAST)
    assert same.counts() == {"FINISHED": 2}
    same.close()
    with pytest.raises(SubmissionExistsError, match="different submission"):
        bk.Submission.create(tmp_path / "s", backend="local", specs=[bk.JobSpec(["false"])])
    assert bk.Submission.open(tmp_path / "s").counts() == {"FINISHED": 2}  # untouched


def test_only_one_supervisor(tmp_path: Path) -> None:
    a = bk.Submission.create(tmp_path / "s", backend="local", specs=[bk.JobSpec(["true"])], backend_options=FAST)
    a.submit()
    b = bk.Submission.open(tmp_path / "s")
    with pytest.raises(SubmissionBusyError, match="another batchkit process"):
        b.poll()
    a.wait(poll_interval=0.2)
    a.close()
    b.poll()  # the lock is free now
    b.close()


def test_bad_input_is_typed_and_loses_nothing(tmp_path: Path) -> None:
    with pytest.raises(UnknownBackendError):
        bk.Submission.create(tmp_path / "x", backend="nope", specs=[bk.JobSpec(["true"])])
    assert not (tmp_path / "x").exists()
    with pytest.raises(SpecError):
        bk.Submission.create(tmp_path / "x", backend="local", specs=[{"command": []}])
    with pytest.raises(SpecError):
        bk.Submission.create(tmp_path / "x", backend="local", specs=[], retries=-1)
    with pytest.raises(UserError):
        bk.Submission.create(tmp_path / "x", backend="local", specs=[bk.JobSpec(["true"])], setup_script="/nope.sh")


class RefusingManager(LocalJobManager):
    """The real local backend, except that the 'scheduler' refuses every batch."""

    def submit_files(self, files: JobFiles) -> list[str]:
        raise SubmitError("sbatch: error: Batch job submission failed: Invalid partition name specified")


class HalfAcceptingManager(LocalJobManager):
    """Accepts row 0 of each batch for real, refuses the rest."""

    def submit_files(self, files: JobFiles) -> list[str]:
        one = attrs.evolve(files, rows=files.rows[:1])
        ids = super().submit_files(one)
        raise SubmitError("quota exceeded after 1 job", submitted={0: ids[0]})


def test_bad_backend_options_fail_at_create(tmp_path: Path) -> None:
    with pytest.raises(UserError):
        bk.Submission.create(tmp_path / "s", backend="local", specs=[bk.JobSpec(["true"])], backend_options={"x": 1})
    assert not (tmp_path / "s").exists()


def test_refused_submit_leaves_record_consistent(tmp_path: Path) -> None:
    bk.register_backend("refusing", RefusingManager)
    sub = bk.Submission.create(tmp_path / "s", backend="refusing", specs=[bk.JobSpec(["true"])] * 3)
    with pytest.raises(SubmitError, match="Invalid partition"):
        sub.submit()
    assert [(j.phase, j.attempts, j.job_id) for j in sub.jobs] == [(bk.Phase.NEW, 0, None)] * 3
    assert sub.counts() == {"UNSUBMITTED": 3}
    with pytest.raises(SubmitError):
        sub.submit()  # and again: still consistent, nothing counted twice
    assert [j.attempts for j in sub.jobs] == [0, 0, 0]


def test_partial_submit_records_what_was_accepted(tmp_path: Path) -> None:
    bk.register_backend("half", HalfAcceptingManager)
    sub = bk.Submission.create(tmp_path / "s", backend="half", specs=[bk.JobSpec(["true"])] * 3)
    with pytest.raises(SubmitError, match="quota"):
        sub.submit()
    jobs = sub.jobs
    assert jobs[0].phase is bk.Phase.ACTIVE and jobs[0].job_id
    assert [(j.phase, j.attempts) for j in jobs[1:]] == [(bk.Phase.NEW, 0)] * 2
    with pytest.raises(SubmitError):
        sub.submit()  # job 1 accepted now
    with pytest.raises(SubmitError):
        sub.submit()  # job 2
    assert sub.wait(poll_interval=0.2) == {"FINISHED": 3}
    assert [j.attempts for j in sub.jobs] == [1, 1, 1]


def test_cleanup_keeps_record_and_logs(tmp_path: Path) -> None:
    sub = bk.Submission.create(tmp_path / "s", backend="local", specs=[bk.JobSpec(["echo", "hi"])])
    sub.wait(poll_interval=0.2)
    files = sub.job_files(0)
    sub.cleanup()
    assert files["stdout"].read_text() == "hi\n"
    assert not (tmp_path / "s" / "batches" / "0001" / "table").exists()
    assert sub.counts() == {"FINISHED": 1}


def test_calls_counted_per_program() -> None:
    assert isinstance(CALL_COUNTS, dict)


class FlakyManager(LocalJobManager):
    """The real local backend whose first submit fails transiently: before or after it took effect."""

    mode = "before"
    failed = False

    def submit_files(self, files: JobFiles) -> list[str]:
        if FlakyManager.failed:
            return super().submit_files(files)
        FlakyManager.failed = True
        if FlakyManager.mode == "after":
            super().submit_files(files)  # the scheduler has the jobs, but the reply is lost
        raise TransientCommandError(["sbatch"], 1, "", "Socket timed out on send/recv operation")


@pytest.mark.parametrize("mode", ["before", "after"])
def test_transient_submit_failure_does_not_stop_wait(tmp_path: Path, mode: str) -> None:
    FlakyManager.mode, FlakyManager.failed = mode, False
    bk.register_backend("flaky", FlakyManager)
    counter = tmp_path / "runs"
    spec = bk.JobSpec(["sh", "-c", f'echo "$BATCHKIT_INDEX" >> {counter}'])
    sub = bk.Submission.create(tmp_path / "s", backend="flaky", specs=[spec] * 4, backend_options=FAST)
    assert sub.wait(poll_interval=0.2, timeout=60) == {"FINISHED": 4}
    assert sub.poll_failures == 1
    assert sorted(counter.read_text().split()) == ["0", "1", "2", "3"]  # each exactly once
    assert [j.attempts for j in sub.jobs] == [1, 1, 1, 1]
    sub.close()
