"""Reading HTCondor's outputs: pure parsers against the recorded/derived outputs in
tests/fixtures/htcondor (see SOURCES.md there for where each file came from)."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest
from conftest import missing

from batchkit.backends.htcondor_parse import (
    combine,
    find_rows,
    ids_from_ranges,
    info_from_ad,
    is_transient,
    parse_ads_json,
    parse_submit_terse,
    rows_from_ads,
    spooled_output_waiting,
    submit_error_message,
)
from batchkit.errors import ParseError
from batchkit.model import JobStatus

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "htcondor"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


# ----------------------------------------------------------------------------- condor_submit
def test_terse_single_job() -> None:
    ranges = parse_submit_terse(fixture("condor_submit-terse-single-job-teststring.txt"))
    assert ranges == [(15, 0, 0)]
    assert ids_from_ranges(ranges) == ["15.0"]


def test_terse_range_with_warnings_around_it() -> None:
    # format "%d.%d - %d.%d" (src/condor_submit.V6/submit.cpp); warning lines as in the manual
    out = "WARNING: the line 'foo = bar' was unused by condor_submit. Is it a typo?\n42.0 - 42.9\n"
    assert ids_from_ranges(parse_submit_terse(out)) == [f"42.{p}" for p in range(10)]


@pytest.mark.parametrize("text", ["", "\n", "1 job(s) submitted to cluster 6.\n", "4.0 - 5.3\n", "4.9 - 4.2\n"])
def test_terse_output_that_is_not_one_range_is_an_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_submit_terse(text)


def test_non_terse_outputs_are_not_mistaken_for_ids() -> None:
    for name in ("condor_submit-plain-1job.txt", "condor_submit-plain-with-submit-warning.txt"):
        with pytest.raises(ParseError):
            parse_submit_terse(fixture(name))


def test_submit_error_keeps_the_schedds_words() -> None:
    message = submit_error_message(fixture("condor_submit-error-submit-requirement-rejected.txt"), "")
    assert message == (
        "ERROR: Failed to commit job submission into the queue.\n"
        "ERROR: This pool does not accept standard universe jobs."
    )
    assert not is_transient(message)


def test_unreachable_schedd_is_transient() -> None:
    assert is_transient(fixture("condor_q-failed-to-fetch-ads.constructed.txt"))


# ----------------------------------------------------------------------------- job ads
def test_idle_ads_are_pending() -> None:
    ads = parse_ads_json(fixture("condor_q-json-idle-4jobs.derived.json"))
    assert len(ads) == 4
    infos = combine(["4.3", "4.0", "4.2", "4.1"], ads)
    assert {k: v.status for k, v in infos.items()} == dict.fromkeys(["4.3", "4.0", "4.2", "4.1"], JobStatus.PENDING)
    assert all(v.native_state == "idle" for v in infos.values())


def test_states_in_the_queue() -> None:
    ads = parse_ads_json(fixture("condor_q-json-states.derived.json"))
    infos = combine(["4.0", "4.1", "4.2", "4.3"], ads)
    assert (infos["4.0"].status, infos["4.0"].native_state) == (JobStatus.RUNNING, "running")
    held = infos["4.1"]
    assert held.status is JobStatus.FAILED and held.native_state == "held"
    assert held.reason == (
        "Error from slot1@ep: Job has gone over cgroup memory limit of 20096 megabytes (HoldReasonCode 32, subcode 0)"
    )
    assert (infos["4.2"].status, infos["4.2"].native_state) == (JobStatus.RUNNING, "transferring_output")
    assert (infos["4.3"].status, infos["4.3"].native_state) == (JobStatus.RUNNING, "suspended")


def test_final_states_from_the_history() -> None:
    ads = parse_ads_json(fixture("condor_history-json-final.derived.json"))
    infos = combine(["4.0", "4.1", "4.2", "4.3"], [], ads)
    assert (infos["4.0"].status, infos["4.0"].exit_code, infos["4.0"].reason) == (JobStatus.FINISHED, 0, None)
    assert (infos["4.1"].status, infos["4.1"].exit_code, infos["4.1"].reason) == (JobStatus.FAILED, 3, "exit code 3")
    assert infos["4.2"].status is JobStatus.CANCELLED
    assert infos["4.2"].reason == "via condor_rm (by user testuser)"
    assert (infos["4.3"].status, infos["4.3"].exit_code) == (JobStatus.FAILED, None)
    assert infos["4.3"].reason == "killed by signal 9"


def test_ids_are_never_paired_by_position() -> None:
    ads = parse_ads_json(fixture("condor_history-json-final.derived.json"))
    expected = combine(["4.0", "4.1", "4.2", "4.3"], [], ads)
    rng = random.Random(7)
    for _ in range(20):
        shuffled_ads = rng.sample(ads, len(ads))
        asked = rng.sample(["4.0", "4.1", "4.2", "4.3", "4.7", "5.0"], 6)
        infos = combine(asked, [], shuffled_ads)
        assert list(infos) == asked
        for job_id in expected:
            assert infos[job_id] == expected[job_id]
        assert infos["4.7"].status is JobStatus.UNKNOWN and infos["5.0"].status is JobStatus.UNKNOWN


def ad(**attrs: Any) -> dict[str, Any]:
    return {"ClusterId": 9, "ProcId": 0, **attrs}


@pytest.mark.parametrize(
    ("attrs", "status", "exit_code", "reason"),
    [
        ({"JobStatus": 1}, JobStatus.PENDING, None, None),
        ({"JobStatus": 0}, JobStatus.PENDING, None, None),
        ({"JobStatus": 42}, JobStatus.UNKNOWN, None, "unknown HTCondor JobStatus 42"),
        ({}, JobStatus.UNKNOWN, None, "unknown HTCondor JobStatus None"),
        ({"JobStatus": "2"}, JobStatus.UNKNOWN, None, "unknown HTCondor JobStatus '2'"),
        ({"JobStatus": 4}, JobStatus.UNKNOWN, None, "completed, but the ad has no exit code"),
        ({"JobStatus": 4, "ExitStatus": 0}, JobStatus.FINISHED, 0, None),
        ({"JobStatus": 4, "ExitCode": 241, "ExitBySignal": False}, JobStatus.FAILED, 241, "stage-in failed"),
        ({"JobStatus": 4, "ExitBySignal": True}, JobStatus.FAILED, None, "killed by a signal"),
        ({"JobStatus": 5}, JobStatus.FAILED, None, "held"),
        ({"JobStatus": 3}, JobStatus.CANCELLED, None, "removed"),
        (
            {"JobStatus": 3, "RemoveReason": "The job attribute PeriodicRemove expression 'x' evaluated to TRUE"},
            JobStatus.FAILED,
            None,
            "removed by policy: The job attribute PeriodicRemove expression 'x' evaluated to TRUE",
        ),
    ],
)
def test_state_table(attrs: dict[str, Any], status: JobStatus, exit_code: int | None, reason: str | None) -> None:
    info = info_from_ad("9.0", ad(**attrs))
    assert (info.status, info.exit_code, info.reason) == (status, exit_code, reason)


def test_queue_wins_over_history_and_unmaterialized_procs_are_pending() -> None:
    queue = [ad(ProcId=0, JobStatus=2), ad(ProcId=3, JobStatus=1)]
    history = [ad(ProcId=0, JobStatus=4, ExitCode=0), ad(ProcId=1, JobStatus=4, ExitCode=0)]
    infos = combine(["9.0", "9.1", "9.2", "9.4", "9.5", "8.9"], queue, history)
    assert infos["9.0"].status is JobStatus.RUNNING
    assert infos["9.1"].status is JobStatus.FINISHED
    assert infos["9.2"].status is JobStatus.UNKNOWN  # below a materialized proc: really gone
    assert infos["9.4"].status is JobStatus.PENDING and infos["9.4"].native_state == "unmaterialized"
    assert infos["9.5"].status is JobStatus.PENDING
    assert infos["8.9"].status is JobStatus.UNKNOWN  # its cluster is not queued


def test_rows_from_ads_prefers_the_newest_cluster() -> None:
    ads = [
        {"ClusterId": 7, "ProcId": 1, "BatchkitRow": 1},
        {"ClusterId": 8, "ProcId": 1, "BatchkitRow": 1},
        {"ClusterId": 7, "ProcId": 0, "BatchkitRow": 0},
        {"ClusterId": 8, "ProcId": 5},
    ]
    rows = rows_from_ads(ads)
    assert {r: (a["ClusterId"], a["ProcId"]) for r, a in rows.items()} == {0: (7, 0), 1: (8, 1)}


def test_find_keys_rows_by_the_row_attribute() -> None:
    history = parse_ads_json(fixture("condor_history-json-final.derived.json"))
    queue = [{"ClusterId": 4, "ProcId": 1, "JobStatus": 2, "BatchkitRow": 1}]  # still leaving the queue
    found = find_rows(queue, list(reversed(history)), rows=4)
    assert {row: (info.job_id, info.status) for row, info in found.items()} == {
        0: ("4.0", JobStatus.FINISHED),
        1: ("4.1", JobStatus.RUNNING),
        2: ("4.2", JobStatus.CANCELLED),
        3: ("4.3", JobStatus.FAILED),
    }


def test_find_reports_unmaterialized_rows_as_pending() -> None:
    queue = [
        {"ClusterId": 12, "ProcId": 0, "JobStatus": 2, "BatchkitRow": 0},
        {"ClusterId": 12, "ProcId": 2, "JobStatus": 1, "BatchkitRow": 2},
    ]
    found = find_rows(queue, [], rows=5)
    assert {row: (info.job_id, info.status, info.native_state) for row, info in found.items()} == {
        0: ("12.0", JobStatus.RUNNING, "running"),
        2: ("12.2", JobStatus.PENDING, "idle"),
        3: ("12.3", JobStatus.PENDING, "unmaterialized"),
        4: ("12.4", JobStatus.PENDING, "unmaterialized"),
    }  # row 1 is below a materialized row: HTCondor forgot it, find does not invent it
    assert find_rows([], [], rows=5) == {}


def test_spooled_output_waiting() -> None:
    assert spooled_output_waiting({"JobStatus": 4, "StageInFinish": 1700000000})
    assert spooled_output_waiting({"JobStatus": 4, "StageInFinish": 1700000000, "StageOutFinish": 0})
    assert not spooled_output_waiting({"JobStatus": 4, "StageInFinish": 1700000000, "StageOutFinish": 1700000100})
    assert not spooled_output_waiting({"JobStatus": 4})
    assert not spooled_output_waiting({"JobStatus": 2, "StageInFinish": 1700000000})


@pytest.mark.parametrize("text", ["", "  \n", "[\n]\n", "[]"])
def test_no_matching_job(text: str) -> None:
    assert parse_ads_json(text) == []


def test_concatenated_arrays() -> None:
    text = (
        '[\n{"ClusterId": 1, "ProcId": 0}\n]\n[\n{"ClusterId": 2, "ProcId": 0}\n,\n{"ClusterId": 2, "ProcId": 1}\n]\n'
    )
    assert [(a["ClusterId"], a["ProcId"]) for a in parse_ads_json(text)] == [(1, 0), (2, 0), (2, 1)]


@pytest.mark.parametrize("text", ["-- Failed to fetch ads from: <1.2.3.4:9618> : x", "[1, 2]", "{'a': 1}"])
def test_garbage_is_a_parse_error(text: str) -> None:
    with pytest.raises(ParseError):
        parse_ads_json(text)


# ----------------------------------------------------------------------------- derived fixtures
def test_derived_fixtures_match_their_derivation() -> None:
    try:
        import classad2  # noqa: F401
    except ImportError:  # pragma: no cover - the CI installs the bindings
        message = "the HTCondor Python bindings are missing: .venv/bin/pip install 'htcondor>=24'"
        missing(message)
    import importlib.util

    spec = importlib.util.spec_from_file_location("derive_json", FIXTURES / "derive_json.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    derived = module.derive()
    assert set(derived) == {p.name for p in FIXTURES.glob("*.derived.json")}
    for name, text in derived.items():
        assert json.loads(text) == json.loads(fixture(name)), name
