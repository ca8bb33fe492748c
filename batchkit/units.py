"""Parse and format the quantities users write by hand: memory sizes and durations.

Pure functions, no I/O. They accept what physicists actually type ("2GB", "500MB", "2G",
"1.5 GiB", 3_000_000_000; "HH:MM:SS", "90m", "1h30m", "2d", 5400) and reject everything
else with a :class:`~batchkit.errors.SpecError` that quotes the bad value.

Decimal suffixes (KB, MB, GB, TB) are powers of 1000 and binary ones (KiB, MiB, ...) powers of
1024, as the SI and IEC define them. A bare "K/M/G/T" (Slurm's and HTCondor's spelling)
means the binary unit, because that is what those schedulers mean by it.
"""

from __future__ import annotations

import functools
import math
import re

from batchkit.errors import SpecError

_SIZE_UNITS: dict[str, int] = {
    "": 1,
    "b": 1,
    "kb": 1000,
    "mb": 1000**2,
    "gb": 1000**3,
    "tb": 1000**4,
    "pb": 1000**5,
    "k": 1024,
    "m": 1024**2,
    "g": 1024**3,
    "t": 1024**4,
    "p": 1024**5,
    "kib": 1024,
    "mib": 1024**2,
    "gib": 1024**3,
    "tib": 1024**4,
    "pib": 1024**5,
}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]*)\s*$")

_DURATION_UNITS: dict[str, int] = {
    "s": 1,
    "sec": 1,
    "m": 60,
    "min": 60,
    "h": 3600,
    "hr": 3600,
    "d": 86400,
    "day": 86400,
}
_DURATION_PART_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)\s*([a-zA-Z]+)")


def parse_size(value: int | float | str, what: str = "size") -> int:
    """Return ``value`` as a whole number of bytes.

    Raises :class:`SpecError` for negative, non-finite, empty or unit-less garbage.
    """
    if isinstance(value, bool):
        raise SpecError(f"{what}: expected a size like '2GB', got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise SpecError(f"{what}: expected a non-negative size, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise SpecError(f"{what}: expected a size like '2GB', got {value!r}")
    return _parse_size_text(value, what)


@functools.lru_cache(maxsize=256)
def _parse_size_text(value: str, what: str) -> int:
    """Cached: 10,000 specs usually repeat the same few strings."""
    match = _SIZE_RE.match(value)
    if not match:
        raise SpecError(f"{what}: cannot read {value!r} as a size (examples: '2GB', '500MB', 1048576)")
    number, unit = match.groups()
    factor = _SIZE_UNITS.get(unit.lower())
    if factor is None:
        raise SpecError(f"{what}: unknown unit {unit!r} in {value!r} (use B, KB, MB, GB, TB or KiB, MiB, ...)")
    return int(float(number) * factor)


def parse_duration(value: int | float | str, what: str = "duration") -> int:
    """Return ``value`` as a whole number of seconds (rounded up).

    Accepts seconds as a number, ``[D-]HH:MM:SS``, ``MM:SS``, and unit strings such as
    ``90m``, ``1h30m``, ``2d``, ``45s``.
    """
    if isinstance(value, bool):
        raise SpecError(f"{what}: expected a duration like '01:30:00' or '90m', got {value!r}")
    if isinstance(value, (int, float)):
        if not math.isfinite(value) or value < 0:
            raise SpecError(f"{what}: expected a non-negative duration, got {value!r}")
        return math.ceil(value)
    if not isinstance(value, str):
        raise SpecError(f"{what}: expected a duration like '01:30:00' or '90m', got {value!r}")
    return _parse_duration_text(value, what)


@functools.lru_cache(maxsize=256)
def _parse_duration_text(value: str, what: str) -> int:
    text = value.strip()
    if not text:
        raise SpecError(f"{what}: empty duration")
    if re.fullmatch(r"\d+(\.\d+)?", text):
        return math.ceil(float(text))
    if ":" in text:
        return _parse_clock(text, value, what)
    pos = 0
    total = 0.0
    for match in _DURATION_PART_RE.finditer(text):
        if text[pos : match.start()].strip():
            break
        unit = match.group(2).lower()
        if unit not in _DURATION_UNITS:
            raise SpecError(f"{what}: unknown unit {match.group(2)!r} in {value!r} (use s, m, h, d)")
        total += float(match.group(1)) * _DURATION_UNITS[unit]
        pos = match.end()
    if pos == 0 or text[pos:].strip():
        raise SpecError(f"{what}: cannot read {value!r} as a duration (examples: '01:30:00', '90m', 5400)")
    return math.ceil(total)


def _parse_clock(text: str, original: str, what: str) -> int:
    days = 0
    if "-" in text:
        day_part, text = text.split("-", 1)
        if not day_part.isdigit():
            raise SpecError(f"{what}: cannot read {original!r} as D-HH:MM:SS")
        days = int(day_part)
    parts = text.split(":")
    if len(parts) not in (2, 3) or not all(p.isdigit() for p in parts):
        raise SpecError(f"{what}: cannot read {original!r} as HH:MM:SS")
    numbers = [int(p) for p in parts]
    if len(numbers) == 2:
        numbers.insert(0, 0)
    hours, minutes, seconds = numbers
    if minutes >= 60 or seconds >= 60:
        raise SpecError(f"{what}: minutes and seconds must be below 60 in {original!r}")
    return days * 86400 + hours * 3600 + minutes * 60 + seconds


def format_duration(seconds: int) -> str:
    """Format seconds as ``[D-]HH:MM:SS`` (the form Slurm, SGE and PBS accept)."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def format_size(num_bytes: int) -> str:
    """Human-readable binary size, e.g. ``format_size(2 * 1024**3) == '2.0GiB'``."""
    value = float(num_bytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)}B" if unit == "B" else f"{value:.1f}{unit}"
        value /= 1024
    raise AssertionError("unreachable")


def ceil_div(numerator: int, denominator: int) -> int:
    """Integer division rounding up (used to convert bytes to MB, seconds to minutes)."""
    return -(-numerator // denominator)
