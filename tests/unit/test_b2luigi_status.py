"""The b2luigi status of every batchkit (phase, status) pair: total, never ``idle``, never raising.

b2luigi 1.3.0's ``BatchProcess.is_alive`` raises ``ValueError`` for anything but running,
successful and aborted (its own Slurm backend does so on REQUEUED); these tests pin that the
adapter can only ever answer one of those three.
"""

from __future__ import annotations

import itertools

import pytest
from b2luigi.batch.processes import JobStatus as B2luigiStatus
from batchkit_b2luigi.status import b2luigi_status, describe_failure

from batchkit.model import JobStatus
from batchkit.record import JobRecord, Phase


def record(
    phase: Phase,
    status: JobStatus,
    exit_code: int | None = None,
    reason: str | None = None,
    attempts: int = 1,
) -> JobRecord:
    return JobRecord(
        index=0,
        name="Task_x",
        phase=phase,
        status=status,
        attempts=attempts,
        job_id="4242_0",
        batch=1,
        exit_code=exit_code,
        reason=reason,
        native_state=None,
        submitted_at=None,
        finished_at=None,
    )


@pytest.mark.parametrize(("phase", "status"), list(itertools.product(Phase, JobStatus)))
def test_every_pair_maps_to_one_of_the_three_states_is_alive_accepts(phase: Phase, status: JobStatus) -> None:
    answer = b2luigi_status(record(phase, status))
    assert answer in (B2luigiStatus.running, B2luigiStatus.successful, B2luigiStatus.aborted)


@pytest.mark.parametrize("status", list(JobStatus))
@pytest.mark.parametrize("phase", [Phase.NEW, Phase.SUBMITTING, Phase.ACTIVE])
def test_a_job_that_is_not_done_is_running_whatever_the_scheduler_says(phase: Phase, status: JobStatus) -> None:
    # UNKNOWN (a state batchkit could not read, e.g. a new Slurm word) and FAILED with a retry
    # left (phase NEW) both keep the task running
    assert b2luigi_status(record(phase, status)) is B2luigiStatus.running


def test_done_jobs_are_successful_only_when_finished() -> None:
    assert b2luigi_status(record(Phase.DONE, JobStatus.FINISHED, 0)) is B2luigiStatus.successful
    assert b2luigi_status(record(Phase.DONE, JobStatus.FAILED, 3)) is B2luigiStatus.aborted
    assert b2luigi_status(record(Phase.DONE, JobStatus.CANCELLED)) is B2luigiStatus.aborted


def test_describe_failure_names_job_exit_code_and_reason_once() -> None:
    text = describe_failure(record(Phase.DONE, JobStatus.FAILED, 3, "exit code 3"))
    assert text == "job 4242_0 FAILED, exit code 3"
    text = describe_failure(record(Phase.DONE, JobStatus.FAILED, 137, "OUT_OF_MEMORY", attempts=3))
    assert text == "job 4242_0 FAILED, exit code 137, OUT_OF_MEMORY, after 3 attempts"
