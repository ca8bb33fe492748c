"""The HTCondor JobManager where it can be exercised for real without a schedd.

No HTCondor daemon can run here, so these tests pin down what the manager does *before* and
*around* the scheduler: option checking, files written, how many commands it starts (counted
by :data:`batchkit.runner.CALL_COUNTS`), and that a failing scheduler command is an error
rather than a job state. ``PATH`` is pointed at an empty directory so "no condor_* tools" is
the same everywhere; the bindings test uses the real ``htcondor2`` with no schedd to talk to.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from conftest import missing

import batchkit as bk
from batchkit.backends.htcondor import HTCondorJobManager
from batchkit.errors import CommandError, SpecError, SubmitError
from batchkit.model import JobStatus
from batchkit.runner import CALL_COUNTS


@pytest.fixture
def no_condor_tools(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))


def specs(n: int) -> list[bk.JobSpec]:
    return [bk.JobSpec([sys.executable, "-c", "pass", str(i)]) for i in range(n)]


def test_registry_builds_the_manager_with_its_options() -> None:
    manager = bk.get_job_manager("htcondor", schedd="sched1", spool=True, walltime_enforcement="none")
    assert isinstance(manager, HTCondorJobManager)
    assert manager.settings.transfers and manager.settings.spool
    assert manager.interrupt_policy == "keep"


@pytest.mark.parametrize(
    "options",
    [
        {"spool": True, "transfer_files": False},
        {"walltime_enforcement": "sometimes"},
        {"submit_commands": {"executable": "/bin/evil"}},
    ],
)
def test_bad_options_fail_at_construction(options: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        HTCondorJobManager(**options)  # type: ignore[arg-type]


def test_availability_names_the_missing_tools(no_condor_tools: None) -> None:
    ok, why = HTCondorJobManager.availability()
    assert not ok and "condor_submit" in why


def test_submit_without_condor_submit_is_an_error_after_one_attempt(no_condor_tools: None, tmp_path: Path) -> None:
    manager = HTCondorJobManager()
    before = CALL_COUNTS["condor_submit"]
    with pytest.raises(CommandError, match="condor_submit"):
        manager.submit(specs(3), tmp_path / "batch", tag="bk0.0")
    assert CALL_COUNTS["condor_submit"] == before + 1  # never retried: it might have been committed
    assert (tmp_path / "batch" / "htcondor.sub").exists()
    assert (tmp_path / "batch" / "logs").is_dir() and (tmp_path / "batch" / "markers").is_dir()


def test_one_status_command_for_a_whole_cluster(no_condor_tools: None) -> None:
    manager = HTCondorJobManager(retries=0)
    before = CALL_COUNTS["condor_q"], CALL_COUNTS["condor_history"]
    with pytest.raises(CommandError, match="condor_q"):
        manager.query([f"123.{p}" for p in range(10_000)])
    # one condor_q for 10,000 ids; a failed query raises instead of reporting jobs as failed
    assert (CALL_COUNTS["condor_q"], CALL_COUNTS["condor_history"]) == (before[0] + 1, before[1])


def test_ids_that_are_not_htcondor_ids_need_no_command(no_condor_tools: None) -> None:
    manager = HTCondorJobManager()
    before = CALL_COUNTS["condor_q"], CALL_COUNTS["condor_rm"]
    infos = manager.query(["unknown:bk1.0:3", "17"])
    assert {k: v.status for k, v in infos.items()} == {"unknown:bk1.0:3": JobStatus.UNKNOWN, "17": JobStatus.UNKNOWN}
    manager.cancel(["unknown:bk1.0:3"])
    manager.cleanup([])
    assert (CALL_COUNTS["condor_q"], CALL_COUNTS["condor_rm"]) == before


def test_per_job_backend_options_are_refused_before_submitting(no_condor_tools: None, tmp_path: Path) -> None:
    manager = HTCondorJobManager()
    before = CALL_COUNTS["condor_submit"]
    spec = bk.JobSpec(["true"], backend_options={"requirements": "true"})
    with pytest.raises(SpecError, match="backend_options"):
        manager.submit([spec], tmp_path / "b")
    with pytest.raises(SpecError, match="unknown submit option"):
        manager.submit(specs(1), tmp_path / "c", options={"partition": "x"})
    assert CALL_COUNTS["condor_submit"] == before


def test_bindings_submission_reports_the_bindings_words(tmp_path: Path) -> None:
    try:
        import htcondor2  # noqa: F401
    except ImportError:  # pragma: no cover - the CI installs the bindings
        message = "the HTCondor Python bindings are missing: .venv/bin/pip install 'htcondor>=24'"
        missing(message)
    manager = HTCondorJobManager(use_bindings=True)
    before = CALL_COUNTS["condor_submit"]
    # no schedd runs here: the description is accepted by htcondor2.Submit, locating the schedd fails
    with pytest.raises(SubmitError, match="Unable to locate local daemon"):
        manager.submit(specs(2), tmp_path / "b", tag="bk0.1")
    assert CALL_COUNTS["condor_submit"] == before
