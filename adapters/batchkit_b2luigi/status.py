"""batchkit's view of a job -> the three answers b2luigi's ``is_alive`` understands (pure).

b2luigi 1.3.0's ``BatchProcess.is_alive`` accepts only ``running``, ``successful`` and
``aborted``; anything else -- even its own ``JobStatus.idle`` -- raises ``ValueError`` and
takes the whole worker down (its Slurm backend does exactly that on ``REQUEUED``). batchkit
has already mapped every native state onto :class:`batchkit.JobStatus`, with ``UNKNOWN`` for
words it does not know, and the job record adds the *phase*: a failed job with retries left
is ``NEW`` again, not done. So the mapping here is total and can never raise:

* phase ``DONE`` and ``FINISHED`` -> successful;
* phase ``DONE`` and anything else (``FAILED``, ``CANCELLED``) -> aborted;
* any other phase (waiting to be submitted, being submitted, at the scheduler -- whatever
  the scheduler says, ``UNKNOWN`` included) -> running. An UNKNOWN job stays running until
  the scheduler or the job's exit marker says more; batchkit fails it as lost only after
  ten minutes without either.
"""

from __future__ import annotations

from b2luigi.batch.processes import JobStatus as B2luigiStatus

from batchkit.model import JobStatus
from batchkit.record import JobRecord, Phase

#: The three answers, by the name :func:`job_outcome` gives them.
B2LUIGI_STATUS = {
    "running": B2luigiStatus.running,
    "successful": B2luigiStatus.successful,
    "aborted": B2luigiStatus.aborted,
}


def job_outcome(record: JobRecord) -> str:
    """``"running"``, ``"successful"`` or ``"aborted"`` for the job behind ``record``."""
    if record.phase is not Phase.DONE:
        return "running"
    if record.status is JobStatus.FINISHED:
        return "successful"
    return "aborted"


def b2luigi_status(record: JobRecord) -> B2luigiStatus:
    """The b2luigi status of the job behind ``record`` (never ``idle``, never an exception)."""
    return B2LUIGI_STATUS[job_outcome(record)]


def describe_failure(record: JobRecord) -> str:
    """One line saying how the job ended, for logs and ``failed_jobs.log`` (pure)."""
    parts = [f"job {record.job_id or '(never submitted)'} {record.status.value}"]
    if record.exit_code is not None:
        parts.append(f"exit code {record.exit_code}")
    if record.reason and record.reason != f"exit code {record.exit_code}":
        parts.append(record.reason)
    if record.attempts > 1:
        parts.append(f"after {record.attempts} attempts")
    return ", ".join(parts)
