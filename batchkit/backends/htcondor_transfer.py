"""HTCondor's own file transfer: which files HTCondor moves, and which the job wrapper still does.

With ``transfer_files`` (or ``spool``) a job runs in HTCondor's sandbox, a fresh per-job
directory on the execute node. HTCondor copies the wrapper, the row's table chunk,
``setup.sh`` and the spec's *local* inputs in (with ``preserve_relative_paths``: relative
entries keep their path, absolute ones land under their base name) and copies ``logs/``,
``markers/`` and the spec's local outputs back, each output remapped to its destination.
URL inputs/outputs stay with the wrapper, which runs the row right in the sandbox.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Mapping, Sequence

import attrs

from batchkit.errors import SpecError
from batchkit.jobfiles import ROWS_PER_TABLE, JobRow
from batchkit.model import JobSpec

_URL_RE = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")
#: Characters HTCondor's file lists and remaps treat specially (or that we refuse to escape).
_UNSAFE_TRANSFER_CHARS = set(",;=\"'\\$") | {chr(c) for c in range(33)} | {"\x7f"}
#: Names the sandbox already uses; an input may not land on them.
_SANDBOX_NAMES = frozenset({"wrapper.sh", "table", "setup.sh", "logs", "markers"})


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
