"""Memory sizes and durations as users write them."""

from __future__ import annotations

import pytest

from batchkit.errors import SpecError
from batchkit.units import ceil_div, format_duration, format_size, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2GB", 2_000_000_000),
        ("500MB", 500_000_000),
        ("2G", 2 * 1024**3),
        ("1.5 GiB", int(1.5 * 1024**3)),
        ("512", 512),
        ("10kb", 10_000),
        (3_000_000_000, 3_000_000_000),
        (0, 0),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert parse_size(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "GB", "2XB", "-1GB", "1.2.3MB", -5, True, float("nan"), None, [1]])
def test_parse_size_rejects(bad: object) -> None:
    with pytest.raises(SpecError):
        parse_size(bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("01:30:00", 5400),
        ("90m", 5400),
        ("1h30m", 5400),
        ("2d", 172800),
        ("1-00:00:01", 86401),
        ("05:00", 300),
        ("45s", 45),
        ("120", 120),
        (5400, 5400),
        (0.5, 1),
    ],
)
def test_parse_duration(text: object, expected: int) -> None:
    assert parse_duration(text) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", ["", "1:2:3:4", "00:61:00", "90x", "h", "1h xx", -3, "ab:cd", False])
def test_parse_duration_rejects(bad: object) -> None:
    with pytest.raises(SpecError):
        parse_duration(bad)  # type: ignore[arg-type]


def test_formatting() -> None:
    assert format_duration(5400) == "01:30:00"
    assert format_duration(90061) == "1-01:01:01"
    assert format_size(2 * 1024**3) == "2.0GiB"
    assert format_size(12) == "12B"
    assert ceil_div(61, 60) == 2
    assert ceil_div(60, 60) == 1
