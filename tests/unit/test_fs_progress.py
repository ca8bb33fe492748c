"""The progress bar's text and its quiet first second."""

from __future__ import annotations

import io

from batchkit.fs.info import TransferProgress
from batchkit.fs.progress import ProgressBar, human_bytes, render


def test_human_bytes() -> None:
    assert human_bytes(999) == "999 B"
    assert human_bytes(1234567) == "1.2 MB"
    assert human_bytes(5e12) == "5.0 TB"


def test_render() -> None:
    text = render(TransferProgress(50_000_000, 100_000_000, 3, 10, 1), 2.0, 100)
    assert " 50% 50.0 MB/100.0 MB 3/10 files, 1 failed 25.0 MB/s" in text
    assert text.startswith("[") and text.count("#") > 0
    assert len(text) <= 100
    unknown_total = render(TransferProgress(10, None, 5, 10), 1.0, 80)
    assert " 50% " in unknown_total


def test_bar_is_silent_at_first_then_draws() -> None:
    out = io.StringIO()
    bar = ProgressBar(out, delay=3600)
    bar(TransferProgress(1, 2, 0, 1))
    bar.close()
    assert out.getvalue() == ""
    bar = ProgressBar(out, delay=0, interval=0)
    bar(TransferProgress(1, 2, 0, 1))
    bar(TransferProgress(2, 2, 1, 1))
    bar.close()
    assert out.getvalue().startswith("\r[") and out.getvalue().endswith("\n") and "100%" in out.getvalue()
