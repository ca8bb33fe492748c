"""``batchkit cp --pairs``: the pair-list format (pure)."""

from __future__ import annotations

import pytest

from batchkit.cli.files import read_pairs
from batchkit.errors import UserError


def test_pairs_with_spaces_comments_and_blank_lines() -> None:
    text = "# staged by the job\nin 1.txt\troot://h//a b/in1\n\n  # comment\nout.root\tdavs://h:8443/o.root\n"
    assert read_pairs(text) == [("in 1.txt", "root://h//a b/in1"), ("out.root", "davs://h:8443/o.root")]


@pytest.mark.parametrize("line", ["only-one-field", "a\tb\tc", "\tdst", "src\t"])
def test_malformed_lines_name_the_line(line: str) -> None:
    with pytest.raises(UserError, match="line 2"):
        read_pairs("ok\tfine\n" + line + "\n")
