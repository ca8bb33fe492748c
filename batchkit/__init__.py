"""batchkit: one job-submission and file-transfer core for high-energy physics.

Describe jobs once (:class:`JobSpec`), hand them to a backend (:func:`get_job_manager`), or let
a :class:`Submission` supervise them in a directory that survives crashes::

    import batchkit as bk

    specs = [bk.JobSpec(["python", "gen.py", "--seed", "{index}"]) for _ in range(100)]
    sub = bk.Submission.create("runs/gen", backend="slurm", specs=specs, retries=2)
    for job in sub.as_completed():
        print(job.index, job.status, job.exit_code)

The public names are imported on first use (PEP 562): ``python -m batchkit cp`` -- which the
job wrapper runs to stage files -- then pays only for the transfer layer, not for the whole
submission machinery.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from batchkit.backends.base import JobManager
    from batchkit.environment import Environment
    from batchkit.errors import BatchkitError
    from batchkit.jobfiles import JobFileFactory, JobFiles
    from batchkit.model import JobInfo, JobSpec, JobStatus, Resources
    from batchkit.record import JobRecord, Phase
    from batchkit.registry import available_backends, get_job_manager, register_backend
    from batchkit.submission import Submission

__version__ = "0.1.0"

_LAZY = {
    "BatchkitError": "batchkit.errors",
    "Environment": "batchkit.environment",
    "JobFileFactory": "batchkit.jobfiles",
    "JobFiles": "batchkit.jobfiles",
    "JobInfo": "batchkit.model",
    "JobManager": "batchkit.backends.base",
    "JobRecord": "batchkit.record",
    "JobSpec": "batchkit.model",
    "JobStatus": "batchkit.model",
    "Phase": "batchkit.record",
    "Resources": "batchkit.model",
    "Submission": "batchkit.submission",
    "available_backends": "batchkit.registry",
    "get_job_manager": "batchkit.registry",
    "register_backend": "batchkit.registry",
}

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


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'batchkit' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY])
