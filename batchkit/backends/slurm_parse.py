"""Read what Slurm prints: job ids, states, exit codes, ``sacct``/``squeue``/``scontrol`` output.

Pure functions, no I/O, tested against outputs recorded from a real Slurm 22.05
(``tests/fixtures/slurm/``). They never raise on odd scheduler output: a line that cannot be
read is skipped, a state nobody knows becomes :attr:`JobStatus.UNKNOWN` (its word is kept in
``native_state``), so one garbled line never fails a poll of thousands of jobs.

Job ids. batchkit hands out ``<array job id>_<task id>`` (``"123_4"``), the id Slurm shows in
``squeue``/``sacct`` ``JobID``. Slurm also has a *raw* id per task (``JobIDRaw``: ``1360``),
and the last task to start reuses the array's own id. Both forms are understood here. Array
tasks that have not started are printed *collapsed*, ``123_[5-999]`` or with a throttle
``123_[5-999%4]``; :func:`expand_task_ranges` turns those into the individual task ids.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Sequence
from typing import NamedTuple

import attrs

from batchkit.model import JobInfo, JobStatus

#: Slurm job state (long name) -> batchkit status. Anything else -> UNKNOWN.
STATE_TABLE: dict[str, JobStatus] = {
    "PENDING": JobStatus.PENDING,
    "CONFIGURING": JobStatus.PENDING,  # nodes allocated, booting: the command has not started
    "REQUEUED": JobStatus.PENDING,  # back in the queue, will run again under the same id
    "REQUEUE_HOLD": JobStatus.PENDING,
    "REQUEUE_FED": JobStatus.PENDING,
    "RESV_DEL_HOLD": JobStatus.PENDING,  # held because its reservation was deleted
    "RUNNING": JobStatus.RUNNING,
    "COMPLETING": JobStatus.RUNNING,  # command ended, epilog/cleanup still running
    "RESIZING": JobStatus.RUNNING,
    "SIGNALING": JobStatus.RUNNING,
    "STAGE_OUT": JobStatus.RUNNING,
    "STOPPED": JobStatus.RUNNING,  # SIGSTOPped, keeps its resources
    "SUSPENDED": JobStatus.RUNNING,  # paused by the scheduler; resumes by itself
    "COMPLETED": JobStatus.FINISHED,
    "FAILED": JobStatus.FAILED,
    "TIMEOUT": JobStatus.FAILED,
    "OUT_OF_MEMORY": JobStatus.FAILED,
    "NODE_FAIL": JobStatus.FAILED,
    "PREEMPTED": JobStatus.FAILED,
    "BOOT_FAIL": JobStatus.FAILED,
    "DEADLINE": JobStatus.FAILED,
    "SPECIAL_EXIT": JobStatus.FAILED,
    "CANCELLED": JobStatus.CANCELLED,
    # A federated sibling that was revoked runs (or ran) on another cluster: this cluster
    # cannot tell how it ends, so the job-side exit marker has to decide.
    "REVOKED": JobStatus.UNKNOWN,
}

#: squeue's compact codes (``%t``) -> long names, so either spelling is understood.
COMPACT_STATES: dict[str, str] = {
    "PD": "PENDING",
    "CF": "CONFIGURING",
    "RQ": "REQUEUED",
    "RH": "REQUEUE_HOLD",
    "RF": "REQUEUE_FED",
    "RD": "RESV_DEL_HOLD",
    "R": "RUNNING",
    "CG": "COMPLETING",
    "RS": "RESIZING",
    "SI": "SIGNALING",
    "SO": "STAGE_OUT",
    "ST": "STOPPED",
    "S": "SUSPENDED",
    "CD": "COMPLETED",
    "F": "FAILED",
    "TO": "TIMEOUT",
    "OOM": "OUT_OF_MEMORY",
    "NF": "NODE_FAIL",
    "PR": "PREEMPTED",
    "BF": "BOOT_FAIL",
    "DL": "DEADLINE",
    "SE": "SPECIAL_EXIT",
    "CA": "CANCELLED",
    "RV": "REVOKED",
}

#: Why a job ended in a state that is not plain success/failure (used as JobInfo.reason).
STATE_REASONS: dict[str, str] = {
    "TIMEOUT": "walltime exceeded (Slurm state TIMEOUT; Slurm limits are whole minutes)",
    "OUT_OF_MEMORY": "out of memory (Slurm state OUT_OF_MEMORY)",
    "NODE_FAIL": "node failure (Slurm state NODE_FAIL)",
    "PREEMPTED": "preempted (Slurm state PREEMPTED)",
    "BOOT_FAIL": "node boot failure (Slurm state BOOT_FAIL)",
    "DEADLINE": "deadline reached (Slurm state DEADLINE)",
    "SPECIAL_EXIT": "requeued in special-exit state and held (Slurm state SPECIAL_EXIT)",
    "REQUEUED": "requeued",
    "REQUEUE_HOLD": "requeued and held",
    "REQUEUE_FED": "requeued (federation)",
    "RESV_DEL_HOLD": "held: its reservation was deleted",
    "SUSPENDED": "suspended",
    "STOPPED": "stopped",
    "REVOKED": "revoked: a federated sibling runs on another cluster",
}

#: Slurm reasons that add nothing to the state (not copied into JobInfo.reason).
_EMPTY_REASONS = {"", "None", "none", "(null)", "NonZeroExitCode", "N/A"}

#: States a plain array-master record may report for tasks that have no line of their own.
_MASTER_STATES = {"PENDING", "CANCELLED"}

_JOB_ID_RE = re.compile(r"^(\d+)(?:_(\d+|\[[^\]]*\]))?$")
_RANGE_RE = re.compile(r"^(\d+)(?:-(\d+)(?::(\d+))?)?$")


class SlurmRecord(NamedTuple):
    """One line of ``sacct``/``squeue`` (or one ``scontrol`` record), normalised.

    ``array_id`` is the array's job id (for a plain job its own id) and ``tasks`` the task ids
    the line stands for (several for a collapsed ``123_[5-9]`` line, empty for a plain job).
    ``raw_id`` is Slurm's per-task id when the line carries it. ``reason`` is Slurm's reason
    word, ``detail`` what the state text said beyond the state (``"cancelled by uid 0"``).
    (A NamedTuple rather than an attrs class: a poll of a large submission builds tens of
    thousands of them, and tuples are several times cheaper to create.)
    """

    job_id: str
    array_id: str
    tasks: tuple[int, ...]
    raw_id: str | None
    state: str
    exit_code: int | None
    signal: int | None
    reason: str
    name: str
    detail: str = ""


# ----------------------------------------------------------------------------- job ids
@attrs.frozen
class JobIdParts:
    """``"123_4"`` -> array ``"123"`` task 4; ``"123"`` -> array ``"123"`` task None."""

    array_id: str
    task: int | None


@functools.lru_cache(maxsize=1 << 17)
def split_job_id(job_id: str) -> JobIdParts | None:
    """The parts of a batchkit/Slurm job id, or None if it is not one (``"123_[4-5]"`` is not)."""
    match = _JOB_ID_RE.match(job_id.strip())
    if match is None or (match.group(2) or "").startswith("["):
        return None
    task = match.group(2)
    return JobIdParts(match.group(1), None if task is None else int(task))


def expand_task_ranges(text: str, limit: int = 10_000_000) -> tuple[int, ...]:
    """``"5-9,12"``, ``"[5-999%4]"`` or ``"0-15:4"`` -> the task ids; ``()`` if unreadable.

    The ``%N`` throttle suffix is ignored. ``limit`` guards against absurd ranges in garbled
    output (a range larger than that reads as unreadable).
    """
    body = text.strip()
    if body.startswith("[") and body.endswith("]"):
        body = body[1:-1]
    body = body.split("%", 1)[0]
    if not body:
        return ()
    out: list[int] = []
    for part in body.split(","):
        match = _RANGE_RE.match(part.strip())
        if match is None:
            return ()
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        step = int(match.group(3)) if match.group(3) is not None else 1
        if last < first or step < 1 or (last - first) // step + len(out) > limit:
            return ()
        out.extend(range(first, last + 1, step))
    return tuple(out)


def format_task_ranges(tasks: Iterable[int]) -> str:
    """Compact range text for ``--array``/``scancel``: ``[0,1,2,5,7,8]`` -> ``"0-2,5,7-8"``."""
    ordered = sorted(set(tasks))
    if ordered and ordered[-1] - ordered[0] + 1 == len(ordered):  # the usual case: one range
        return str(ordered[0]) if len(ordered) == 1 else f"{ordered[0]}-{ordered[-1]}"
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ",".join(parts)


@functools.lru_cache(maxsize=1 << 17)
def _split_printed_id(text: str) -> tuple[str, tuple[int, ...]] | None:
    """``"123"`` -> ("123", ()), ``"123_4"`` -> ("123", (4,)), ``"123_[4-6]"`` -> ("123", (4, 5, 6))."""
    match = _JOB_ID_RE.match(text.strip())
    if match is None:
        return None
    task = match.group(2)
    if task is None:
        return match.group(1), ()
    tasks = expand_task_ranges(task) if task.startswith("[") else (int(task),)
    if not tasks:
        return None
    return match.group(1), tasks


# ----------------------------------------------------------------------------- states and exit codes
@functools.lru_cache(maxsize=4096)
def normalise_state(text: str) -> tuple[str, str]:
    """``"CANCELLED by 1000"`` -> ("CANCELLED", "cancelled by uid 1000"); ``"CD"`` -> ("COMPLETED", "")."""
    words = text.strip().split()
    if not words:
        return "", ""
    state = words[0].rstrip("+").upper()
    state = COMPACT_STATES.get(state, state)
    extra = ""
    if state == "CANCELLED" and len(words) >= 3 and words[1] == "by":
        extra = f"cancelled by uid {words[2]}"
    return state, extra


@functools.lru_cache(maxsize=4096)
def parse_exit_code(text: str) -> tuple[int | None, int | None]:
    """sacct/scontrol ``ExitCode`` ``"3:0"`` -> (3, None); ``"0:9"`` -> (None, 9); junk -> (None, None)."""
    code, sep, sig = text.strip().partition(":")
    try:
        exit_code = int(code)
        signal = int(sig) if sep else 0
    except ValueError:
        return None, None
    if signal:
        return None, signal
    return exit_code, None


@functools.lru_cache(maxsize=4096)
def parse_wait_status(text: str) -> tuple[int | None, int | None]:
    """squeue ``exit_code`` (a raw wait status: ``768`` is exit 3, ``9`` is signal 9)."""
    try:
        status = int(text.strip())
    except ValueError:
        return None, None
    if status < 0:
        return None, None
    if status & 0x7F:
        return None, status & 0x7F
    return (status >> 8) & 0xFF, None


def record_to_info(job_id: str, record: SlurmRecord) -> JobInfo:
    """The batchkit view of one Slurm record, reported under ``job_id``.

    The exit code is reported for jobs that ended (a signal N as 128+N, as the wrapper does);
    the reason combines why the state is what it is (walltime, signal, exit code, who
    cancelled) with Slurm's own reason word (``JobHeldUser``, ``TimeLimit``, ...).
    """
    status, exit_code, reason = _interpret(record.state, record.exit_code, record.signal, record.reason, record.detail)
    return JobInfo(job_id, status, exit_code, reason, record.state or None)


@functools.lru_cache(maxsize=4096)
def _interpret(
    state: str, code: int | None, signal: int | None, slurm_reason: str, detail: str
) -> tuple[JobStatus, int | None, str | None]:
    """(status, exit code, reason) of a record; cached: thousands of tasks share a few answers."""
    status = STATE_TABLE.get(state, JobStatus.UNKNOWN)
    ended = status.is_final
    exit_code = code if ended else None
    if ended and signal:
        exit_code = 128 + signal
    if status is JobStatus.FINISHED and exit_code is None:
        exit_code = 0
    reasons: list[str] = []
    if state in STATE_REASONS:
        reasons.append(STATE_REASONS[state])
    if status is JobStatus.CANCELLED:
        reasons.append(detail or "cancelled")
    elif status is JobStatus.FAILED and signal:
        reasons.append(f"killed by signal {signal}")
    elif status is JobStatus.FAILED and state == "FAILED":
        reasons.append(f"exit code {exit_code}" if exit_code else "failed (Slurm state FAILED)")
    if state not in STATE_TABLE:
        reasons.append(f"unknown Slurm state {state!r}" if state else "no Slurm state")
    slurm_reason = slurm_reason.strip()
    if slurm_reason not in _EMPTY_REASONS and status is not JobStatus.FINISHED:
        reasons.append(slurm_reason)
    return status, exit_code, "; ".join(dict.fromkeys(reasons)) or None


# ----------------------------------------------------------------------------- sacct
def parse_sacct(text: str, fields: Sequence[str]) -> list[SlurmRecord]:
    """Parse ``sacct -X -P -n -o <fields>`` (``|``-separated, no header).

    ``fields`` must include JobID and State; JobIDRaw, ExitCode, Reason and JobName are used
    when present. The last field may itself contain ``|`` (put JobName last). Lines with
    fewer fields, step lines (``123.batch``) and unreadable ids are skipped.
    """
    names = list(fields)
    width = len(names)
    pick = _picker(names, ("JobID", "JobIDRaw", "State", "ExitCode", "Reason", "JobName"))
    records: list[SlurmRecord] = []
    for line in text.splitlines():
        values = line.split("|", width - 1)
        if len(values) != width:
            continue
        job_id, raw_id, state, exit_code, reason, name = (values[i] if i >= 0 else "" for i in pick)
        record = make_record(job_id, raw_id, state, parse_exit_code(exit_code), reason, name)
        if record is not None:
            records.append(record)
    return records


def _picker(names: Sequence[str], wanted: Sequence[str]) -> list[int]:
    """Positions of ``wanted`` in ``names`` (case-insensitive), -1 where absent."""
    lowered = [n.lower() for n in names]
    return [lowered.index(w.lower()) if w.lower() in lowered else -1 for w in wanted]


def make_record(
    printed_id: str,
    raw_id: str | None,
    state_text: str,
    exit_and_signal: tuple[int | None, int | None],
    reason: str,
    name: str,
) -> SlurmRecord | None:
    split = _split_printed_id(printed_id)
    if split is None:
        return None
    array_id, tasks = split
    state, extra = normalise_state(state_text)
    raw = (raw_id or "").strip()
    return SlurmRecord(
        job_id=printed_id.strip(),
        array_id=array_id,
        tasks=tasks,
        raw_id=raw if raw.isdigit() else None,
        state=state,
        exit_code=exit_and_signal[0],
        signal=exit_and_signal[1],
        reason=reason.strip(),
        name=name,
        detail=extra,
    )


def is_accounting_disabled(text: str) -> bool:
    """True for sacct's answer on a cluster without slurmdbd."""
    return "accounting storage is disabled" in text.lower()


# ----------------------------------------------------------------------------- squeue
def parse_squeue(text: str, fields: Sequence[str]) -> list[SlurmRecord]:
    """Parse ``squeue -h -O <f>:|,<f>:|,...`` (every field followed by ``|``, no header).

    Understood fields: JobArrayID (``123_4``, ``123_[5-9%2]`` or ``123``), JobID (raw),
    State (long or compact), Reason, exit_code (a raw wait status), Name (put it last: it
    may contain ``|``).
    """
    width = len(fields)
    pick = _picker(fields, ("JobArrayID", "JobID", "State", "StateCompact", "exit_code", "Reason", "Name"))
    records: list[SlurmRecord] = []
    for line in text.splitlines():
        values = (line[:-1] if line.endswith("|") else line).split("|", width - 1)
        if len(values) != width:
            continue
        array_job, raw_id, state, compact, exit_code, reason, name = (values[i] if i >= 0 else "" for i in pick)
        record = make_record(array_job or raw_id, raw_id, state or compact, parse_wait_status(exit_code), reason, name)
        if record is not None:
            records.append(record)
    return records


def is_invalid_job_id(text: str) -> bool:
    """squeue's answer when none of the requested ids is known (any more)."""
    return "invalid job id specified" in text.lower()


# ----------------------------------------------------------------------------- sbatch
def parse_sbatch_parsable(text: str) -> str | None:
    """``sbatch --parsable`` prints ``<id>`` or ``<id>;<cluster>``; None if there is no id."""
    for line in reversed(text.strip().splitlines()):
        job_id = line.strip().split(";", 1)[0].strip()
        if job_id.isdigit():
            return job_id
    return None


# ----------------------------------------------------------------------------- matching
def infos_for(job_ids: Iterable[str], records: Iterable[SlurmRecord], source: str) -> dict[str, JobInfo]:
    """Answer every id in ``job_ids`` from ``records`` (later records win); missing -> UNKNOWN.

    ``"123_4"`` matches the record of task 4 of array 123 (also inside a collapsed line);
    ``"1360"`` matches a record whose raw id is 1360 or a plain job 1360.
    """
    # A task's own line beats a collapsed "123_[5-9]" line whatever the order: sacct can list
    # a task that just started both ways for a moment (recorded in sacct-mixed.txt).
    by_task: dict[tuple[str, int], SlurmRecord] = {}
    by_raw: dict[str, SlurmRecord] = {}
    records = list(records)
    for record in records:
        if len(record.tasks) > 1:
            for task in record.tasks:
                by_task[(record.array_id, task)] = record
            by_raw[record.raw_id or record.array_id] = record
    for record in records:
        if len(record.tasks) == 1:
            by_task[(record.array_id, record.tasks[0])] = record
            if record.raw_id is not None:
                by_raw[record.raw_id] = record
        elif not record.tasks:  # a plain job: the printed id is its own id
            by_raw[record.array_id] = record
    result: dict[str, JobInfo] = {}
    for job_id in job_ids:
        parts = split_job_id(job_id)
        found: SlurmRecord | None = None
        if parts is not None and parts.task is not None:
            found = by_task.get((parts.array_id, parts.task))
            master = by_raw.get(parts.array_id)
            if found is None and master is not None and not master.tasks and master.state in _MASTER_STATES:
                # A held single-task array cancelled before it started is printed as a plain
                # job ("581|581|CANCELLED by 0"). Only a pending/cancelled plain record may
                # stand for tasks: for a few seconds after sbatch, sacct prints a new array as
                # "286|286|FAILED|3:0|None|allocation" -- ONE task's record (the last task
                # reuses the array id), not the state of them all.
                found = master
        elif parts is not None:
            found = by_raw.get(parts.array_id)
        if found is None:
            why = "not a Slurm job id" if parts is None else f"not known to Slurm ({source})"
            result[job_id] = JobInfo(job_id, JobStatus.UNKNOWN, None, why, None)
        else:
            result[job_id] = record_to_info(job_id, found)
    return result


def ids_to_query(job_ids: Iterable[str]) -> list[str]:
    """The ids to pass to ``sacct -j``/``squeue -j`` to learn about ``job_ids``.

    An array task is asked for through its array (``123``): Slurm lists not-yet-started
    tasks only under the array id, collapsed. Plain/raw ids are passed as they are.
    Unreadable ids are left out (they are answered UNKNOWN).
    """
    out: dict[str, None] = {}
    for job_id in job_ids:
        parts = split_job_id(job_id)
        if parts is not None:
            out[parts.array_id] = None
    return sorted(out, key=int)
