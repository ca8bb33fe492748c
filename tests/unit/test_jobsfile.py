"""Jobs files in JSON, YAML and TOML describe the same specs."""

from __future__ import annotations

from pathlib import Path

import pytest

import batchkit as bk
from batchkit.errors import JobFileError
from batchkit.jobsfile import load_jobs, parse_jobs

JSON = """[{"command": ["gen", "--seed", "{index}"], "name": "gen",
  "resources": {"cpus": 2, "memory": "2GB", "walltime": "01:00:00"},
  "env": {"MODE": "fast"}, "outputs": {"out.root": "/data/out_{index}.root"}},
 {"command": ["true"]}]"""
YAML = """
jobs:
  - command: [gen, --seed, "{index}"]
    name: gen
    resources: {cpus: 2, memory: 2GB, walltime: "01:00:00"}
    env: {MODE: fast}
    outputs: {out.root: "/data/out_{index}.root"}
  - command: ["true"]
"""
TOML = """
[[jobs]]
command = ["gen", "--seed", "{index}"]
name = "gen"
resources = { cpus = 2, memory = "2GB", walltime = "01:00:00" }
env = { MODE = "fast" }
outputs = { "out.root" = "/data/out_{index}.root" }

[[jobs]]
command = ["true"]
"""


def test_three_formats_agree(tmp_path: Path) -> None:
    results = []
    for suffix, text in (("json", JSON), ("yaml", YAML), ("toml", TOML)):
        path = tmp_path / f"jobs.{suffix}"
        path.write_text(text)
        results.append(load_jobs(path))
    assert results[0] == results[1] == results[2]
    first = results[0][0]
    assert first.resources == bk.Resources(cpus=2, memory="2GB", walltime=3600)
    assert first.outputs == {"out.root": "/data/out_{index}.root"}


@pytest.mark.parametrize(
    ("text", "fmt", "match"),
    [
        ("{", "json", "not valid JSON"),
        ("{}", "json", "expected a list"),
        ("[]", "json", "empty"),
        ('[{"command": "ls -l"}]', "json", "job 0: command must be an argv list"),
        ('[{"command": ["x"], "resources": {"memory": "x"}}]', "json", "job 0"),
        ("jobs = 3", "toml", "expected a list"),
        ("a: [", "yaml", "not valid YAML"),
        ("x", "ini", "unknown format"),
    ],
)
def test_bad_files(text: str, fmt: str, match: str) -> None:
    with pytest.raises(JobFileError, match=match):
        parse_jobs(text, fmt)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(JobFileError, match="cannot read"):
        load_jobs(tmp_path / "nope.json")
