"""A one-line progress bar for long transfers, drawn on a terminal (stderr).

It stays silent for the first second, so quick copies (and job stage-in/out, whose stderr is
a log file) print nothing; after that it redraws at most 5 times a second.
"""

from __future__ import annotations

import shutil
import sys
import threading
import time
from typing import TextIO

from batchkit.fs.info import TransferProgress

_UNITS = ("B", "kB", "MB", "GB", "TB")


def human_bytes(n: float) -> str:
    """``1234567`` -> ``"1.2 MB"`` (powers of 1000, like the sizes storage systems quote)."""
    value = float(n)
    for unit in _UNITS:
        if abs(value) < 1000 or unit == _UNITS[-1]:
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    raise AssertionError("unreachable")


def render(progress: TransferProgress, seconds: float, width: int) -> str:
    """The text of the bar for ``progress`` after ``seconds`` (pure, for tests)."""
    rate = progress.bytes_done / seconds if seconds > 0 else 0.0
    files = f"{progress.files_done}/{progress.files_total} files"
    if progress.files_failed:
        files += f", {progress.files_failed} failed"
    if progress.bytes_total:
        fraction = min(1.0, progress.bytes_done / progress.bytes_total)
        amount = f"{human_bytes(progress.bytes_done)}/{human_bytes(progress.bytes_total)}"
    else:
        fraction = progress.files_done / progress.files_total if progress.files_total else 0.0
        amount = human_bytes(progress.bytes_done)
    tail = f" {fraction * 100:3.0f}% {amount} {files} {human_bytes(rate)}/s"
    bar_width = max(10, width - len(tail) - 3)
    filled = int(bar_width * fraction)
    return "[" + "#" * filled + "." * (bar_width - filled) + "]" + tail


class ProgressBar:
    """A :data:`~batchkit.fs.info.ProgressCallback` drawing on ``stream`` (thread-safe)."""

    def __init__(self, stream: TextIO | None = None, delay: float = 1.0, interval: float = 0.2) -> None:
        self.stream = stream or sys.stderr
        self.delay = delay
        self.interval = interval
        self.started = time.monotonic()
        self._last_draw = 0.0
        self._drawn = False
        self._latest: TransferProgress | None = None
        self._lock = threading.Lock()

    def __call__(self, progress: TransferProgress) -> None:
        with self._lock:
            self._latest = progress
            now = time.monotonic()
            if now - self.started < self.delay or now - self._last_draw < self.interval:
                return
            self._last_draw = now
            self._draw(progress, now)

    def _draw(self, progress: TransferProgress, now: float) -> None:
        width = shutil.get_terminal_size((100, 20)).columns - 1
        self.stream.write("\r" + render(progress, now - self.started, width))
        self.stream.flush()
        self._drawn = True

    def close(self) -> None:
        """Draw the final state (if anything was drawn) and end the line."""
        with self._lock:
            if self._drawn and self._latest is not None:
                self._draw(self._latest, time.monotonic())
                self.stream.write("\n")
                self.stream.flush()
