"""Build Slurm command lines and plan the job arrays of a batch (pure functions, no I/O).

A batch (the rows of one ``JobManager.submit`` call) goes to Slurm as few job arrays as
possible: one per group of rows with the same ``sbatch`` arguments (resources and site
options), split further only where Slurm forces it (``MaxArraySize``) or where the
``--array`` list would get unwieldy. Each array's task id plus its ``offset`` is the row, so
the batch script is the same one line for every task. Every array is named
``<batch tag>-a<k>``, which lets :meth:`SlurmJobManager.find` recognise the arrays of a batch
after a crash and map their tasks back to rows.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

import attrs

from batchkit.backends.slurm_options import SlurmSiteOptions, resource_args
from batchkit.backends.slurm_parse import format_task_ranges, split_job_id
from batchkit.jobfiles import JobFiles, JobRow
from batchkit.model import Resources

#: What ``sacct`` prints per job (JobName last: it is free text and may contain ``|``).
SACCT_FIELDS = ("JobID", "JobIDRaw", "State", "ExitCode", "Reason", "JobName")
#: What ``squeue -O`` prints per job; every field ends with ``|`` (Name last, as above).
SQUEUE_FIELDS = ("JobArrayID", "JobID", "State", "Reason", "exit_code", "Name")

#: Scheduler messages that mean "try again later" (matched case-insensitively).
TRANSIENT_ERRORS = (
    "Socket timed out",
    "slurm_persist_conn_open_without_init",
    "Slurm temporarily unable to accept job",
    "Unable to contact slurm controller",
    "Transport endpoint is not connected",
    "Zero Bytes were transmitted or received",
    "Connection refused",
    "Resource temporarily unavailable",
)

#: Upper bound for one comma-joined argument (Linux refuses single arguments over 128 KiB).
MAX_ARGUMENT_CHARS = 100_000
#: An array whose ``--array`` list would have more ranges than this is split.
MAX_ARRAY_RANGES = 1_000

SCRIPT_DIR = "slurm"
PLAN_FILE = "arrays.json"
#: What a batch tag may contain: it becomes part of job names, which sacct/squeue take as a
#: comma-separated list.
TAG_RE = re.compile(r"^[A-Za-z0-9_.:+-]{1,200}$")


@attrs.frozen
class SlurmArray:
    """One ``sbatch --array`` of a batch: which rows, how task ids map to rows, what to ask for.

    Task id ``t`` runs row ``t + offset``. ``throttle`` is the ``%N`` limit of concurrently
    running tasks (None: no limit). ``sbatch_args`` are the resource and site arguments.
    """

    number: int
    rows: tuple[int, ...]
    offset: int
    throttle: int | None
    sbatch_args: tuple[str, ...]

    @property
    def task_ids(self) -> tuple[int, ...]:
        return tuple(row - self.offset for row in self.rows)

    def array_spec(self) -> str:
        """The ``--array`` value, e.g. ``"0-199%10"``."""
        spec = format_task_ranges(self.task_ids)
        return f"{spec}%{self.throttle}" if self.throttle is not None else spec

    def job_id(self, array_job_id: str, row: int) -> str:
        """batchkit's id of ``row`` once Slurm accepted this array as ``array_job_id``."""
        return f"{array_job_id}_{row - self.offset}"

    def to_dict(self) -> dict[str, object]:
        return {
            "number": self.number,
            "rows": format_task_ranges(self.rows),
            "offset": self.offset,
            "throttle": self.throttle,
            "sbatch_args": list(self.sbatch_args),
        }


def array_name(tag: str, number: int) -> str:
    """The Slurm job name of array ``number`` of the batch tagged ``tag``."""
    return f"{tag}-a{number}"


def script_path(directory: Path, number: int) -> Path:
    return directory / SCRIPT_DIR / f"array-{number}.sh"


def output_path(directory: Path, number: int) -> Path:
    """Where Slurm writes what the wrapper prints before it opens the job's own logs."""
    return directory / SCRIPT_DIR / f"array-{number}.out"


def row_sbatch_args(row: JobRow, site: SlurmSiteOptions) -> tuple[str, ...]:
    """Everything a row asks Slurm for: its resources and its (merged) site options."""
    merged = site.merged(row.template.backend_options, f"backend_options of job {row.index}")
    return tuple(resource_args(row.template.resources, merged.gpu_option) + merged.sbatch_args())


def plan_arrays(
    rows: Sequence[JobRow],
    site: SlurmSiteOptions,
    max_array_size: int,
    parallel_jobs: int | None = None,
    max_ranges: int = MAX_ARRAY_RANGES,
) -> list[SlurmArray]:
    """Group ``rows`` into as few arrays as Slurm allows.

    Rows with identical sbatch arguments share an array; a group is split where a task id
    (row minus the chunk's first row) would reach ``max_array_size`` (Slurm's limit is
    ``MaxArraySize - 1``) or its ``--array`` list would exceed ``max_ranges`` ranges. The
    ``parallel_jobs`` cap is shared out among the arrays in proportion to their size (each
    gets at least 1, so with more arrays than the cap the cap is exceeded: Slurm has no limit
    across arrays).
    """
    if max_array_size < 1:
        raise ValueError(f"max_array_size must be at least 1, got {max_array_size}")
    groups: dict[tuple[str, ...], list[int]] = {}
    # Most rows share a few requests (often the very same spec object): compute each once.
    by_spec: dict[int, tuple[str, ...]] = {}
    by_request: dict[tuple[Resources, str], tuple[str, ...]] = {}
    for row in rows:
        args = by_spec.get(id(row.template))
        if args is None:
            options = row.template.backend_options
            key = (row.template.resources, json.dumps(options, sort_keys=True, default=repr) if options else "")
            args = by_request.get(key)
            if args is None:
                args = by_request[key] = row_sbatch_args(row, site)
            by_spec[id(row.template)] = args
        groups.setdefault(args, []).append(row.row)
    chunks: list[tuple[tuple[int, ...], tuple[str, ...]]] = []
    for args, members in groups.items():
        for chunk in _split_rows(sorted(members), max_array_size, max_ranges):
            chunks.append((chunk, args))
    chunks.sort(key=lambda c: c[0][0])
    throttles = share_throttle(parallel_jobs, [len(c[0]) for c in chunks])
    return [
        SlurmArray(number=k, rows=chunk, offset=chunk[0], throttle=throttle, sbatch_args=args)
        for k, ((chunk, args), throttle) in enumerate(zip(chunks, throttles))
    ]


def _split_rows(rows: Sequence[int], max_array_size: int, max_ranges: int) -> Iterator[tuple[int, ...]]:
    if rows and rows[-1] - rows[0] == len(rows) - 1 and len(rows) <= max_array_size:
        yield tuple(rows)  # the common case: one contiguous range that fits in one array
        return
    chunk: list[int] = []
    ranges = 0
    for row in rows:
        if chunk:
            starts_range = row != chunk[-1] + 1
            if row - chunk[0] > max_array_size - 1 or (starts_range and ranges >= max_ranges):
                yield tuple(chunk)
                chunk, ranges = [], 0
        if not chunk or row != chunk[-1] + 1:
            ranges += 1
        chunk.append(row)
    if chunk:
        yield tuple(chunk)


def share_throttle(cap: int | None, sizes: Sequence[int]) -> list[int | None]:
    """Split a cap on running jobs among arrays of the given sizes (None: no cap).

    A share that is not smaller than its array is dropped (no ``%N`` needed).
    """
    if cap is None:
        return [None] * len(sizes)
    total = sum(sizes)
    if len(sizes) == 1 or total <= 0:
        shares = [cap] * len(sizes)
    else:
        shares = [max(1, cap * size // total) for size in sizes]
        leftover = cap - sum(shares)
        for i in sorted(range(len(sizes)), key=lambda i: -sizes[i]):
            if leftover <= 0:
                break
            shares[i] += 1
            leftover -= 1
    return [share if share < size else None for share, size in zip(shares, sizes)]


def render_array_script(files: JobFiles, array: SlurmArray) -> str:
    """The batch script of one array: run the shared wrapper for row ``task id + offset``.

    Only batchkit's own paths (shell-quoted) end up in it; everything per job is in the
    job table the wrapper reads.
    """
    argv = files.wrapper_argv(0)[:-1]
    row = "$SLURM_ARRAY_TASK_ID" if array.offset == 0 else f"$((SLURM_ARRAY_TASK_ID + {array.offset}))"
    return "\n".join(
        [
            "#!/bin/sh",
            f"# generated by batchkit: array {array.number} of batch {files.tag}",
            f"# task id + {array.offset} = row; sbatch arguments: see {PLAN_FILE} next to this file",
            f'exec {" ".join(shlex.quote(a) for a in argv)} "{row}"',
            "",
        ]
    )


def sbatch_argv(files: JobFiles, array: SlurmArray) -> list[str]:
    """``sbatch --parsable ... <script>`` for one array.

    batchkit's defaults (working directory, where Slurm's own output goes) come first, so a
    ``sbatch_options`` passthrough (part of ``array.sbatch_args``) can override them.
    """
    directory = files.directory
    return [
        "sbatch",
        "--parsable",
        f"--job-name={array_name(files.tag, array.number)}",
        f"--array={array.array_spec()}",
        f"--chdir={directory}",
        f"--output={output_path(directory, array.number)}",
        "--open-mode=append",
        *array.sbatch_args,
        str(script_path(directory, array.number)),
    ]


def join_chunks(items: Iterable[str], limit: int = MAX_ARGUMENT_CHARS) -> list[str]:
    """Comma-join ``items`` into as few strings of at most ``limit`` characters as possible."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for item in items:
        if current and size + 1 + len(item) > limit:
            out.append(",".join(current))
            current, size = [], 0
        size += len(item) + (1 if current else 0)
        current.append(item)
    if current:
        out.append(",".join(current))
    return out


def sacct_argv(jobs: str | None, starttime: str, names: str | None = None) -> list[str]:
    """``sacct`` for the given comma-joined job ids or job names, allocations only, parsable."""
    argv = ["sacct", "-X", "-P", "-n", f"--starttime={starttime}", f"--format={','.join(SACCT_FIELDS)}"]
    if jobs:
        argv.append(f"--jobs={jobs}")
    if names:
        argv.append(f"--name={names}")
    return argv


def squeue_argv(jobs: str | None = None, names: str | None = None) -> list[str]:
    """``squeue`` over every state (finished jobs stay listed for MinJobAge seconds)."""
    argv = ["squeue", "-h", "-t", "all", f"--Format={','.join(f + ':|' for f in SQUEUE_FIELDS)}"]
    if jobs:
        argv.append(f"--jobs={jobs}")
    if names:
        argv.append(f"--name={names}")
    return argv


def scancel_targets(job_ids: Iterable[str]) -> list[str]:
    """scancel arguments for ``job_ids``, array tasks folded: ``123_[0-99,105]``.

    Unreadable ids are left out.
    """
    tasks: dict[str, list[int]] = {}
    plain: dict[str, None] = {}
    for job_id in job_ids:
        parts = split_job_id(job_id)
        if parts is None:
            continue
        if parts.task is None:
            plain[parts.array_id] = None
        else:
            tasks.setdefault(parts.array_id, []).append(parts.task)
    targets = list(plain)
    for array_id, ids in tasks.items():
        if array_id in plain:
            continue
        spec = format_task_ranges(ids)
        targets.append(f"{array_id}_{spec}" if "," not in spec and "-" not in spec else f"{array_id}_[{spec}]")
    return targets


def scancel_argvs(job_ids: Iterable[str], limit: int = MAX_ARGUMENT_CHARS * 10) -> list[list[str]]:
    """As few ``scancel`` command lines as possible (one unless the argv would be huge)."""
    out: list[list[str]] = []
    current: list[str] = []
    size = 0
    for target in scancel_targets(job_ids):
        if current and size + len(target) > limit:
            out.append(["scancel", *current])
            current, size = [], 0
        current.append(target)
        size += len(target) + 1
    if current:
        out.append(["scancel", *current])
    return out


SCONTROL_CONFIG_ARGV = ("scontrol", "show", "config")
