"""The runnable examples of the docs run, and print what the docs say they print.

Every ```python block of docs/quickstart.md runs in a fresh directory (blocks of one page share
it, in order). A ``# <expected>`` comment after a ``print(...)`` line is checked against the
printed line.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PAGES = [ROOT / "docs" / "quickstart.md"]
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def blocks(page: Path) -> list[str]:
    return BLOCK.findall(page.read_text())


def expected_lines(code: str) -> list[str]:
    """Expected output: trailing comments of print lines, then comment-only lines after them."""
    out = []
    after_print = False
    for line in code.splitlines():
        match = re.match(r"\s*print\(.*\)\s+#\s(.*)$", line)
        if match:
            out.append(match.group(1).strip())
            after_print = True
        elif re.match(r"\s*print\(", line):
            after_print = True
        elif re.match(r"#\s\S", line) and after_print:
            out.append(line[2:].strip())
        else:
            after_print = False
    return out


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_examples_run(page: Path, tmp_path: Path) -> None:
    found = blocks(page)
    assert found, f"no python examples in {page}"
    for number, code in enumerate(found):
        proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"example {number} of {page.name} failed:\n{code}\n{proc.stderr}"
        printed = [line.strip() for line in proc.stdout.splitlines()]
        assert printed == expected_lines(code), f"example {number} of {page.name} printed {printed}"
