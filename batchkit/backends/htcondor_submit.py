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
something HTCondor interprets. No value written into the file can span lines or contain a
macro reference (``$(...)``, ``$$(...)``, ``$ENV(...)``, ...): the command is written so that
every ``$`` in it is spelled ``\\x24`` inside bash ``$'...'`` quotes, and paths with such
sequences are refused. (HTCondor's own ``$(DOLLAR)`` escape is not used: runs of dollars
expand to match-time ``$$(...)`` references.) So no argument, path or tag can add a command,
a macro or a ``queue`` statement.

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
import posixpath
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.errors import SpecError
from batchkit.jobfiles import (
    ROWS_PER_TABLE,
    WRAPPER_SOURCE,
    JobFileFactory,
    JobFiles,
    JobRow,
    build_rows,
    default_tag,
    render_row,
)
from batchkit.model import JobSpec

SUBMIT_FILE = "htcondor.sub"
META_FILE = "htcondor.json"
USER_LOG = "htcondor.log"

#: Custom job attributes batchkit sets on every proc (read back by ``find`` and ``query``).
TAG_ATTRIBUTE = "BatchkitTag"
ROW_ATTRIBUTE = "BatchkitRow"

WALLTIME_ENFORCEMENTS = ("allowed_execute_duration", "periodic_hold", "periodic_remove", "none")

#: Item-data variables, in the order of the ``queue ... from`` statement (bk_command is last:
#: HTCondor gives the last variable the rest of the line).
ITEM_VARIABLES = ("bk_row", "bk_index", "bk_attempt")

#: Submit commands batchkit must control; ``submit_commands`` may not set them.
RESERVED_COMMANDS = frozenset(
    {
        "executable",
        "arguments",
        "args",
        "transfer_executable",
        "queue",
        "output",
        "error",
        "log",
        "initialdir",
        "should_transfer_files",
        "transfer_input_files",
        "transfer_output_files",
        "transfer_output_remaps",
        "preserve_relative_paths",
        "when_to_transfer_output",
        "batch_name",
        "max_materialize",
        f"my.{TAG_ATTRIBUTE.lower()}",
        f"my.{ROW_ATTRIBUTE.lower()}",
        "my.batchkitindex",
        "my.batchkitattempt",
    }
)

_COMMAND_NAME_RE = re.compile(r"^(\+|MY\.)?[A-Za-z_][A-Za-z0-9_.]*$", re.IGNORECASE)
_TAG_RE = re.compile(r"^[A-Za-z0-9_.:@+-]+$")
_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Characters HTCondor's file lists and remaps treat specially (or that we refuse to escape).
_UNSAFE_TRANSFER_CHARS = set(",;=\"'\\$") | {chr(c) for c in range(33)} | {"\x7f"}
#: Names the sandbox already uses; an input may not land on them.
_SANDBOX_NAMES = frozenset({"wrapper.sh", "table", "setup.sh", "logs", "markers"})

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


def validate_submit_commands(commands: Mapping[str, Any]) -> dict[str, str]:
    """Check the raw passthrough commands: one line each, and none batchkit depends on.

    Values are submit language and are written verbatim (``$(Cluster)`` still expands):
    that is the point of a passthrough. Keys may be ``+Attr`` / ``MY.Attr`` for custom
    job attributes.
    """
    out: dict[str, str] = {}
    for key, value in commands.items():
        if not isinstance(key, str) or not _COMMAND_NAME_RE.match(key):
            raise SpecError(f"htcondor submit_commands: {key!r} is not a submit command name")
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, (str, int, float)):
            text = str(value)
        else:
            raise SpecError(f"htcondor submit_commands: value of {key} must be a string, got {value!r}")
        if any(c in text for c in "\n\r\x00"):
            raise SpecError(f"htcondor submit_commands: value of {key} must be a single line, got {text!r}")
        canonical = key.lower()
        if canonical.startswith("+"):
            canonical = "my." + canonical[1:]
        if canonical in RESERVED_COMMANDS or canonical.startswith("bk_"):
            raise SpecError(f"htcondor submit_commands: {key} is set by batchkit and cannot be overridden")
        out[key] = text
    return out


# ----------------------------------------------------------------------------- quoting
_MACRO_RE = re.compile(r"\$(\$|[A-Za-z0-9_.]*\()")


def check_no_macros(text: str, what: str) -> str:
    """``text`` unchanged, or :class:`SpecError` if HTCondor would expand part of it.

    HTCondor expands ``$(name)``, ``$NAME(...)`` at submit time and ``$$(...)`` when the job
    is matched, in every value; a plain ``$`` followed by anything else is literal.
    """
    if _MACRO_RE.search(text):
        raise SpecError(f"htcondor: {what} contains a '$' sequence HTCondor would expand as a macro: {text!r}")
    return text


def single_line(text: str, what: str) -> str:
    """``text`` unchanged, or :class:`SpecError` if it cannot be one submit-file line."""
    if any(c in text for c in "\n\r\x00"):
        raise SpecError(f"htcondor: {what} must not contain a line break or NUL byte: {text!r}")
    if text != text.strip():
        raise SpecError(f"htcondor: {what} must not start or end with white space: {text!r}")
    return text


def quote_arguments(argv: Sequence[str]) -> str:
    """``argv`` in HTCondor's "new" arguments syntax, ready for ``arguments = ...``.

    The rules (condor_submit manual): the whole string is in double quotes, a literal ``"``
    is written ``""``, white space separates arguments, an argument with white space (or a
    single quote, or empty) is put in single quotes, inside which ``'`` is written ``''``.
    Line breaks cannot be expressed, and macro references would be expanded: both raise.
    """
    parts = []
    for arg in argv:
        if any(c in arg for c in "\n\r\x00"):
            raise SpecError(f"htcondor: an argument of the job wrapper contains a line break: {arg!r}")
        check_no_macros(arg, "an argument of the job wrapper")
        quoted = arg.replace('"', '""')
        if not arg or any(c in arg for c in " \t'"):
            quoted = "'" + quoted.replace("'", "''") + "'"
        parts.append(quoted)
    return '"' + " ".join(parts) + '"'


_ANSI_C = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\t": "\\t", "\r": "\\r", "$": "\\x24"}


def describe_command(argv: Sequence[str]) -> str:
    """The argv as one line of shell words, safe as HTCondor item data.

    Used as documentation in the item data: a reader (or ``bash``) gets back exactly the
    argv. Arguments are quoted by :func:`shlex.quote`, except those with control characters
    or ``$``, which use bash's ``$'...'`` with escapes (``\\n``, ``\\x24``): then the line
    has no line break and no ``$`` followed by a name or parenthesis.
    """
    words = []
    for arg in argv:
        if "$" in arg or any(ord(c) < 32 or ord(c) == 127 for c in arg):
            body = "".join(_ANSI_C.get(c, f"\\x{ord(c):02x}" if ord(c) < 32 or ord(c) == 127 else c) for c in arg)
            words.append(f"$'{body}'")
        else:
            words.append(shlex.quote(arg))
    return " ".join(words)


def classad_string(text: str) -> str:
    """A ClassAd string literal for a value known to need no escapes (tags, fixed reasons)."""
    if '"' in text or "\\" in text or any(ord(c) < 32 for c in text):
        raise SpecError(f"htcondor: {text!r} cannot be written as a plain ClassAd string")
    return '"' + text + '"'


def check_tag(tag: str) -> str:
    """The batch tag, if it is safe in a ClassAd string and a constraint (letters, digits, ``_.:@+-``)."""
    if not _TAG_RE.match(tag):
        raise SpecError(f"htcondor: the batch tag {tag!r} may only contain letters, digits and _.:@+-")
    return tag


# ----------------------------------------------------------------------------- transfer plan
@attrs.frozen
class TransferPlan:
    """How one row's files move when HTCondor transfers them.

    ``inputs`` are submit-side paths HTCondor copies into the sandbox (under their base
    name), ``outputs`` sandbox-relative names it copies back and ``remaps`` where each of
    those goes. ``wrapper_inputs``/``wrapper_outputs`` are what is left for the job wrapper:
    URL inputs/outputs and the renames of inputs whose name differs from their base name.
    """

    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    remaps: tuple[tuple[str, str], ...]
    wrapper_inputs: Mapping[str, str]
    wrapper_outputs: Mapping[str, str]

    def wrapper_spec(self, spec: JobSpec) -> JobSpec:
        """``spec`` with only the inputs/outputs the job wrapper still has to move."""
        return attrs.evolve(spec, inputs=dict(self.wrapper_inputs), outputs=dict(self.wrapper_outputs))


def _local_path(location: str) -> str | None:
    """The local path of ``location``, or None if it is a URL the wrapper must handle."""
    if location.startswith("file://"):
        return location[len("file://") :]
    if _URL_RE.match(location):
        return None
    return location


def _transfer_safe(path: str, what: str) -> str:
    bad = sorted({c for c in path if c in _UNSAFE_TRANSFER_CHARS})
    if bad or not path:
        raise SpecError(
            f"htcondor (transfer_files): {what} {path!r} contains characters HTCondor's transfer lists "
            f"cannot carry ({', '.join(repr(c) for c in bad) or 'empty'}); rename it or use a shared file system"
        )
    return path


def plan_transfer(row: JobRow) -> TransferPlan:
    """Split a row's inputs/outputs between HTCondor (local files) and the wrapper (URLs)."""
    spec = row.spec
    inputs: list[str] = []
    basenames: dict[str, str] = {}
    wrapper_inputs: dict[str, str] = {}
    renames: dict[str, str] = {}
    for name, location in spec.inputs.items():
        path = _local_path(location)
        if path is None:
            wrapper_inputs[name] = location
            continue
        path = os.path.normpath(os.path.join(row.cwd, path))
        base = posixpath.basename(path)
        _transfer_safe(path, "input")
        if base in basenames or base in _SANDBOX_NAMES or base.startswith("_condor_"):
            raise SpecError(
                f"htcondor (transfer_files): inputs {basenames.get(base, base)!r} and {path!r} would both land in "
                f"the sandbox as {base!r}"
            )
        basenames[base] = path
        inputs.append(path)
        if name != base:
            renames[name] = base
    clobbered = sorted(set(renames) & set(basenames))
    if clobbered:
        raise SpecError(
            f"htcondor (transfer_files): input name(s) {clobbered} are also the file name of another input; "
            "HTCondor cannot rename inputs, so give inputs their own file names"
        )
    outputs: list[str] = []
    remaps: list[tuple[str, str]] = []
    wrapper_outputs: dict[str, str] = {}
    for name, location in spec.outputs.items():
        path = _local_path(location)
        if path is None:
            wrapper_outputs[name] = location
            continue
        dest = os.path.normpath(os.path.join(row.cwd, path))
        outputs.append(_transfer_safe(name, "output"))
        remaps.append((name, _transfer_safe(dest, "output destination")))
    return TransferPlan(tuple(inputs), tuple(outputs), tuple(remaps), {**wrapper_inputs, **renames}, wrapper_outputs)


def render_sandbox_row(row: JobRow) -> str:
    """A table branch for a row that runs directly in HTCondor's sandbox.

    Same text as :func:`batchkit.jobfiles.render_row` except the ``bk_row`` line: working
    directory ``.`` (the sandbox) and no scratch directory, because the sandbox already is a
    fresh per-job directory and HTCondor only finds outputs at its top.
    """
    lines = render_row(row).split("\n")
    if not lines[1].startswith("bk_row "):
        raise AssertionError(f"unexpected job table layout: {lines[1]!r}")  # pragma: no cover
    lines[1] = f"bk_row {row.index} {row.attempt} {shlex.quote(row.spec.name or '')} . 0 ''"
    return "\n".join(lines)


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
    values: dict[str, list[int | None]] = {
        "cpus": [r.spec.resources.cpus for r in rows],
        "gpus": [r.spec.resources.gpus for r in rows],
        "memory": [None if r.spec.resources.memory is None else _ceil_div(r.spec.resources.memory, MIB) for r in rows],
        "disk": [None if r.spec.resources.disk is None else _ceil_div(r.spec.resources.disk, KIB) for r in rows],
        "walltime": [r.spec.resources.walltime for r in rows],
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


@attrs.frozen
class TransferColumns:
    """The per-row transfer values of a batch, as item-data columns.

    ``output_names`` are the sandbox-side names of the local outputs, the same for every row
    (so ``transfer_output_files`` is one fixed list); ``destinations[k]`` holds each row's
    destination of ``output_names[k]``; ``inputs`` each row's input list (its table chunk
    first, so it is never empty).
    """

    output_names: tuple[str, ...]
    destinations: tuple[tuple[str, ...], ...]
    inputs: tuple[str, ...]


def transfer_columns(rows: Sequence[JobRow]) -> TransferColumns:
    """Per-row transfer lists as columns; :class:`SpecError` if rows name different outputs."""
    plans = [plan_transfer(r) for r in rows]
    names = plans[0].outputs
    for row, plan in zip(rows, plans):
        if set(plan.outputs) != set(names):
            raise SpecError(
                "htcondor (transfer_files): every job of a submission must have the same local output file names "
                f"(job {rows[0].index}: {sorted(names)}, job {row.index}: {sorted(plan.outputs)}); "
                "vary the destinations with {index} instead"
            )
    destinations = tuple(tuple(dict(plan.remaps)[name] for plan in plans) for name in names)
    inputs = tuple(", ".join([f"table/{row.row // ROWS_PER_TABLE}.sh", *plan.inputs]) for row, plan in zip(rows, plans))
    return TransferColumns(names, destinations, inputs)


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
    ) -> JobFiles:
        """As :meth:`JobFileFactory.create`; with file transfer, rows run in the sandbox.

        ``files.rows`` always hold the specs as given; only the job table differs (see
        :func:`render_sandbox_row`).
        """
        if not self.settings.transfers:
            return super().create(
                specs,
                directory,
                indices=indices,
                attempts=attempts,
                tag=tag,
                cwd=cwd,
                setup_script=setup_script,
                options=options,
            )
        path = Path(directory).absolute()
        rows = build_rows(specs, indices, attempts, cwd)
        sandbox_rows = [attrs.evolve(r, spec=plan_transfer(r).wrapper_spec(r.spec), cwd=".") for r in rows]
        wrapper = install_wrapper(path, setup_script)
        tables = write_sandbox_tables(sandbox_rows, path)
        files = JobFiles(
            directory=path,
            wrapper=wrapper,
            tables=tables,
            submit_files=(),
            rows=tuple(rows),
            tag=tag or default_tag(path),
            options=dict(options or {}),
        )
        return attrs.evolve(files, submit_files=tuple(self.render_submit(files)))

    def render_submit(self, files: JobFiles) -> list[Path]:
        text = render_description(files, self.settings)
        (files.directory / "logs").mkdir(exist_ok=True)
        (files.directory / "markers").mkdir(exist_ok=True)
        path = files.directory / SUBMIT_FILE
        _write_atomic(path, text)
        meta = {"tag": files.tag, "rows": len(files.rows), "spool": self.settings.spool}
        _write_atomic(files.directory / META_FILE, json.dumps(meta, indent=1) + "\n")
        return [path]


def install_wrapper(directory: Path, setup_script: str | os.PathLike[str] | None) -> Path:
    """Copy ``wrapper.sh`` (and the setup script, as ``setup.sh``) into a batch directory."""
    (directory / "table").mkdir(parents=True, exist_ok=True)
    wrapper = directory / "wrapper.sh"
    shutil.copyfile(WRAPPER_SOURCE, wrapper)
    wrapper.chmod(0o755)
    if setup_script is not None:
        shutil.copyfile(setup_script, directory / "setup.sh")
    return wrapper


def write_sandbox_tables(rows: Sequence[JobRow], directory: Path) -> tuple[Path, ...]:
    """The job table chunks for rows rendered by :func:`render_sandbox_row`."""
    tables = []
    for start in range(0, len(rows), ROWS_PER_TABLE):
        chunk = rows[start : start + ROWS_PER_TABLE]
        head = [
            "# generated by batchkit -- sourced by wrapper.sh; one branch per row (HTCondor sandbox)",
            f"BATCHKIT_PYTHON=${{BATCHKIT_PYTHON:-{shlex.quote(sys.executable)}}}",
            'case "$BK_ROW" in',
        ]
        text = "\n".join(head + [render_sandbox_row(r) for r in chunk] + ["esac", ""])
        path = directory / "table" / f"{chunk[0].row // ROWS_PER_TABLE}.sh"
        _write_atomic(path, text)
        tables.append(path)
    return tuple(tables)


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
