"""batchkit_law: law remote workflows whose jobs run through batchkit.

Mix :class:`BatchkitWorkflow` into a law workflow and run it with ``--workflow batchkit``::

    class MyTask(batchkit_law.BatchkitWorkflow, law.LocalWorkflow):
        batchkit_backend = "slurm"

        def batchkit_output_directory(self):
            return law.LocalDirectoryTarget("/shared/jobs/mytask")

Each law submission round becomes one batchkit submit (one Slurm array, one HTCondor cluster)
and each poll one batchkit query. See ``docs/adapters/law.md``.
"""

from __future__ import annotations

from batchkit_law.files import BatchkitJobFileFactory
from batchkit_law.job_id import LawJobId, parse_law_job_id
from batchkit_law.manager import BatchkitJobManager
from batchkit_law.workflow import BatchkitWorkflow, BatchkitWorkflowProxy

__all__ = [
    "BatchkitJobFileFactory",
    "BatchkitJobManager",
    "BatchkitWorkflow",
    "BatchkitWorkflowProxy",
    "LawJobId",
    "parse_law_job_id",
]
