"""HTCondor submit descriptions: one file, one cluster, one proc per row.

The description runs every row through the shared wrapper (``/bin/sh wrapper.sh DIR ROW``)
and carries the per-row values as ``queue ... from`` item data::

    queue bk_row, bk_index, bk_attempt, bk_command from (
    0 0 1 python run.py --n 10
    1 1 1 python run.py --n 20
    )

``bk_command`` is documentation only: the job's argv in POSIX shell syntax, so the description
(and nothing else) tells a reader what each proc runs. What a job *executes* comes from the job
table, which the wrapper sources; the command never passes through the submit language as
something HTCondor interprets. How values are made safe for the submit language (no line
breaks, no macro references, no way to add a command or a ``queue``) is
:mod:`batchkit.backends.htcondor_language`.

The job's environment is not written into the description either: the job table exports it
(quoted by :func:`shlex.quote`), which avoids HTCondor's environment quoting rules altogether.

Two ways to get files to and from the job:

* shared file system (default): the job reads the batch directory directly, exactly as on Slurm;
* ``transfer_files``: HTCondor moves the wrapper, the row's table chunk, ``setup.sh`` and the
  spec's local inputs into the job's sandbox and moves ``logs/``, ``markers/`` and the spec's local
  outputs back (``transfer_output_remaps`` to their destinations). The sandbox is a fresh
  per-job directory, so the row runs right there (no second scratch directory); URL inputs and
  outputs are still staged by the wrapper. ``spool`` implies this mode. The per-row lists are
  item data too -- each output's destination one column, the input list the last column (so
  the command documentation becomes a ``#`` line above each item, which HTCondor skips) --
  because per-row macro definitions make HTCondor's submit parser slow down quadratically.
  Hence every job of a batch must name the same local outputs (``out.root`` -> ``out_{index}.root``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.backends.htcondor_language import (
    ROW_ATTRIBUTE,
    TAG_ATTRIBUTE,
    check_no_macros,
    check_tag,
    classad_string,
    describe_command,
    quote_arguments,
    single_line,
    validate_submit_commands,
)
from batchkit.backends.htcondor_transfer import (
    plan_transfer,
    transfer_columns,
)
from batchkit.errors import SpecError
from batchkit.jobfiles import JobFileFactory, JobFiles, JobRow

SUBMIT_FILE = "htcondor.sub"
META_FILE = "htcondor.json"
USER_LOG = "htcondor.log"

WALLTIME_ENFORCEMENTS = ("allowed_execute_duration", "periodic_hold", "periodic_remove", "none")

#: Item-data variables, in the order of the ``queue ... from`` statement (bk_command is last:
#: HTCondor gives the last variable the rest of the line).
ITEM_VARIABLES = ("bk_row", "bk_index", "bk_attempt")

MIB = 1024 * 1024
KIB = 1024


# ----------------------------------------------------------------------------- options
def _check_enforcement(_instance: object, _attribute: object, value: str) -> None:
    if value not in WALLTIME_ENFORCEMENTS:
        raise SpecError(
            f"htcondor: walltime_enforcement must be one of {', '.join(WALLTIME_ENFORCEMENTS)}, got {value!r}"
        )


def _to_commands(value: Mapping[str, Any] | None) -> tuple[tuple[str, str], ...]:
    return tuple(validate_submit_commands(value or {}).items())


@attrs.frozen
class SubmitSettings:
    """The manager options that shape the submit description (see :class:`HTCondorJobManager`)."""

    transfer_files: bool = False
    spool: bool = False
    initialdir: str | None = None
    walltime_enforcement: str = attrs.field(default="allowed_execute_duration", validator=_check_enforcement)
    submit_commands: tuple[tuple[str, str], ...] = attrs.field(default=(), converter=_to_commands)

    @property
    def transfers(self) -> bool:
        """Whether HTCondor moves the job's files (``-spool`` always needs it)."""
        return self.transfer_files or self.spool


# ----------------------------------------------------------------------------- description
def _ceil_div(value: int, unit: int) -> int:
    return -(-value // unit)


@attrs.frozen
class ResourceRequest:
    """How a batch's resources appear in the description.

    ``refs`` maps cpus/gpus/memory/disk/walltime to either a literal (all rows agree) or a
    ``$(bk_<name>)`` reference to an item-data column (rows differ); ``columns`` holds those
    columns' values in row order. A resource unset for every row is absent from ``refs``.
    """

    refs: Mapping[str, str]
    columns: Mapping[str, tuple[str, ...]]


def resource_request(rows: Sequence[JobRow]) -> ResourceRequest:
    """Resources in HTCondor's units: memory in MiB, disk in KiB (rounded up), walltime in s."""
    res = [r.template.resources for r in rows]
    values: dict[str, list[int | None]] = {
        "cpus": [x.cpus for x in res],
        "gpus": [x.gpus for x in res],
        "memory": [None if x.memory is None else _ceil_div(x.memory, MIB) for x in res],
        "disk": [None if x.disk is None else _ceil_div(x.disk, KIB) for x in res],
        "walltime": [x.walltime for x in res],
    }
    refs: dict[str, str] = {}
    columns: dict[str, tuple[str, ...]] = {}
    for key, vals in values.items():
        if all(v == vals[0] for v in vals):
            if vals[0] is not None:
                refs[key] = str(vals[0])
            continue
        if any(v is None for v in vals):
            raise SpecError(
                f"htcondor: resources.{key} is set for some jobs of the submission and not for others; "
                "HTCondor needs one or the other for all jobs of a cluster"
            )
        columns[f"bk_{key}"] = tuple(str(v) for v in vals)
        refs[key] = f"$(bk_{key})"
    return ResourceRequest(refs, columns)


def resource_lines(request: ResourceRequest, enforcement: str) -> list[str]:
    """``request_*`` lines, ``+MaxRuntime`` and the chosen walltime enforcement."""
    refs = request.refs
    lines = [f"request_cpus = {refs['cpus']}"]
    if "memory" in refs:
        lines.append(f"request_memory = {refs['memory']}")
    if "disk" in refs:
        lines.append(f"request_disk = {refs['disk']}")
    if refs.get("gpus", "0") != "0":
        lines.append(f"request_gpus = {refs['gpus']}")
    if "walltime" in refs:
        lines.append(f"+MaxRuntime = {refs['walltime']}")
        lines += walltime_lines(refs["walltime"], enforcement)
    return lines


def walltime_lines(seconds: str, enforcement: str) -> list[str]:
    """The enforcement of a walltime of ``seconds`` (a number or a ``$(bk_walltime)`` reference)."""
    running_too_long = f"(JobStatus == 2) && (time() - JobCurrentStartExecutingDate > {seconds})"
    if enforcement == "allowed_execute_duration":
        return [f"allowed_execute_duration = {seconds}"]
    if enforcement == "periodic_hold":
        return [
            f"periodic_hold = {running_too_long}",
            f'periodic_hold_reason = "batchkit: walltime of {seconds} s exceeded"',
            "periodic_hold_subcode = 1",
        ]
    if enforcement == "periodic_remove":
        return [f"periodic_remove = {running_too_long}"]
    return []


def render_description(files: JobFiles, settings: SubmitSettings) -> str:
    """The whole submit description of a batch (pure: reads nothing, writes nothing)."""
    rows = files.rows
    directory = check_no_macros(single_line(str(files.directory), "the batch directory"), "the batch directory")
    tag = check_tag(files.tag)
    request = resource_request(rows)
    initialdir = settings.initialdir or directory
    if settings.transfers and os.path.normpath(initialdir) != os.path.normpath(directory):
        raise SpecError("htcondor: with transfer_files/spool, initialdir must be the batch directory")
    d = directory
    out = [
        "# generated by batchkit: one proc per row; see the job table for what each row runs",
        "universe = vanilla",
        "executable = /bin/sh",
        "transfer_executable = false",
    ]
    if settings.transfers:
        launcher = (
            'd=`pwd`; mkdir -p "$d/logs" "$d/markers"; BATCHKIT_STATE_DIR=$d; export BATCHKIT_STATE_DIR; '
            'exec /bin/sh "$d/wrapper.sh" "$d" "$1"'
        )
        args = quote_arguments(["-c", launcher, "batchkit-job"])
    else:
        args = quote_arguments([str(files.wrapper), directory])
    out.append(f'arguments = {args[:-1]} $(bk_row)"')
    out += [
        f"initialdir = {check_no_macros(single_line(initialdir, 'initialdir'), 'initialdir')}",
        f"log = {d}/{USER_LOG}",
        f"output = {d}/logs/$(bk_index).condor.out",
        f"error = {d}/logs/$(bk_index).condor.err",
        f"batch_name = {tag}",
        f"+{TAG_ATTRIBUTE} = {classad_string(tag)}",
        f"+{ROW_ATTRIBUTE} = $(bk_row)",
        "+BatchkitIndex = $(bk_index)",
        "+BatchkitAttempt = $(bk_attempt)",
    ]
    out += resource_lines(request, settings.walltime_enforcement)
    parallel = files.options.get("parallel_jobs")
    if parallel:
        out.append(f"max_materialize = {int(parallel)}")
    columns: dict[str, Sequence[str]] = dict(request.columns)
    if settings.transfers:
        transfer = transfer_columns(rows)
        setup = ", setup.sh" if (files.directory / "setup.sh").exists() else ""
        outputs = "".join(f", {name}" for name in transfer.output_names)
        remaps = "; ".join(f"{name} = $(bk_dest{k})" for k, name in enumerate(transfer.output_names))
        out += [
            "should_transfer_files = YES",
            "when_to_transfer_output = ON_EXIT",
            "preserve_relative_paths = true",
            f"transfer_input_files = wrapper.sh{setup}, $(bk_inputs)",
            f"transfer_output_files = logs, markers{outputs}",
        ]
        if remaps:
            out.append(f'transfer_output_remaps = "{remaps}"')
        # (HTCondor rejects a queue statement whose variable names contain "_<digit>")
        columns.update({f"bk_dest{k}": dests for k, dests in enumerate(transfer.destinations)})
        columns["bk_inputs"] = transfer.inputs
    for key, value in settings.submit_commands:
        out.append(f"{key} = {value}")
    # The last variable takes the rest of the line: the input list with file transfer, else the
    # command (then documentation only). With file transfer the command is a comment line.
    last = "bk_inputs" if settings.transfers else "bk_command"
    names = [*ITEM_VARIABLES, *(c for c in columns if c != last), last]
    out.append(f"queue {', '.join(names)} from (")
    for i, row in enumerate(rows):
        command = describe_command(row.spec.command)
        fields = [str(row.row), str(row.index), str(row.attempt)]
        fields += [columns[c][i] for c in names[len(ITEM_VARIABLES) : -1]]
        if settings.transfers:
            out.append(f"# {command}")
            fields.append(columns["bk_inputs"][i])
        else:
            fields.append(command)
        out.append(" ".join(fields))
    out += [")", ""]
    return "\n".join(out)


# ----------------------------------------------------------------------------- file factory
class HTCondorFileFactory(JobFileFactory):
    """Wrapper + job table + ``htcondor.sub`` (+ ``htcondor.json``, what ``find`` needs later)."""

    def __init__(self, settings: SubmitSettings | None = None) -> None:
        self.settings = settings or SubmitSettings()

    def table_rows(self, rows: list[JobRow]) -> list[JobRow]:
        """With file transfer, rows run in the sandbox and fetch only remote URLs themselves.

        HTCondor brings local inputs into the sandbox and takes local outputs back
        (:func:`plan_transfer`); ``files.rows`` keep the specs as given.
        """
        if not self.settings.transfers:
            return rows
        return [
            r._replace(template=plan_transfer(r).wrapper_spec(r.spec), sandbox=True, substitute=False) for r in rows
        ]

    def render_submit(self, files: JobFiles) -> list[Path]:
        text = render_description(files, self.settings)
        (files.directory / "logs").mkdir(exist_ok=True)
        (files.directory / "markers").mkdir(exist_ok=True)
        path = files.directory / SUBMIT_FILE
        _write_atomic(path, text)
        meta = {"tag": files.tag, "rows": len(files.rows), "spool": self.settings.spool}
        _write_atomic(files.directory / META_FILE, json.dumps(meta, indent=1) + "\n")
        return [path]


def read_meta(directory: Path) -> dict[str, Any]:
    """``htcondor.json`` of a batch directory ({} if missing or unreadable)."""
    try:
        data = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
