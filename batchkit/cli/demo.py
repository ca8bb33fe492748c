"""Placeholder: filled in by the next commit."""

from __future__ import annotations

from typing import Any


def add_commands(sub: Any) -> None:
    del sub
