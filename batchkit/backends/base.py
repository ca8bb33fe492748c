"""The interface every backend implements.

A :class:`JobManager` talks to one scheduler. Every method takes *many* jobs in one call:
that is what lets a backend submit one array / one cluster and ask for the state of all jobs
with one query. The supervisor (:class:`batchkit.Submission`) never knows a scheduler's name;
it only calls these methods.

Backends are mostly pure functions (build this argv, parse that output) plus a small class
that runs them through :func:`batchkit.runner.run_command`; see ``backends/slurm.py``.
"""

from __future__ import annotations

import abc
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar

from batchkit.environment import Environment
from batchkit.jobfiles import JobFileFactory, JobFiles
from batchkit.model import JobInfo, JobSpec


class JobManager(abc.ABC):
    """Submit, query, cancel and clean up jobs of one backend.

    Subclasses set :attr:`name`, :attr:`file_factory` and implement the abstract methods.
    Job ids are strings, unique per backend (``"1234_7"`` for a Slurm array task,
    ``"42.7"`` for an HTCondor proc).
    """

    #: Registry name, e.g. ``"slurm"``.
    name: ClassVar[str] = ""
    #: Command-line tools this backend needs (for ``batchkit backends``).
    required_tools: ClassVar[tuple[str, ...]] = ()
    #: What Ctrl+C does to running jobs by default: ``"cancel"`` or ``"keep"``.
    interrupt_policy: ClassVar[str] = "keep"
    #: Options :meth:`submit` understands in ``options`` (documentation and validation).
    submit_options: ClassVar[tuple[str, ...]] = ("parallel_jobs",)

    file_factory: JobFileFactory

    # ------------------------------------------------------------------ the four verbs
    def submit(
        self,
        specs: Sequence[JobSpec],
        directory: str | os.PathLike[str] | None = None,
        *,
        indices: Sequence[int] | None = None,
        attempts: Sequence[int] | None = None,
        tag: str | None = None,
        cwd: str | None = None,
        setup_script: str | os.PathLike[str] | None = None,
        options: Mapping[str, Any] | None = None,
        environment: Environment | None = None,
    ) -> list[str]:
        """Submit ``specs`` as one batch and return one job id per spec, in order.

        ``directory`` receives the job files (a fresh temporary directory if omitted). The
        keyword arguments are those of :meth:`JobFileFactory.create`. If the scheduler accepts
        only part of the batch a :class:`~batchkit.errors.SubmitError` says which rows got ids.
        """
        path = Path(directory) if directory is not None else Path(tempfile.mkdtemp(prefix="batchkit-"))
        files = self.file_factory.create(
            specs,
            path,
            indices=indices,
            attempts=attempts,
            tag=tag,
            cwd=cwd,
            setup_script=setup_script,
            options=options,
            environment=environment,
        )
        return self.submit_files(files)

    @abc.abstractmethod
    def submit_files(self, files: JobFiles) -> list[str]:
        """Submit a batch whose files were already written; return ids in row order."""

    @abc.abstractmethod
    def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        """The current state of every id in ``job_ids`` (ideally in one scheduler call).

        Every requested id is in the result. An id the scheduler does not know (any more)
        is reported as ``UNKNOWN`` -- the caller decides, e.g. from job-side markers, what
        happened to it. A failed query raises; it never reports jobs as failed.
        """

    @abc.abstractmethod
    def cancel(self, job_ids: Sequence[str]) -> None:
        """Cancel the jobs (pending or running); ids that already ended are ignored."""

    def cleanup(self, job_ids: Sequence[str]) -> None:  # noqa: B027 - optional hook
        """Remove scheduler-side leftovers of finished jobs (spooled sandboxes, ...).

        The job files themselves belong to whoever created the batch directory; the
        :class:`~batchkit.Submission` removes those.
        """

    @abc.abstractmethod
    def find(self, tag: str, directory: str | os.PathLike[str]) -> dict[int, JobInfo]:
        """Jobs of the batch tagged ``tag`` that the scheduler knows, keyed by row.

        Used after a crash between "the scheduler accepted the batch" and "the ids were
        recorded": instead of submitting again blindly, the supervisor adopts what this
        returns. An empty result means the scheduler never saw the batch (or forgot it, in
        which case the wrapper's markers in ``directory`` tell).
        """

    # ------------------------------------------------------------------ introspection
    @classmethod
    def availability(cls) -> tuple[bool, str]:
        """Whether this machine can use the backend, and a one-line explanation."""
        missing = [tool for tool in cls.required_tools if shutil.which(tool) is None]
        if missing:
            return False, f"missing command(s): {', '.join(missing)}"
        found = ", ".join(shutil.which(t) or t for t in cls.required_tools)
        return True, f"found {found}" if found else "always available"
