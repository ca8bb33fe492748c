"""The job id law stores for a batchkit job: scheduler id, batch directory and job number.

law keeps one id per job in its jobs JSON and hands only that id back to the job manager
when it polls, cancels or cleans up -- also in a *new* ``law run`` process after the first
one was interrupted. The scheduler's id alone is enough to ask the scheduler, but not to
read the batchkit wrapper's exit marker, which is the job-side truth once the scheduler has
forgotten the job (Slurm without accounting, an expired local run registry). So the id law
stores carries all three::

    4711_3@/scratch/law_jobs/tmpab12/round_1#7
    ^^^^^^ ^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^^ ^
    id at the scheduler   batch directory    law job number (the batchkit index)

It is a plain string (JSON round-trips it unchanged) and its first part is what ``squeue``,
``scancel`` or the local backend know. Scheduler ids never contain ``@`` (checked when the
id is made); the directory may contain anything, because the job number is split off at the
*last* ``#`` and the scheduler id at the *first* ``@``.
"""

from __future__ import annotations

from pathlib import Path

import attrs

from batchkit.errors import SpecError


@attrs.frozen
class LawJobId:
    """One batchkit job as law knows it (see the module docstring for the text form)."""

    backend_id: str
    directory: str
    index: int

    def __attrs_post_init__(self) -> None:
        if not self.backend_id or "@" in self.backend_id or any(c.isspace() for c in self.backend_id):
            raise SpecError(f"batchkit job id {self.backend_id!r} cannot be stored for law (empty, '@' or blanks)")
        if not self.directory.startswith("/"):
            raise SpecError(f"batch directory {self.directory!r} must be absolute")

    def __str__(self) -> str:
        return f"{self.backend_id}@{self.directory}#{self.index}"

    @property
    def exit_marker(self) -> Path:
        """Where the batchkit wrapper writes this job's exit marker."""
        return Path(self.directory) / "markers" / f"{self.index}.exit"

    @property
    def start_marker(self) -> Path:
        return Path(self.directory) / "markers" / f"{self.index}.start"

    @property
    def stdout_log(self) -> Path:
        """The batchkit wrapper's stdout log of this job (always written, on a shared file system)."""
        return Path(self.directory) / "logs" / f"{self.index}.out"


def parse_law_job_id(text: object) -> LawJobId:
    """Parse the text form back; raises :class:`~batchkit.errors.SpecError` if it is not one."""
    if not isinstance(text, str):
        raise SpecError(f"not a batchkit law job id: {text!r}")
    backend_id, at, rest = text.partition("@")
    directory, hash_, index = rest.rpartition("#")
    if not at or not hash_ or not index.isdigit():
        raise SpecError(f"not a batchkit law job id (expected '<id>@<directory>#<number>'): {text!r}")
    return LawJobId(backend_id, directory, int(index))
