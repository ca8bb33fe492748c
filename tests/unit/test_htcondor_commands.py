"""HTCondor command lines: argv builders, and constraints evaluated by the real ClassAd library.

A constraint is only right if HTCondor selects exactly the intended jobs with it, so the
constraints are evaluated by ``classad2`` (HTCondor's ClassAd implementation) against job ads,
not compared as strings.
"""

from __future__ import annotations

import random
from types import ModuleType
from typing import Any

import pytest
from conftest import missing

from batchkit.backends.htcondor_commands import (
    LEFTOVERS,
    MAX_CONSTRAINT_CHARS,
    NOT_ENDED,
    QUERY_ATTRIBUTES,
    SPOOLED_OUTPUT_WAITING,
    JobId,
    history_argv,
    id_constraints,
    parse_job_id,
    proc_ranges,
    queue_argv,
    remove_argv,
    restrict,
    submit_argv,
    tag_constraint,
    transfer_data_argv,
)
from batchkit.errors import SpecError

try:
    import classad2 as _classad2
except ImportError:  # pragma: no cover - the CI installs the bindings
    _classad2 = None

#: Linux refuses a single argument longer than this (MAX_ARG_STRLEN).
MAX_ARG_STRLEN = 131072


@pytest.fixture
def classad() -> ModuleType:
    if _classad2 is None:
        message = "the HTCondor Python bindings are missing: .venv/bin/pip install 'htcondor>=24'"
        missing(message)
    return _classad2


def selects(classad: ModuleType, constraint: str, **attrs: Any) -> bool:
    """Whether HTCondor's ClassAd evaluation of ``constraint`` on an ad with ``attrs`` is true."""
    ad = classad.ClassAd(attrs)
    ad["bk_constraint"] = classad.ExprTree(constraint)
    return ad.eval("bk_constraint") is True


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("42.7", JobId(42, 7)),
        ("0.0", JobId(0, 0)),
        ("42", None),
        ("42.", None),
        (".7", None),
        ("42.7.1", None),
        ("a.b", None),
        ("unknown:bk12.0:3", None),
        ("\uff14\uff12.7", None),  # fullwidth digits: str.isdigit() says yes, HTCondor says no
        ("", None),
    ],
)
def test_parse_job_id(text: str, expected: JobId | None) -> None:
    assert parse_job_id(text) == expected


def test_proc_ranges() -> None:
    assert proc_ranges([5, 0, 1, 2, 2, 9, 10]) == [(0, 2), (5, 5), (9, 10)]
    assert proc_ranges([]) == []


def test_a_whole_cluster_is_one_short_clause(classad: ModuleType) -> None:
    ids = [JobId(42, p) for p in range(10_000)]
    (constraint,) = id_constraints(ids)
    assert constraint == "(ClusterId == 42 && (ProcId >= 0 && ProcId <= 9999))"
    assert selects(classad, constraint, ClusterId=42, ProcId=9999)
    assert not selects(classad, constraint, ClusterId=42, ProcId=10_000)
    assert not selects(classad, constraint, ClusterId=43, ProcId=0)


def test_constraints_select_exactly_the_ids(classad: ModuleType) -> None:
    rng = random.Random(3)
    wanted = {JobId(c, p) for c in (7, 8, 1000) for p in range(300) if rng.random() < 0.4}
    constraints = id_constraints(wanted)
    for cluster in (6, 7, 8, 1000):
        for proc in range(305):
            hit = any(selects(classad, c, ClusterId=cluster, ProcId=proc) for c in constraints)
            assert hit == (JobId(cluster, proc) in wanted), (cluster, proc)


def test_scattered_ids_are_split_below_the_argument_limit(classad: ModuleType) -> None:
    wanted = [JobId(5, p) for p in range(0, 60_000, 2)] + [JobId(6, p) for p in range(0, 20_000, 3)]
    constraints = id_constraints(wanted)
    assert len(constraints) > 1
    assert all(len(c) <= MAX_CONSTRAINT_CHARS for c in constraints)
    for job in (JobId(5, 0), JobId(5, 59_998), JobId(6, 19_998), JobId(5, 1), JobId(6, 1)):
        hits = sum(selects(classad, c, ClusterId=job.cluster, ProcId=job.proc) for c in constraints)
        assert hits == (1 if job in set(wanted) else 0), job
    for constraint in constraints:
        argv = queue_argv(constraint)
        assert all(len(arg.encode()) < MAX_ARG_STRLEN for arg in argv)


def test_many_short_runs_stay_evaluable(classad: ModuleType) -> None:
    # 6,000 runs of three procs: far more alternatives than a flat || chain may have
    wanted = [JobId(3, p) for start in range(0, 24_000, 4) for p in range(start, start + 3)]
    constraints = id_constraints(wanted)
    for job, expected in (
        (JobId(3, 0), True),
        (JobId(3, 23_998), True),
        (JobId(3, 3), False),
        (JobId(3, 23_999), False),
    ):
        hits = sum(selects(classad, c, ClusterId=job.cluster, ProcId=job.proc) for c in constraints)
        assert hits == int(expected), job


def test_a_flat_chain_would_not_have_been_evaluable(classad: ModuleType) -> None:
    # the reason for balanced trees: HTCondor's evaluator fails on long flat || chains
    flat = " || ".join(f"ProcId == {p}" for p in range(1000))
    with pytest.raises(Exception, match="evaluate"):
        selects(classad, flat, ProcId=999)


def test_no_ids_no_constraint() -> None:
    assert id_constraints([]) == []


def test_tag_constraint(classad: ModuleType) -> None:
    constraint = tag_constraint("bk0123.4")
    assert selects(classad, constraint, BatchkitTag="bk0123.4")
    assert not selects(classad, constraint, BatchkitTag="bk0123.40")
    assert not selects(classad, constraint, Owner="alice")
    with pytest.raises(SpecError):
        tag_constraint('x" || true || "')


@pytest.mark.parametrize(
    ("attrs", "not_ended", "leftover", "output_waiting"),
    [
        ({"JobStatus": 1}, True, False, False),
        ({"JobStatus": 2}, True, False, False),
        ({"JobStatus": 5}, True, True, False),
        ({"JobStatus": 3}, False, False, False),
        ({"JobStatus": 4}, False, False, False),
        ({"JobStatus": 4, "StageInFinish": 1700000000}, False, True, True),
        ({"JobStatus": 4, "StageInFinish": 1700000000, "StageOutFinish": 0}, False, True, True),
        ({"JobStatus": 4, "StageInFinish": 1700000000, "StageOutFinish": 1700000500}, False, True, False),
    ],
)
def test_state_constraints(
    classad: ModuleType, attrs: dict[str, Any], not_ended: bool, leftover: bool, output_waiting: bool
) -> None:
    assert selects(classad, NOT_ENDED, **attrs) is not_ended
    assert selects(classad, LEFTOVERS, **attrs) is leftover
    assert selects(classad, SPOOLED_OUTPUT_WAITING, **attrs) is output_waiting
    both = restrict("ClusterId == 3", LEFTOVERS)
    assert selects(classad, both, ClusterId=3, **attrs) is leftover
    assert selects(classad, both, ClusterId=4, **attrs) is False


def test_argv_builders() -> None:
    attrs = ",".join(QUERY_ATTRIBUTES)
    assert submit_argv("/b/htcondor.sub") == ["condor_submit", "-terse", "/b/htcondor.sub"]
    assert submit_argv("/b/s.sub", "cm.example.org", "sched1", spool=True) == [
        "condor_submit",
        "-terse",
        "-pool",
        "cm.example.org",
        "-name",
        "sched1",
        "-spool",
        "/b/s.sub",
    ]
    assert queue_argv("X", schedd="s") == ["condor_q", "-name", "s", "-constraint", "X", "-json", "-attributes", attrs]
    assert history_argv("X", 7) == ["condor_history", "-constraint", "X", "-limit", "7", "-json", "-attributes", attrs]
    assert history_argv("X", None, pool="p") == [
        "condor_history",
        "-pool",
        "p",
        "-constraint",
        "X",
        "-json",
        "-attributes",
        attrs,
    ]
    assert remove_argv("X") == ["condor_rm", "-constraint", "X"]
    assert transfer_data_argv("X", "p") == ["condor_transfer_data", "-pool", "p", "-constraint", "X"]
