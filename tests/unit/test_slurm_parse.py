"""Slurm parsers as pure functions, on outputs recorded from the real test Slurm (see SOURCES.md)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from batchkit.backends.slurm_commands import SACCT_FIELDS, SQUEUE_FIELDS, TRANSIENT_ERRORS
from batchkit.backends.slurm_parse import (
    COMPACT_STATES,
    STATE_TABLE,
    SlurmRecord,
    expand_task_ranges,
    format_task_ranges,
    ids_to_query,
    infos_for,
    is_accounting_disabled,
    is_invalid_job_id,
    normalise_state,
    parse_exit_code,
    parse_sacct,
    parse_sbatch_parsable,
    parse_squeue,
    parse_wait_status,
    record_to_info,
    split_job_id,
)
from batchkit.backends.slurm_scontrol import parse_scontrol_config, parse_scontrol_jobs, parse_scontrol_records
from batchkit.model import JobStatus

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "slurm"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ----------------------------------------------------------------------------- sbatch
def test_sbatch_parsable_outputs() -> None:
    assert parse_sbatch_parsable(fixture("sbatch-parsable-array.txt")) == "37"
    assert parse_sbatch_parsable(fixture("sbatch-parsable-single.txt")) == "30"
    assert parse_sbatch_parsable(fixture("sbatch-parsable-cluster.txt")) == "81"


@pytest.mark.parametrize("name", ["sbatch-invalid-partition.txt", "sbatch-too-much-memory.txt"])
def test_sbatch_errors_have_no_id(name: str) -> None:
    assert parse_sbatch_parsable(fixture(name)) is None


# ----------------------------------------------------------------------------- sacct
def sacct_mixed() -> dict[str, tuple[JobStatus, int | None, str | None, str | None]]:
    ids = ["29", "30", "31", "32", "33", "34", "35_0", "35_6", "35_10", "35_20", "35_21", "36_0", "36_999"]
    ids += ["37_4", "37", "42", "38_2", "99", "garbage", "35_[8-20]"]
    infos = infos_for(ids, parse_sacct(fixture("sacct-mixed.txt"), SACCT_FIELDS), "sacct")
    assert list(infos) == ids
    return {k: (v.status, v.exit_code, v.reason, v.native_state) for k, v in infos.items()}


def test_sacct_final_states_and_exit_codes() -> None:
    got = sacct_mixed()
    assert got["29"] == (JobStatus.FINISHED, 0, None, "COMPLETED")
    assert got["30"] == (JobStatus.FAILED, 3, "exit code 3", "FAILED")
    status, code, reason, _ = got["31"]
    assert (status, code) == (JobStatus.FAILED, 137) and reason == "killed by signal 9"
    status, _, reason, native = got["32"]
    assert status is JobStatus.FAILED and native == "TIMEOUT" and reason is not None and "walltime" in reason
    assert got["33"][0] is JobStatus.CANCELLED and got["33"][2] == "cancelled by uid 0; JobHeldUser"
    assert got["34"][:3] == (JobStatus.CANCELLED, 0, "cancelled by uid 0")
    assert got["38_2"][:2] == (JobStatus.FAILED, 3)


def test_sacct_array_tasks_collapsed_and_raw_ids() -> None:
    got = sacct_mixed()
    assert got["35_0"][0] is JobStatus.FINISHED
    # listed both as its own RUNNING line and inside the stale collapsed "35_[6-20%2]" line
    assert got["35_6"][0] is JobStatus.RUNNING
    assert got["35_10"][:3] == (JobStatus.PENDING, None, "JobArrayTaskLimit")
    assert got["35_20"][0] is JobStatus.PENDING
    assert got["35_21"][0] is JobStatus.UNKNOWN  # beyond the array
    assert got["36_0"][:3] == (JobStatus.PENDING, None, "JobHeldUser")
    assert got["36_999"][0] is JobStatus.PENDING
    assert got["37_4"][0] is JobStatus.FINISHED
    assert got["37"][0] is JobStatus.FINISHED  # raw id of the last task = the array id
    assert got["42"][0] is JobStatus.FINISHED  # raw id of 37_0
    assert got["99"] == (JobStatus.UNKNOWN, None, "not known to Slurm (sacct)", None)
    assert got["garbage"][0] is JobStatus.UNKNOWN
    assert got["35_[8-20]"][0] is JobStatus.UNKNOWN  # a collapsed id is not a job id


def test_sacct_arrays_cancelled_while_pending() -> None:
    records = parse_sacct(fixture("sacct-arrays-cancelled-pending.txt"), SACCT_FIELDS)
    infos = infos_for(["62_0", "62_5", "62_1", "63_0", "63_3", "63_4", "63_5"], records, "sacct")
    assert infos["62_0"].status is JobStatus.CANCELLED and infos["62_5"].status is JobStatus.CANCELLED
    assert infos["62_1"].status is JobStatus.UNKNOWN  # cancelled on its own while pending: gone
    assert [infos[f"63_{t}"].status for t in range(6) if t != 1 and t != 2] == [
        JobStatus.FINISHED,
        JobStatus.FINISHED,
        JobStatus.CANCELLED,
        JobStatus.CANCELLED,
    ]


def test_sacct_prints_a_new_array_as_one_plain_job_for_a_moment() -> None:
    """Right after sbatch (and after scancel of a pending array) the array shows as a plain job.

    That line is one task's record (the last task reuses the array id), so the tasks must stay
    UNKNOWN (the supervisor then reads the wrapper's exit markers) -- not all inherit its state.
    """
    lagging = parse_sacct(fixture("sacct-array-just-submitted.txt"), SACCT_FIELDS)
    infos = infos_for(["286_0", "286_1", "286_3", "286"], lagging, "sacct")
    assert [infos[i].status for i in ("286_0", "286_1", "286_3")] == [JobStatus.UNKNOWN] * 3
    assert infos["286"].status is JobStatus.FAILED  # as a raw id it is that one record
    settled = infos_for(["286_0", "286_1", "286_3"], parse_sacct(fixture("sacct-array-settled.txt"), SACCT_FIELDS), "")
    assert [(i.status, i.exit_code) for i in settled.values()] == [
        (JobStatus.FINISHED, 0),
        (JobStatus.FAILED, 3),
        (JobStatus.FAILED, 3),
    ]
    cancelled = parse_sacct(fixture("sacct-array-cancelled-pending-lag.txt"), ("JobID", "JobIDRaw", "State"))
    infos = infos_for(["56_0", "56"], cancelled, "sacct")
    assert (infos["56_0"].status, infos["56"].status) == (JobStatus.CANCELLED, JobStatus.CANCELLED)


def test_held_single_task_array_cancelled_shows_as_a_plain_job() -> None:
    held = parse_squeue(fixture("squeue-single-task-array-held.txt"), SQUEUE_FIELDS)
    assert infos_for(["1000182_0"], held, "squeue")["1000182_0"].status is JobStatus.PENDING
    for records in (
        parse_squeue(fixture("squeue-single-task-array-cancelled.txt"), SQUEUE_FIELDS),
        parse_sacct(fixture("sacct-single-task-array-cancelled.txt"), SACCT_FIELDS),
    ):
        (record,) = records
        assert record.tasks == ()
        (info,) = infos_for([f"{record.array_id}_0"], records, "x").values()
        assert info.status is JobStatus.CANCELLED


def test_accounting_disabled_and_slurmdbd_down() -> None:
    assert is_accounting_disabled(fixture("sacct-accounting-disabled.txt"))
    assert not is_accounting_disabled(fixture("sacct-mixed.txt"))
    down = fixture("sacct-slurmdbd-down.txt")
    assert not is_accounting_disabled(down)
    assert parse_sacct(down, SACCT_FIELDS) == []
    assert any(p.lower() in down.lower() for p in TRANSIENT_ERRORS)


# ----------------------------------------------------------------------------- squeue
def test_squeue_wait_status_and_states() -> None:
    ids = ["29", "30", "31", "32", "33", "34", "35_5", "35_6", "35_8", "35_20", "36_7", "37_4", "38_3", "35_0"]
    infos = infos_for(ids, parse_squeue(fixture("squeue-mixed.txt"), SQUEUE_FIELDS), "squeue")
    got = {k: (v.status, v.exit_code, v.reason) for k, v in infos.items()}
    assert got["29"] == (JobStatus.FINISHED, 0, None)
    assert got["30"] == (JobStatus.FAILED, 3, "exit code 3")
    assert got["31"] == (JobStatus.FAILED, 137, "killed by signal 9; JobLaunchFailure")
    assert got["32"][0] is JobStatus.FAILED and got["32"][1] == 143
    assert "walltime" in str(got["32"][2]) and "TimeLimit" in str(got["32"][2])
    assert got["33"][0] is JobStatus.CANCELLED and got["34"][:2] == (JobStatus.CANCELLED, 143)
    assert got["35_5"][0] is JobStatus.FINISHED and got["35_6"][0] is JobStatus.RUNNING
    assert got["35_8"] == (JobStatus.PENDING, None, "JobArrayTaskLimit")
    assert got["35_20"][0] is JobStatus.PENDING and got["36_7"][0] is JobStatus.PENDING
    assert got["37_4"][0] is JobStatus.FINISHED and got["38_3"][:2] == (JobStatus.FAILED, 3)


def test_squeue_without_accounting() -> None:
    records = parse_squeue(fixture("squeue-noacct.txt"), SQUEUE_FIELDS)
    infos = infos_for(["2", "3", "4", "5_0", "5_2", "5_3", "5_9", "5_10"], records, "squeue")
    assert [i.status for i in infos.values()] == [
        JobStatus.FINISHED,
        JobStatus.FAILED,
        JobStatus.CANCELLED,
        JobStatus.RUNNING,
        JobStatus.RUNNING,
        JobStatus.PENDING,
        JobStatus.PENDING,
        JobStatus.UNKNOWN,
    ]
    assert infos["3"].exit_code == 3


def test_squeue_cancelled_pending_tasks_and_arrays() -> None:
    pending = parse_squeue(fixture("squeue-pending-tasks-cancelled.txt"), SQUEUE_FIELDS)
    assert [r.tasks for r in pending] == [(0, 2, 4, 5)]
    records = parse_squeue(fixture("squeue-arrays-cancelled-pending.txt"), SQUEUE_FIELDS)
    infos = infos_for(["62_0", "62_1", "63_3", "63_4"], records, "squeue")
    assert [i.status for i in infos.values()] == [
        JobStatus.CANCELLED,
        JobStatus.UNKNOWN,
        JobStatus.FINISHED,
        JobStatus.CANCELLED,
    ]


def test_squeue_errors() -> None:
    assert is_invalid_job_id(fixture("squeue-invalid-job-id.txt"))
    assert parse_squeue(fixture("squeue-invalid-job-id.txt"), SQUEUE_FIELDS) == []
    down = fixture("squeue-controller-down.txt")
    assert not is_invalid_job_id(down)
    assert any(p.lower() in down.lower() for p in TRANSIENT_ERRORS)
    assert any(p.lower() in fixture("scancel-controller-down.txt").lower() for p in TRANSIENT_ERRORS)


# ----------------------------------------------------------------------------- scontrol
def test_scontrol_show_job_array() -> None:
    text = fixture("scontrol-show-job-array.txt")
    records = parse_scontrol_records(text)
    assert len(records) == 9
    assert records[0]["Command"] == "/tmp/bk-slurm-record.54efFf/sleep.sh 25"  # value with a space
    assert records[0]["ArrayTaskId"] == "8-20%2" and records[0]["NumCPUs"] == "1"
    infos = infos_for(["35_8", "35_20", "35_7", "35_0", "54"], parse_scontrol_jobs(text), "scontrol")
    assert [i.status for i in infos.values()] == [
        JobStatus.PENDING,
        JobStatus.PENDING,
        JobStatus.RUNNING,
        JobStatus.FINISHED,
        JobStatus.RUNNING,
    ]


def test_scontrol_show_job_failed() -> None:
    (record,) = parse_scontrol_jobs(fixture("scontrol-show-job-failed.txt"))
    info = record_to_info("30", record)
    assert (info.status, info.exit_code, info.reason) == (JobStatus.FAILED, 3, "exit code 3")


def test_scontrol_show_config() -> None:
    config = parse_scontrol_config(fixture("scontrol-show-config.txt"))
    assert (config.max_array_size, config.min_job_age, config.accounting) == (100001, 3600, True)
    assert config.version == "22.05.8" and config.cluster == "batchkit"
    noacct = parse_scontrol_config(fixture("scontrol-show-config-noacct.txt"))
    assert noacct.accounting is False and noacct.cluster == "bknoacct"
    assert parse_scontrol_config("") == parse_scontrol_config("garbage\n= =\nMaxArraySize = lots")


# ----------------------------------------------------------------------------- garbled output
FIXTURE_PARSERS = [
    ("sacct-mixed.txt", lambda t: parse_sacct(t, SACCT_FIELDS)),
    ("squeue-mixed.txt", lambda t: parse_squeue(t, SQUEUE_FIELDS)),
    ("squeue-noacct.txt", lambda t: parse_squeue(t, SQUEUE_FIELDS)),
    ("scontrol-show-job-array.txt", parse_scontrol_jobs),
]


@pytest.mark.parametrize(("name", "parse"), FIXTURE_PARSERS)
def test_truncated_output_never_raises(name: str, parse: object) -> None:
    """Cut the real output anywhere: parsing and answering never raise; every id is answered."""
    assert callable(parse)
    text = fixture(name)
    ids = ["29", "35_3", "35_15", "5_4", "x"]
    for cut in range(0, len(text), 7):
        records = parse(text[:cut])
        infos = infos_for(ids, records, "test")
        assert list(infos) == ids


def test_mangled_lines_are_skipped_or_unknown() -> None:
    lines = fixture("sacct-mixed.txt").splitlines()
    mangled = [
        lines[0].replace("COMPLETED", "TELEPORTED"),  # a state nobody knows
        lines[1].replace("|", "", 1),  # one field short
        lines[2].replace("0:9", "x:y"),  # unreadable exit code
        "|||||",
        "\x00\xff garbage",
        lines[3] + "|extra|fields",  # goes into the last field (the job name)
        lines[12].replace("35_2", "35_"),
    ]
    records = parse_sacct("\n".join(mangled), SACCT_FIELDS)
    infos = infos_for(["29", "30", "31", "32", "35_2"], records, "sacct")
    assert infos["29"].status is JobStatus.UNKNOWN and infos["29"].native_state == "TELEPORTED"
    assert infos["29"].reason == "unknown Slurm state 'TELEPORTED'"
    assert infos["30"].status is JobStatus.UNKNOWN and infos["30"].native_state is None  # line skipped
    assert infos["31"].status is JobStatus.FAILED and infos["31"].exit_code is None
    assert infos["32"].native_state == "TIMEOUT"
    assert infos["35_2"].status is JobStatus.UNKNOWN


# ----------------------------------------------------------------------------- states, ids, ranges
ISSUE_STATES = {
    "PENDING": JobStatus.PENDING,
    "CONFIGURING": JobStatus.PENDING,
    "RUNNING": JobStatus.RUNNING,
    "COMPLETING": JobStatus.RUNNING,
    "COMPLETED": JobStatus.FINISHED,
    "FAILED": JobStatus.FAILED,
    "TIMEOUT": JobStatus.FAILED,
    "CANCELLED": JobStatus.CANCELLED,
    "CANCELLED by 1000": JobStatus.CANCELLED,
    "CANCELLED+": JobStatus.CANCELLED,
    "OUT_OF_MEMORY": JobStatus.FAILED,
    "NODE_FAIL": JobStatus.FAILED,
    "PREEMPTED": JobStatus.FAILED,
    "REQUEUED": JobStatus.PENDING,
    "REQUEUE_HOLD": JobStatus.PENDING,
    "REQUEUE_FED": JobStatus.PENDING,
    "RESIZING": JobStatus.RUNNING,
    "REVOKED": JobStatus.UNKNOWN,
    "SIGNALING": JobStatus.RUNNING,
    "SPECIAL_EXIT": JobStatus.FAILED,
    "STAGE_OUT": JobStatus.RUNNING,
    "STOPPED": JobStatus.RUNNING,
    "SUSPENDED": JobStatus.RUNNING,
    "BOOT_FAIL": JobStatus.FAILED,
    "DEADLINE": JobStatus.FAILED,
    "RESV_DEL_HOLD": JobStatus.PENDING,
    "CD": JobStatus.FINISHED,
    "PD": JobStatus.PENDING,
    "OOM": JobStatus.FAILED,
    "": JobStatus.UNKNOWN,
    "SOMETHING_NEW": JobStatus.UNKNOWN,
    "???": JobStatus.UNKNOWN,
}


@pytest.mark.parametrize(("text", "expected"), sorted(ISSUE_STATES.items()))
def test_state_table(text: str, expected: JobStatus) -> None:
    state, extra = normalise_state(text)
    record = SlurmRecord(job_id="1", array_id="1", tasks=(), raw_id="1", state=state, exit_code=0, signal=None,
                         reason="None", name="n", detail=extra)  # fmt: skip
    info = record_to_info("1", record)
    assert info.status is expected
    assert info.native_state == (state or None)
    if expected in (JobStatus.FAILED, JobStatus.CANCELLED, JobStatus.UNKNOWN):
        assert info.reason, text  # a job that did not succeed says why
        assert info.exit_code == (0 if expected is not JobStatus.UNKNOWN else None)
    if expected in (JobStatus.PENDING, JobStatus.RUNNING):
        assert info.exit_code is None
    if text == "CANCELLED by 1000":
        assert info.reason == "cancelled by uid 1000"


def test_every_state_of_the_installed_man_page_is_in_the_table() -> None:
    """squeue(1) "JOB STATE CODES" of the installed Slurm: every long and compact name is known."""
    rows = re.findall(r"^\s{7}([A-Z]{1,3})\s+([A-Z_]{4,})\s", fixture("squeue-man-state-codes.txt"), re.MULTILINE)
    assert len(rows) >= 24
    for compact, long_name in rows:
        assert long_name in STATE_TABLE, long_name
        assert COMPACT_STATES[compact] == long_name


def test_exit_code_formats() -> None:
    assert parse_exit_code("3:0") == (3, None)
    assert parse_exit_code("0:9") == (None, 9)
    assert parse_exit_code("0:0") == (0, None)
    assert parse_exit_code("") == (None, None)
    assert parse_wait_status("768") == (3, None)
    assert parse_wait_status("9") == (None, 9)
    assert parse_wait_status("0") == (0, None)
    assert parse_wait_status("N/A") == (None, None)


def test_job_ids_and_ranges() -> None:
    assert split_job_id("123_4") is not None and split_job_id("123_4").task == 4  # type: ignore[union-attr]
    assert split_job_id("123") is not None and split_job_id("123").task is None  # type: ignore[union-attr]
    assert split_job_id("123_[4-5]") is None and split_job_id("abc") is None and split_job_id("1.batch") is None
    assert expand_task_ranges("[5-9%4]") == (5, 6, 7, 8, 9)
    assert expand_task_ranges("0,2,4-5") == (0, 2, 4, 5)
    assert expand_task_ranges("0-12:4") == (0, 4, 8, 12)
    assert expand_task_ranges("9-5") == () and expand_task_ranges("x") == () and expand_task_ranges("") == ()
    assert expand_task_ranges("0-99999999999") == ()  # absurd: treated as unreadable
    assert format_task_ranges([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert format_task_ranges([3]) == "3"
    assert ids_to_query(["12_3", "12_4", "7", "x", "100_0"]) == ["7", "12", "100"]
