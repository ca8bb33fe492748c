"""Reading what HTCondor prints: pure functions, tested against recorded outputs.

* ``condor_submit -terse`` prints one ``<cluster>.<first> - <cluster>.<last>`` line per cluster
  (format ``%d.%d - %d.%d`` in src/condor_submit.V6/submit.cpp); errors are ``ERROR: ...`` lines.
* ``condor_q -json`` / ``condor_history -json`` print a JSON array of job ads (nothing at all
  when no job matches). Results are keyed by ``ClusterId.ProcId`` from the ads themselves,
  never by position.
* Job states (``JobStatus``): 1 idle, 2 running, 3 removed, 4 completed, 5 held, 6 transferring
  output, 7 suspended (0 "unexpanded" in old releases). Anything else is UNKNOWN.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from batchkit.backends.htcondor_commands import JobId
from batchkit.backends.htcondor_language import ROW_ATTRIBUTE
from batchkit.errors import ParseError
from batchkit.jobfiles import WRAPPER_EXIT_CODES
from batchkit.model import JobInfo, JobStatus

JobAd = Mapping[str, Any]

_TERSE_RE = re.compile(r"^\s*(\d+)\.(\d+)\s*-\s*(\d+)\.(\d+)\s*$")

#: Failures of HTCondor tools that are worth retrying (the schedd is busy or unreachable).
TRANSIENT_PATTERNS = (
    "failed to fetch ads",
    "secman",
    "connection refused",
    "timed out",
    "timeout",
    "failed to connect",
    "can't connect",
    "cannot connect",
    "unable to connect",
    "connect to schedd",
    "temporarily unavailable",
    "try again",
    "errno 104",
)

#: JobStatus -> (batchkit status, native word). Completed jobs are refined by their exit code.
NATIVE_STATES: dict[int, tuple[JobStatus, str]] = {
    0: (JobStatus.PENDING, "unexpanded"),
    1: (JobStatus.PENDING, "idle"),
    2: (JobStatus.RUNNING, "running"),
    3: (JobStatus.CANCELLED, "removed"),
    4: (JobStatus.FINISHED, "completed"),
    5: (JobStatus.FAILED, "held"),
    6: (JobStatus.RUNNING, "transferring_output"),
    7: (JobStatus.RUNNING, "suspended"),
}


def parse_submit_terse(stdout: str) -> list[tuple[int, int, int]]:
    """``(cluster, first_proc, last_proc)`` for every id range ``condor_submit -terse`` printed.

    Other lines (warnings) are ignored; no range at all is a :class:`ParseError`.
    """
    ranges = []
    for line in stdout.splitlines():
        match = _TERSE_RE.match(line)
        if not match:
            continue
        c1, first, c2, last = (int(g) for g in match.groups())
        if c1 != c2 or last < first:
            raise ParseError(f"condor_submit printed an id range that spans clusters or runs backwards: {line!r}")
        ranges.append((c1, first, last))
    if not ranges:
        raise ParseError("condor_submit -terse printed no job id range", stdout)
    return ranges


def ids_from_ranges(ranges: Sequence[tuple[int, int, int]]) -> list[str]:
    """Job ids in submission order (= row order) from :func:`parse_submit_terse`'s ranges."""
    return [f"{cluster}.{proc}" for cluster, first, last in ranges for proc in range(first, last + 1)]


def submit_error_message(stdout: str, stderr: str) -> str:
    """The schedd's own words from a failed ``condor_submit``: its ``ERROR`` lines, else all output."""
    text = "\n".join(t for t in (stderr.strip(), stdout.strip()) if t)
    errors = [line.strip() for line in text.splitlines() if line.strip().upper().startswith("ERROR")]
    return "\n".join(errors) if errors else text


def is_transient(text: str) -> bool:
    """True if a tool's output says the schedd was busy or unreachable (worth a retry)."""
    low = text.lower()
    return any(p in low for p in TRANSIENT_PATTERNS)


def parse_ads_json(text: str) -> list[dict[str, Any]]:
    """The job ads of a ``condor_q -json`` / ``condor_history -json`` output.

    Empty output means no matching job. Concatenated arrays (one per schedd, as with
    ``-global``) are accepted. Anything that is not ads is a :class:`ParseError`.
    """
    text = text.strip()
    ads: list[dict[str, Any]] = []
    decoder = json.JSONDecoder()
    pos = 0
    while pos < len(text):
        try:
            value, end = decoder.raw_decode(text, pos)
        except ValueError as exc:
            raise ParseError(f"HTCondor printed something that is not JSON ({exc})", text) from None
        items = value if isinstance(value, list) else [value]
        for item in items:
            if not isinstance(item, dict):
                raise ParseError(f"expected job ads (JSON objects), got {item!r}", text)
            ads.append(item)
        pos = end
        while pos < len(text) and text[pos] in " \t\r\n,":
            pos += 1
    return ads


def ad_job_id(ad: JobAd) -> JobId | None:
    """The ad's ``ClusterId.ProcId`` (None if either is missing or not an integer)."""
    cluster, proc = ad.get("ClusterId"), ad.get("ProcId")
    if isinstance(cluster, bool) or isinstance(proc, bool) or not isinstance(cluster, int) or not isinstance(proc, int):
        return None
    return JobId(cluster, proc)


def ads_by_id(ads: Iterable[JobAd]) -> dict[str, JobAd]:
    """Ads keyed by ``"cluster.proc"`` (ads without ids are dropped)."""
    out: dict[str, JobAd] = {}
    for ad in ads:
        job = ad_job_id(ad)
        if job is not None:
            out[str(job)] = ad
    return out


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _text(value: Any) -> str:
    return value.strip() if isinstance(value, str) else ""


def exit_info(ad: JobAd) -> tuple[int | None, str | None]:
    """Exit code and reason of a completed job (``ExitBySignal``/``ExitSignal``, ``ExitCode``, ``ExitStatus``)."""
    if ad.get("ExitBySignal") is True:
        signal = _int(ad.get("ExitSignal"))
        return None, f"killed by signal {signal}" if signal is not None else "killed by a signal"
    code = _int(ad.get("ExitCode"))
    if code is None:
        code = _int(ad.get("ExitStatus"))
    if code is None or code == 0:
        return code, None
    return code, WRAPPER_EXIT_CODES.get(code, f"exit code {code}")


def _hold_reason(ad: JobAd) -> str:
    reason = _text(ad.get("HoldReason")) or "held"
    code, sub = _int(ad.get("HoldReasonCode")), _int(ad.get("HoldReasonSubCode"))
    if code is not None:
        reason += f" (HoldReasonCode {code}" + (f", subcode {sub})" if sub is not None else ")")
    return reason


def removed_by_policy(reason: str) -> bool:
    """True for removals by a policy expression (walltime, site limits) rather than by a user.

    HTCondor names the expression in ``RemoveReason`` ("The job attribute PeriodicRemove
    expression ... evaluated to TRUE", "The system macro SYSTEM_PERIODIC_REMOVE ...").
    """
    low = reason.lower()
    return "periodicremove" in low or "periodic_remove" in low


def info_from_ad(job_id: str, ad: JobAd) -> JobInfo:
    """Map one job ad to a :class:`JobInfo` (never raises; unknown states become UNKNOWN)."""
    status_code = _int(ad.get("JobStatus"))
    if status_code not in NATIVE_STATES:
        native = None if status_code is None else str(ad.get("JobStatus"))
        return JobInfo(job_id, JobStatus.UNKNOWN, None, f"unknown HTCondor JobStatus {ad.get('JobStatus')!r}", native)
    status, native = NATIVE_STATES[status_code]
    if status_code == 4:
        code, reason = exit_info(ad)
        if code is None and reason is None:  # let the wrapper's exit marker decide
            return JobInfo(job_id, JobStatus.UNKNOWN, None, "completed, but the ad has no exit code", native)
        failed = reason is not None
        return JobInfo(job_id, JobStatus.FAILED if failed else JobStatus.FINISHED, code, reason, native)
    if status_code == 5:
        return JobInfo(job_id, JobStatus.FAILED, None, _hold_reason(ad), native)
    if status_code == 3:
        reason = _text(ad.get("RemoveReason")) or "removed"
        if removed_by_policy(reason):
            return JobInfo(job_id, JobStatus.FAILED, None, f"removed by policy: {reason}", native)
        return JobInfo(job_id, JobStatus.CANCELLED, None, reason, native)
    return JobInfo(job_id, status, None, None, native)


def combine(
    job_ids: Sequence[str],
    queue_ads: Iterable[JobAd],
    history_ads: Iterable[JobAd] = (),
) -> dict[str, JobInfo]:
    """One :class:`JobInfo` per requested id from what ``condor_q`` and ``condor_history`` said.

    The queue wins over the history (a job may briefly be in both). An id in neither is
    UNKNOWN -- except a proc beyond every proc its cluster has materialized so far while the
    cluster is still queued: with ``max_materialize`` such a proc simply does not exist yet,
    so it is PENDING.
    """
    queued = ads_by_id(queue_ads)
    done = ads_by_id(history_ads)
    highest_seen: dict[int, int] = {}
    live_clusters: set[int] = set()
    for key, ad in (*queued.items(), *done.items()):
        job = ad_job_id(ad)
        assert job is not None
        highest_seen[job.cluster] = max(highest_seen.get(job.cluster, -1), job.proc)
        if key in queued:
            live_clusters.add(job.cluster)
    out: dict[str, JobInfo] = {}
    for job_id in job_ids:
        found = queued.get(job_id)
        if found is None:
            found = done.get(job_id)
        if found is not None:
            out[job_id] = info_from_ad(job_id, found)
            continue
        parts = job_id.split(".")
        if len(parts) == 2 and all(p.isdigit() for p in parts):
            cluster, proc = int(parts[0]), int(parts[1])
            if cluster in live_clusters and proc > highest_seen.get(cluster, -1):
                out[job_id] = JobInfo(job_id, JobStatus.PENDING, None, "not materialized yet", "unmaterialized")
                continue
        out[job_id] = JobInfo(job_id, JobStatus.UNKNOWN, None, "not in the queue or the history", None)
    return out


def rows_from_ads(ads: Iterable[JobAd]) -> dict[int, JobAd]:
    """Ads keyed by batch row (``BatchkitRow``); of two ads for one row the newer cluster wins."""
    out: dict[int, JobAd] = {}
    for ad in ads:
        row = _int(ad.get(ROW_ATTRIBUTE))
        job = ad_job_id(ad)
        if row is None or job is None:
            continue
        current = out.get(row)
        current_id = ad_job_id(current) if current is not None else None
        if current_id is None or job.cluster > current_id.cluster:
            out[row] = ad
    return out


def find_rows(queue_ads: Iterable[JobAd], history_ads: Iterable[JobAd], rows: int | None) -> dict[int, JobInfo]:
    """What ``find`` reports for a batch: a :class:`JobInfo` per row HTCondor knows, keyed by row.

    Rows come from the ``BatchkitRow`` attribute (never from list positions). A row in the
    queue wins over the history unless the history holds a newer cluster for it. If the newest
    cluster is still queued, rows beyond the highest row it materialized so far (with
    ``max_materialize``) are PENDING under the id they will get; ``rows`` is the batch size.
    """
    queued = rows_from_ads(queue_ads)
    found = dict(rows_from_ads(history_ads))
    for row, ad in queued.items():
        old_id, new_id = ad_job_id(found[row]) if row in found else None, ad_job_id(ad)
        if old_id is None or (new_id is not None and new_id.cluster >= old_id.cluster):
            found[row] = ad
    result = {row: info_from_ad(str(ad_job_id(ad)), ad) for row, ad in found.items()}
    if rows is None or not queued:
        return result
    newest = max(queued.values(), key=lambda ad: ad["ClusterId"])
    cluster = newest["ClusterId"]
    offset = int(newest["ProcId"]) - int(newest[ROW_ATTRIBUTE])
    highest = max((row for row, ad in found.items() if ad["ClusterId"] == cluster), default=-1)
    for row in range(highest + 1, rows):
        job_id = f"{cluster}.{row + offset}"
        result[row] = JobInfo(job_id, JobStatus.PENDING, None, "not materialized yet", "unmaterialized")
    return result


def spooled_output_waiting(ad: JobAd) -> bool:
    """A completed spooled job whose output has not been fetched (``condor_transfer_data``)."""
    stage_in = _int(ad.get("StageInFinish"))
    stage_out = _int(ad.get("StageOutFinish"))
    return _int(ad.get("JobStatus")) == 4 and stage_in is not None and stage_in > 0 and not stage_out
