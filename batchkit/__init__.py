"""batchkit: one job-submission and file-transfer core for high-energy physics.

Describe jobs once (:class:`JobSpec`), hand them to a backend (:func:`get_job_manager`), or let
a :class:`Submission` supervise them in a directory that survives crashes::

    import batchkit as bk

    specs = [bk.JobSpec(["python", "gen.py", "--seed", "{index}"]) for _ in range(100)]
    sub = bk.Submission.create("runs/gen", backend="slurm", specs=specs, retries=2)
    for job in sub.as_completed():
        print(job.index, job.status, job.exit_code)
"""

from batchkit.backends.base import JobManager
from batchkit.environment import Environment
from batchkit.errors import BatchkitError
from batchkit.jobfiles import JobFileFactory, JobFiles
from batchkit.model import JobInfo, JobSpec, JobStatus, Resources
from batchkit.record import JobRecord, Phase
from batchkit.registry import available_backends, get_job_manager, register_backend
from batchkit.submission import Submission

__version__ = "0.1.0"

__all__ = [
    "BatchkitError",
    "Environment",
    "JobFileFactory",
    "JobFiles",
    "JobInfo",
    "JobManager",
    "JobRecord",
    "JobSpec",
    "JobStatus",
    "Phase",
    "Resources",
    "Submission",
    "available_backends",
    "get_job_manager",
    "register_backend",
]
