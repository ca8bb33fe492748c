"""Job files: the shared wrapper, the per-batch job table, and the file factory base class.

A *batch* is what one ``JobManager.submit`` call sends: N specs, numbered 0..N-1 as *rows*.
Its directory holds

* ``wrapper.sh`` -- the one job wrapper (:file:`batchkit/wrapper.sh`), identical everywhere;
* ``table/<k>.sh`` -- rows ``256*k .. 256*k+255``: index, attempt, env, stage-in, command,
  stage-out of each job, quoted with :func:`shlex.quote`. A job sources one small chunk, not a
  script of its own, so 10,000 jobs are 40 files, not 10,000;
* whatever the backend's submit description needs (an ``sbatch`` script, a ``.sub`` file);
* at run time ``logs/`` and ``markers/`` written by the wrapper.

A job is started on the node as ``/bin/sh <dir>/wrapper.sh <dir> <row>``; backends differ
only in how they pass the row (Slurm array task id, HTCondor ``$(Process)``, ...).
"""

from __future__ import annotations

import abc
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.environment import Environment, render_environment
from batchkit.errors import SpecError
from batchkit.model import JobSpec

ROWS_PER_TABLE = 256
WRAPPER_SOURCE = Path(__file__).with_name("wrapper.sh")

#: Exit codes the wrapper uses for its own failures (see wrapper.sh).
WRAPPER_EXIT_CODES = {
    241: "stage-in failed",
    243: "stage-out failed",
    244: "setup script failed",
    245: "batchkit wrapper error",
}


@attrs.frozen
class JobRow:
    """One job of a batch as the wrapper will run it (placeholders already resolved).

    ``sandbox`` rows run in whatever directory the scheduler starts them in (HTCondor's
    per-job sandbox, which is already fresh and is where its file transfer looks), instead of
    ``cwd`` or a scratch directory of the wrapper's.
    """

    row: int
    index: int
    attempt: int
    spec: JobSpec
    cwd: str
    sandbox: bool = False


@attrs.frozen
class JobFiles:
    """What a file factory wrote for one batch.

    ``submit_files`` are the backend's submit descriptions (in the order they are submitted),
    ``rows`` the jobs, and ``tag`` the string that identifies this batch at the scheduler
    (in job names/comments), so it can be found again after a crash.
    """

    directory: Path
    wrapper: Path
    tables: tuple[Path, ...]
    submit_files: tuple[Path, ...]
    rows: tuple[JobRow, ...]
    tag: str
    options: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def specs(self) -> list[JobSpec]:
        return [r.spec for r in self.rows]

    def log_paths(self, index: int) -> tuple[Path, Path]:
        """stdout and stderr log of the job with submission index ``index``."""
        return self.directory / "logs" / f"{index}.out", self.directory / "logs" / f"{index}.err"

    def wrapper_argv(self, row: int | str) -> list[str]:
        """How a node starts row ``row`` (``row`` may be a shell expression for arrays)."""
        return ["/bin/sh", str(self.wrapper), str(self.directory), str(row)]


def build_rows(
    specs: Sequence[JobSpec],
    indices: Sequence[int] | None = None,
    attempts: Sequence[int] | None = None,
    cwd: str | None = None,
) -> list[JobRow]:
    """Number the specs as rows, attach index/attempt and resolve ``{index}`` placeholders."""
    if not specs:
        raise SpecError("no jobs to submit")
    n = len(specs)
    idx = list(range(n)) if indices is None else [int(i) for i in indices]
    att = [1] * n if attempts is None else [int(a) for a in attempts]
    if len(idx) != n or len(att) != n:
        raise SpecError(f"{n} specs but {len(idx)} indices and {len(att)} attempts")
    workdir = os.path.abspath(cwd or os.getcwd())
    return [
        JobRow(row=r, index=i, attempt=a, spec=JobSpec.from_dict(s).resolved(i), cwd=workdir)
        for r, (s, i, a) in enumerate(zip(specs, idx, att))
    ]


def render_row(job: JobRow, walltime_watchdog: bool = False) -> str:
    """The ``case`` branch of one row in a table chunk (pure; see wrapper.sh for the names)."""
    spec = job.spec
    q = shlex.quote
    scratch = "1" if (spec.inputs or spec.outputs) and not job.sandbox else "0"
    cwd = "." if job.sandbox else job.cwd
    walltime = str(spec.resources.walltime) if (walltime_watchdog and spec.resources.walltime) else ""
    lines = [
        f"{job.row})",
        f"bk_row {job.index} {job.attempt} {q(spec.name or '')} {q(cwd)} {scratch} {q(walltime)}",
    ]
    env = "; ".join(f"export {k}={q(v)}" for k, v in spec.env.items()) or ":"
    lines.append(f"bk_env() {{ {env}; }}")
    gets = " && ".join(f"bk_get {q(src)} {q(name)}" for name, src in spec.inputs.items()) or ":"
    lines.append(f"bk_stagein() {{ {gets}; }}")
    lines.append(f"bk_command() {{ bk_run {' '.join(q(a) for a in spec.command)}; }}")
    puts = " && ".join(f"bk_put {q(name)} {q(dst)}" for name, dst in spec.outputs.items()) or ":"
    lines.append(f"bk_stageout() {{ {puts}; }}")
    lines.append(";;")
    return "\n".join(lines)


def render_table(
    rows: Sequence[JobRow],
    walltime_watchdog: bool = False,
    python: str | None = None,
    environment: Environment | None = None,
) -> str:
    """A whole table chunk: the batch's environment, then a ``case`` over ``$BK_ROW`` (pure)."""
    head = [
        "# generated by batchkit -- sourced by wrapper.sh; one branch per row",
        f"BATCHKIT_PYTHON=${{BATCHKIT_PYTHON:-{shlex.quote(python or sys.executable)}}}",
        *render_environment(environment),
        'case "$BK_ROW" in',
    ]
    body = [render_row(r, walltime_watchdog) for r in rows]
    return "\n".join(head + body + ["esac", ""])


def write_job_table(
    rows: Sequence[JobRow],
    directory: Path,
    walltime_watchdog: bool = False,
    setup_script: str | os.PathLike[str] | None = None,
    environment: Environment | None = None,
) -> tuple[Path, tuple[Path, ...]]:
    """Write ``wrapper.sh``, ``table/*.sh`` (and ``setup.sh`` if given) into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "table").mkdir(exist_ok=True)
    wrapper = directory / "wrapper.sh"
    shutil.copyfile(WRAPPER_SOURCE, wrapper)
    wrapper.chmod(0o755)
    if setup_script is not None:
        shutil.copyfile(setup_script, directory / "setup.sh")
    tables = []
    for start in range(0, len(rows), ROWS_PER_TABLE):
        chunk = rows[start : start + ROWS_PER_TABLE]
        path = directory / "table" / f"{chunk[0].row // ROWS_PER_TABLE}.sh"
        _write_atomic(path, render_table(chunk, walltime_watchdog, environment=environment))
        tables.append(path)
    return wrapper, tuple(tables)


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class JobFileFactory(abc.ABC):
    """Writes everything one batch needs: wrapper, job table and the submit description.

    Usable on its own as a dry run: ``factory.create(specs, "some/dir")`` writes the files and
    returns their paths without contacting any scheduler. Backends subclass it and implement
    :meth:`render_submit`; the wrapper and table are common.
    """

    #: Whether the wrapper must enforce walltime itself (no scheduler does it).
    walltime_watchdog: bool = False

    def create(
        self,
        specs: Sequence[JobSpec],
        directory: str | os.PathLike[str],
        *,
        indices: Sequence[int] | None = None,
        attempts: Sequence[int] | None = None,
        tag: str | None = None,
        cwd: str | None = None,
        setup_script: str | os.PathLike[str] | None = None,
        options: Mapping[str, Any] | None = None,
        environment: Environment | None = None,
    ) -> JobFiles:
        """Write the files of one batch into ``directory`` and return their paths.

        ``indices`` are the jobs' indices in their submission (default 0..N-1), ``attempts``
        their attempt numbers (default 1), ``tag`` the batch's identifying tag (default: derived
        from the directory), ``cwd`` the working directory of jobs without inputs/outputs,
        ``setup_script`` a shell script every job sources first, ``options`` submission-wide
        backend options (e.g. ``parallel_jobs``), ``environment`` a packed environment and/or
        command prefix (its ``setup_script``, if any, is used when ``setup_script`` is not given).
        """
        path = Path(directory).absolute()
        rows = build_rows(specs, indices, attempts, cwd)
        if environment is not None:
            environment.check()
            setup_script = setup_script or environment.setup_script
        wrapper, tables = write_job_table(
            self.table_rows(rows), path, self.walltime_watchdog, setup_script, environment
        )
        files = JobFiles(
            directory=path,
            wrapper=wrapper,
            tables=tables,
            submit_files=(),
            rows=tuple(rows),
            tag=tag or default_tag(path),
            options=dict(options or {}),
        )
        submit_files = self.render_submit(files)
        return attrs.evolve(files, submit_files=tuple(submit_files))

    def table_rows(self, rows: list[JobRow]) -> list[JobRow]:
        """The rows as the job table should run them (hook; default: unchanged).

        ``JobFiles.rows`` always keeps the rows as given; a backend whose jobs run elsewhere
        (e.g. in HTCondor's sandbox with its own file transfer) adapts what the wrapper does.
        """
        return rows

    @abc.abstractmethod
    def render_submit(self, files: JobFiles) -> list[Path]:
        """Write the backend's submit description(s) for ``files`` and return their paths."""

    __call__ = create


def default_tag(directory: Path) -> str:
    """A short, stable tag for a batch directory (used when the caller gives none)."""
    import hashlib

    return "bk" + hashlib.sha1(str(directory).encode()).hexdigest()[:10]
