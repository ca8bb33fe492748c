"""Retry rounds, backoff and failover order (the scheduling logic, with plain callables)."""

from __future__ import annotations

import pytest

from batchkit.errors import FileNotFound, TransientTransferError
from batchkit.fs.location import Location, candidates
from batchkit.fs.retry import RetryPolicy, with_failover
from batchkit.fs.url import URL, parse_url


def test_delay_grows_and_is_capped() -> None:
    policy = RetryPolicy(backoff=1.0, factor=3.0, max_delay=5.0)
    assert [policy.delay(n) for n in (1, 2, 3)] == [1.0, 3.0, 5.0]


def test_invalid_policies() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(backoff=-1)


def test_failover_moves_to_the_next_base_before_sleeping() -> None:
    bases = [parse_url("root://a//d"), parse_url("root://b//d")]
    tried: list[str] = []
    sleeps: list[float] = []

    def operation(url: URL) -> str:
        tried.append(url.host)
        if url.host == "a":
            raise TransientTransferError("connection refused", url.display())
        return "ok from " + url.host

    assert with_failover(bases, operation, RetryPolicy(), sleep=sleeps.append) == "ok from b"
    assert tried == ["a", "b"] and sleeps == []


def test_gives_up_after_all_rounds_and_says_so() -> None:
    bases = [parse_url("root://a//d"), parse_url("root://b//d")]
    sleeps: list[float] = []
    calls = []

    def operation(url: URL) -> None:
        calls.append(url.host)
        raise TransientTransferError("timed out", url.display())

    with pytest.raises(TransientTransferError) as info:
        with_failover(bases, operation, RetryPolicy(attempts=3, backoff=0.5), sleep=sleeps.append)
    assert calls == ["a", "b"] * 3
    assert sleeps == [0.5, 1.0]
    assert "gave up after 3 attempts on each of 2 bases" in str(info.value)
    assert str(info.value).startswith("root://b//d: timed out")


def test_permanent_errors_are_not_retried() -> None:
    calls = []

    def operation(url: URL) -> None:
        calls.append(url)
        raise FileNotFound("no such file", url.display())

    with pytest.raises(FileNotFound):
        with_failover([parse_url("root://a//d"), parse_url("root://b//d")], operation, RetryPolicy(), sleep=print)
    assert len(calls) == 1


def test_location_joins_every_base() -> None:
    loc = Location(["root://a//data", "davs://b:8443/data"])
    target = loc / "run1" / "x.root"
    assert [str(u) for u in target.urls()] == ["root://a//data/run1/x.root", "davs://b:8443/data/run1/x.root"]
    assert target.name == "x.root"
    assert candidates(target) == target.urls()
    assert candidates("root://a//x") == [parse_url("root://a//x")]
    assert "davs://b:8443/data/run1" in str(loc.join("run1"))
