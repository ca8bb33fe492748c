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
import functools
import os
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import attrs

from batchkit.environment import Environment, render_environment
from batchkit.errors import SpecError
from batchkit.model import JobSpec, split_placeholder

ROWS_PER_TABLE = 256
WRAPPER_SOURCE = Path(__file__).with_name("wrapper.sh")

#: Exit codes the wrapper uses for its own failures (see wrapper.sh).
WRAPPER_EXIT_CODES = {
    241: "stage-in failed",
    243: "stage-out failed",
    244: "setup script failed",
    245: "batchkit wrapper error",
}


class JobRow(NamedTuple):
    """One job of a batch as the wrapper will run it.

    ``template`` is the spec as given, shared by every row made from it; :attr:`spec` is that
    spec with ``{index}`` resolved for this row (computed on first use). Backends read what does
    not depend on the index (resources, backend options) from ``template``: it is the same
    object for every row of an array, which is cheap to group by. ``substitute=False`` means
    ``template`` is already resolved.

    ``sandbox`` rows run in whatever directory the scheduler starts them in (HTCondor's
    per-job sandbox, which is already fresh and is where its file transfer looks), instead of
    ``cwd`` or a scratch directory of the wrapper's.

    A NamedTuple rather than an attrs class: a batch makes one per job, and this is the
    cheapest immutable record Python has (it keeps submitting 1,000 jobs close to the cost of
    the scheduler call itself). Change fields with ``row._replace(...)``.
    """

    row: int
    index: int  # type: ignore[assignment]  # shadows tuple.index on purpose: it is the job index
    attempt: int
    template: JobSpec
    cwd: str
    sandbox: bool = False
    substitute: bool = True

    @property
    def spec(self) -> JobSpec:
        """The spec with ``{index}`` replaced by this row's index (computed on each access)."""
        return self.template.resolved(self.index) if self.substitute else self.template


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
    from_dict = JobSpec.from_dict
    return [
        JobRow(r, i, a, s if type(s) is JobSpec else from_dict(s), workdir)
        for r, (s, i, a) in enumerate(zip(specs, idx, att))
    ]


# Arguments repeat across the rows of a batch ("python", "-c", the script...): quote each once.
_quote = functools.lru_cache(maxsize=1 << 16)(shlex.quote)


@functools.lru_cache(maxsize=1024)
def _env_function(items: tuple[tuple[str, str], ...]) -> str:
    return "bk_env() { " + "; ".join(f"export {k}={_quote(v)}" for k, v in items) + "; }"


@functools.lru_cache(maxsize=1 << 16)
def _shell_word(text: str, substitute: bool) -> str:
    """``text`` as one shell word; with ``substitute``, ``{index}`` becomes ``$BATCHKIT_INDEX``."""
    if not substitute or ("{" not in text and "}" not in text):
        return _quote(text)
    return "".join('"$BATCHKIT_INDEX"' if p is None else _quote(p) for p in split_placeholder(text) if p != "")


def _row_functions(spec: JobSpec, substitute: bool) -> list[str]:
    """The bk_env/bk_stagein/bk_command/bk_stageout definitions of a row or run of rows."""
    w = _shell_word
    lines = []
    # bk_env, bk_stagein and bk_stageout default to no-ops in the wrapper: only rows that have
    # something to do define them.
    if spec.env:
        lines.append(_env_function(tuple(spec.env.items())))
    if spec.inputs:
        gets = " && ".join(f"bk_get {w(src, substitute)} {_quote(name)}" for name, src in spec.inputs.items())
        lines.append(f"bk_stagein() {{ {gets}; }}")
    lines.append("bk_command() { bk_run " + " ".join(w(a, substitute) for a in spec.command) + "; }")
    if spec.outputs:
        puts = " && ".join(f"bk_put {_quote(name)} {w(dst, substitute)}" for name, dst in spec.outputs.items())
        lines.append(f"bk_stageout() {{ {puts}; }}")
    return lines


def _row_header(job: JobRow, index: str, walltime_watchdog: bool) -> str:
    spec = job.template
    scratch = "1" if (spec.inputs or spec.outputs) and not job.sandbox else "0"
    cwd = "." if job.sandbox else job.cwd
    walltime = str(spec.resources.walltime) if (walltime_watchdog and spec.resources.walltime) else "''"
    return f"bk_row {index} {job.attempt} {_quote(spec.name or '')} {_quote(cwd)} {scratch} {walltime}"


def render_row(job: JobRow, walltime_watchdog: bool = False) -> str:
    """The ``case`` branch of one row in a table chunk (pure; see wrapper.sh for the names)."""
    substitute = job.substitute and job.template.has_placeholders()
    lines = [f"{job.row})", _row_header(job, str(job.index), walltime_watchdog)]
    lines += _row_functions(job.template, substitute)
    lines.append(";;")
    return "\n".join(lines)


def render_run(run: Sequence[JobRow], walltime_watchdog: bool = False) -> str:
    """One block for consecutive rows that differ only in row and index (pure).

    Rows ``first..last`` with equal templates, the same attempt and directory, whose index is row plus
    a constant, run the same text: the index is computed by the shell and ``{index}`` expands
    to ``$BATCHKIT_INDEX``. 10,000 identical jobs are one block, not 10,000 branches.
    """
    first, last = run[0], run[-1]
    offset = first.index - first.row
    index = f"$((BK_ROW + {offset}))" if offset else '"$BK_ROW"'
    substitute = first.substitute and first.template.has_placeholders()
    lines = [
        f'if [ "$bk_found" = 0 ] && [ "$BK_ROW" -ge {first.row} ] && [ "$BK_ROW" -le {last.row} ]; then',
        _row_header(first, index, walltime_watchdog),
        *_row_functions(first.template, substitute),
        "fi",
    ]
    return "\n".join(lines)


def group_runs(rows: Sequence[JobRow]) -> list[list[JobRow]]:
    """Split rows into runs that :func:`render_run` can render as one block."""
    runs: list[list[JobRow]] = []
    run: list[JobRow] = []
    prev: JobRow | None = None
    for job in rows:
        if (
            prev is not None
            and job.row == prev.row + 1
            and job.index == prev.index + 1
            and job.attempt == prev.attempt
            and (job.template is prev.template or job.template == prev.template)
            and job.cwd == prev.cwd
            and job.sandbox == prev.sandbox
            and job.substitute == prev.substitute
        ):
            run.append(job)
        else:
            run = [job]
            runs.append(run)
        prev = job
    return runs


def render_table(
    rows: Sequence[JobRow],
    walltime_watchdog: bool = False,
    python: str | None = None,
    environment: Environment | None = None,
) -> str:
    """A whole table chunk: the batch's environment, single rows, then runs of rows (pure)."""
    runs = group_runs(rows)
    singles = [run[0] for run in runs if len(run) == 1]
    head = [
        "# generated by batchkit -- sourced by wrapper.sh: single rows in the case, runs of rows after it",
        f"BATCHKIT_PYTHON=${{BATCHKIT_PYTHON:-{shlex.quote(python or sys.executable)}}}",
        *render_environment(environment),
        'case "$BK_ROW" in',
    ]
    body = [render_row(r, walltime_watchdog) for r in singles]
    blocks = [render_run(run, walltime_watchdog) for run in runs if len(run) > 1]
    return "\n".join([*head, *body, "esac", *blocks, ""])


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
