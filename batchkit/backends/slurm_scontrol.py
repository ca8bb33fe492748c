"""Read ``scontrol show job -o`` and ``scontrol show config`` (pure; see slurm_parse for the rest).

``show config`` is asked once per manager: it tells MaxArraySize (how to split arrays),
MinJobAge (how long squeue remembers finished jobs) and whether the cluster has accounting.
``show job`` is not needed per poll (squeue has the exit code); its parser serves tests and
debugging and understands the same collapsed array records.
"""

from __future__ import annotations

import re

import attrs

from batchkit.backends.slurm_parse import SlurmRecord, make_record, parse_exit_code


def parse_scontrol_records(text: str) -> list[dict[str, str]]:
    """``scontrol show job -o`` / ``show config`` style text -> one dict per record.

    With ``-o`` every record is one line of ``Key=Value`` pairs; values may contain spaces
    (``Command=/path/run.sh 300``), so a word without ``=`` continues the previous value.
    Without ``-o`` records are separated by blank lines.
    """
    records: list[dict[str, str]] = []
    current: dict[str, str] = {}
    last_key: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if current:
                records.append(current)
                current, last_key = {}, None
            continue
        if current and not line.startswith((" ", "\t")) and line.lstrip().startswith("JobId="):
            records.append(current)
            current, last_key = {}, None
        for word in line.split():
            key, eq, value = word.partition("=")
            if eq and key:
                current[key] = value
                last_key = key
            elif last_key is not None:
                current[last_key] += " " + word
    if current:
        records.append(current)
    return records


def parse_scontrol_jobs(text: str) -> list[SlurmRecord]:
    """``scontrol show job -o`` -> records (collapsed pending array tasks included)."""
    records: list[SlurmRecord] = []
    for fields in parse_scontrol_records(text):
        job_id = fields.get("JobId", "")
        array_id = fields.get("ArrayJobId")
        task = fields.get("ArrayTaskId")
        printed = job_id
        if array_id and task:
            printed = f"{array_id}_{task}" if task.isdigit() else f"{array_id}_[{task}]"
        record = make_record(
            printed,
            job_id,
            fields.get("JobState", ""),
            parse_exit_code(fields.get("ExitCode", "")),
            fields.get("Reason", ""),
            fields.get("JobName", ""),
        )
        if record is not None:
            records.append(record)
    return records


@attrs.frozen
class SlurmClusterConfig:
    """What batchkit needs to know about a cluster, from ``scontrol show config``."""

    max_array_size: int = 1001
    min_job_age: int = 300
    accounting: bool = True
    version: str = ""
    cluster: str = ""


def parse_scontrol_config(text: str) -> SlurmClusterConfig:
    """Read MaxArraySize, MinJobAge, AccountingStorageType, SLURM_VERSION and ClusterName.

    Missing or unreadable values keep Slurm's documented defaults (MaxArraySize 1001,
    MinJobAge 300 s, accounting assumed on).
    """
    values: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            values[key.strip()] = value.strip()
    default = SlurmClusterConfig()
    storage = values.get("AccountingStorageType", "")
    return SlurmClusterConfig(
        max_array_size=_leading_int(values.get("MaxArraySize"), default.max_array_size),
        min_job_age=_leading_int(values.get("MinJobAge"), default.min_job_age),
        accounting=not storage.endswith("/none") if storage else default.accounting,
        version=values.get("SLURM_VERSION", ""),
        cluster=values.get("ClusterName", ""),
    )


def _leading_int(text: str | None, default: int) -> int:
    match = re.match(r"\s*(\d+)", text or "")
    return int(match.group(1)) if match else default
