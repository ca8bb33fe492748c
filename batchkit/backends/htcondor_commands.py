"""HTCondor command lines, built as argv lists by pure functions.

Jobs are selected with ClassAd constraints over ``ClusterId``/``ProcId`` *ranges* (or the
batch's tag), never with one argument per job id: 10,000 contiguous procs of a cluster are
one clause, ``(ClusterId == 42 && (ProcId >= 0 && ProcId <= 9999))``; scattered procs go into
``member(ProcId, {...})`` lists, and alternatives are combined as a balanced ``||`` tree (the
ClassAd evaluator fails on flat chains of a few hundred). Constraints that still grow long are
split so no single argument comes near Linux's 128 KiB limit per argument; callers run one
command per piece (normally exactly one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import attrs

from batchkit.backends.htcondor_language import ROW_ATTRIBUTE, TAG_ATTRIBUTE, check_tag

#: Attributes every status query asks for (``-attributes``): enough to map state and exit.
QUERY_ATTRIBUTES = (
    "ClusterId",
    "ProcId",
    "JobStatus",
    "ExitCode",
    "ExitBySignal",
    "ExitSignal",
    "ExitStatus",
    "HoldReason",
    "HoldReasonCode",
    "HoldReasonSubCode",
    "RemoveReason",
    "EnteredCurrentStatus",
    "StageInFinish",
    "StageOutFinish",
    TAG_ATTRIBUTE,
    ROW_ATTRIBUTE,
)

#: Longest constraint put into one argument (Linux refuses single arguments over 128 KiB).
MAX_CONSTRAINT_CHARS = 60_000


@attrs.frozen(order=True)
class JobId:
    """``cluster.proc`` -- HTCondor's job id, the backend's id string."""

    cluster: int
    proc: int

    def __str__(self) -> str:
        return f"{self.cluster}.{self.proc}"


def parse_job_id(text: str) -> JobId | None:
    """``"42.7"`` -> ``JobId(42, 7)``; anything else (e.g. ``"unknown:tag:3"``) -> None."""
    cluster, dot, proc = str(text).partition(".")
    if not dot or not cluster.isdigit() or not proc.isdigit() or not cluster.isascii() or not proc.isascii():
        return None
    return JobId(int(cluster), int(proc))


def proc_ranges(procs: Iterable[int]) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges: ``[0, 1, 2, 5]`` -> ``[(0, 2), (5, 5)]``."""
    out: list[tuple[int, int]] = []
    for p in sorted(set(procs)):
        if out and p == out[-1][1] + 1:
            out[-1] = (out[-1][0], p)
        else:
            out.append((p, p))
    return out


#: Ids of one cluster that are not part of a run go into ``member(ProcId, {...})`` lists of this size.
MEMBER_LIST_SIZE = 2000
#: Shortest run of consecutive procs written as a range rather than listed.
MIN_RUN = 3


def disjunction(terms: Sequence[str]) -> str:
    """``terms`` joined by ``||`` as a *balanced* tree.

    HTCondor's ClassAd evaluator gives up on a flat chain of a few hundred ``||`` (the
    expression nests as deep as it is long); a balanced tree of 50,000 terms is only 16 deep.
    """
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({disjunction(terms[:half])} || {disjunction(terms[half:])})"


def _proc_terms(procs: Iterable[int]) -> list[str]:
    """Runs as ``ProcId >= a && ProcId <= b``, the rest as ``member(ProcId, {...})`` lists."""
    terms: list[str] = []
    single: list[int] = []
    for lo, hi in proc_ranges(procs):
        if hi - lo + 1 >= MIN_RUN:
            terms.append(f"(ProcId >= {lo} && ProcId <= {hi})")
        else:
            single.extend(range(lo, hi + 1))
    for start in range(0, len(single), MEMBER_LIST_SIZE):
        chunk = single[start : start + MEMBER_LIST_SIZE]
        terms.append(
            f"ProcId == {chunk[0]}" if len(chunk) == 1 else f"member(ProcId, {{{', '.join(map(str, chunk))}}})"
        )
    return terms


def id_constraints(ids: Iterable[JobId], max_chars: int = MAX_CONSTRAINT_CHARS) -> list[str]:
    """Constraints that together select exactly ``ids``, each at most about ``max_chars`` long.

    One string for any realistic batch (a cluster's contiguous procs are one range); more
    only when ids are so scattered that one would not fit into a command-line argument.
    """
    by_cluster: dict[int, list[int]] = {}
    for job in ids:
        by_cluster.setdefault(job.cluster, []).append(job.proc)
    pieces: list[dict[int, list[str]]] = [{}]
    length = 0
    for cluster in sorted(by_cluster):
        for term in _proc_terms(by_cluster[cluster]):
            if length and length + len(term) > max_chars - 100:
                pieces.append({})
                length = 0
            pieces[-1].setdefault(cluster, []).append(term)
            length += len(term) + 40
    return [
        disjunction([f"(ClusterId == {c} && {disjunction(terms)})" for c, terms in piece.items()])
        for piece in pieces
        if piece
    ]


def tag_constraint(tag: str) -> str:
    """All procs of the batch tagged ``tag``."""
    return f'{TAG_ATTRIBUTE} == "{check_tag(tag)}"'


def _target(pool: str | None, schedd: str | None) -> list[str]:
    argv: list[str] = []
    if pool:
        argv += ["-pool", pool]
    if schedd:
        argv += ["-name", schedd]
    return argv


def submit_argv(submit_file: str, pool: str | None = None, schedd: str | None = None, spool: bool = False) -> list[str]:
    """``condor_submit -terse`` of one description (``-spool`` copies inputs to the schedd)."""
    return ["condor_submit", "-terse", *_target(pool, schedd), *(["-spool"] if spool else []), submit_file]


def queue_argv(constraint: str, pool: str | None = None, schedd: str | None = None) -> list[str]:
    """``condor_q`` of the jobs matching ``constraint``, as JSON with :data:`QUERY_ATTRIBUTES`."""
    return [
        "condor_q",
        *_target(pool, schedd),
        "-constraint",
        constraint,
        "-json",
        "-attributes",
        ",".join(QUERY_ATTRIBUTES),
    ]


def history_argv(constraint: str, limit: int | None, pool: str | None = None, schedd: str | None = None) -> list[str]:
    """``condor_history`` of jobs that left the queue; ``-limit`` stops the scan early."""
    argv = ["condor_history", *_target(pool, schedd), "-constraint", constraint]
    if limit is not None:
        argv += ["-limit", str(limit)]
    return [*argv, "-json", "-attributes", ",".join(QUERY_ATTRIBUTES)]


def remove_argv(constraint: str, pool: str | None = None, schedd: str | None = None) -> list[str]:
    """``condor_rm`` of the jobs matching ``constraint``."""
    return ["condor_rm", *_target(pool, schedd), "-constraint", constraint]


def transfer_data_argv(constraint: str, pool: str | None = None, schedd: str | None = None) -> list[str]:
    """``condor_transfer_data``: fetch the output of spooled jobs matching ``constraint``."""
    return ["condor_transfer_data", *_target(pool, schedd), "-constraint", constraint]


#: Jobs still queued, running or held (what ``cancel`` may remove).
NOT_ENDED = "JobStatus =!= 3 && JobStatus =!= 4"
#: Spooled jobs that completed and whose output was not fetched yet.
SPOOLED_OUTPUT_WAITING = "JobStatus == 4 && StageInFinish > 0 && (StageOutFinish =?= undefined || StageOutFinish == 0)"
#: Leftovers ``cleanup`` removes: held jobs and completed spooled jobs.
LEFTOVERS = "JobStatus == 5 || (JobStatus == 4 && StageInFinish > 0)"


def restrict(constraint: str, condition: str) -> str:
    """``(constraint) && (condition)``."""
    return f"({constraint}) && ({condition})"
