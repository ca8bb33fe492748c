"""``batchkit cp|ls|rm|stat``: the transfer layer on the command line (see batchkit.fs)."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    """Register the file commands (filled in with the transfer layer)."""
    del sub
