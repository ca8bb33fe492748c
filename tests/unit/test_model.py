"""JobSpec and Resources: validation at construction, round trips, placeholders."""

from __future__ import annotations

import attrs
import pytest

import batchkit as bk
from batchkit.errors import SpecError
from batchkit.model import substitute_index, substitute_placeholders


def test_resources_normalise_units() -> None:
    r = bk.Resources(cpus=4, memory="2GB", walltime="90m", gpus=1, disk="10GB")
    assert (r.cpus, r.memory, r.walltime, r.gpus, r.disk) == (4, 2_000_000_000, 5400, 1, 10_000_000_000)
    assert bk.Resources.from_dict(r.to_dict()) == r


@pytest.mark.parametrize(
    "kwargs",
    [{"cpus": 0}, {"cpus": "four"}, {"cpus": True}, {"gpus": -1}, {"memory": "lots"}, {"walltime": "soon"}],
)
def test_resources_reject(kwargs: dict[str, object]) -> None:
    with pytest.raises(SpecError):
        bk.Resources(**kwargs)  # type: ignore[arg-type]


def test_resources_unknown_field() -> None:
    with pytest.raises(SpecError, match="unknown field"):
        bk.Resources.from_dict({"cpu": 2})


def test_spec_is_frozen_value() -> None:
    spec = bk.JobSpec(["echo", "hi"], env={"A": "1"})
    assert spec.command == ("echo", "hi")
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        spec.name = "x"  # type: ignore[misc]
    assert bk.JobSpec.from_dict(spec.to_dict()) == spec


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"command": []}, "empty"),
        ({"command": "echo hi"}, "argv list"),
        ({"command": ["", "x"]}, "program name"),
        ({"command": ["echo", None]}, "strings"),
        ({"command": ["echo", "a\x00b"]}, "NUL"),
        ({"command": ["true"], "env": {"1BAD": "x"}}, "not a valid"),
        ({"command": ["true"], "env": {"BATCHKIT_INDEX": "3"}}, "reserved"),
        ({"command": ["true"], "inputs": {"../etc/passwd": "/x"}}, "relative"),
        ({"command": ["true"], "inputs": {"/abs": "/x"}}, "relative"),
        ({"command": ["true"], "outputs": {"a/./b": "/x"}}, "relative"),
        ({"command": ["true"], "outputs": {"out": ""}}, "non-empty"),
        ({"command": ["true"], "name": "two\nlines"}, "single-line"),
        ({"command": ["true"], "backend_options": ["x"]}, "mapping"),
    ],
)
def test_spec_rejects(kwargs: dict[str, object], match: str) -> None:
    with pytest.raises(SpecError, match=match):
        bk.JobSpec(**kwargs)  # type: ignore[arg-type]


def test_from_dict_rejects_unknown_and_missing() -> None:
    with pytest.raises(SpecError, match="unknown field"):
        bk.JobSpec.from_dict({"command": ["x"], "cmd": 1})
    with pytest.raises(SpecError, match="required"):
        bk.JobSpec.from_dict({"name": "x"})


def test_substitute_index() -> None:
    assert substitute_index("out_{index}.root", 7) == "out_7.root"
    assert substitute_index("{{index}}", 7) == "{index}"
    assert substitute_index("{x} {index}{index} }", 3) == "{x} 33 }"
    assert substitute_index("{{{index}}}", 2) == "{2}"
    assert substitute_index("no braces", 1) == "no braces"


def test_two_pass_placeholders() -> None:
    first = substitute_placeholders("{array}-{index}-{{index}}", {"array": "100"}, keep_escapes=True)
    assert first == "100-{index}-{{index}}"
    assert substitute_index(first, 4) == "100-4-{index}"


def test_resolved_spec_substitutes_command_inputs_outputs() -> None:
    spec = bk.JobSpec(
        ["run", "--seed", "{index}"],
        inputs={"in.txt": "/data/in_{index}.txt"},
        outputs={"out.txt": "/data/out_{index}.txt"},
        env={"KEEP": "{index}"},
    )
    resolved = spec.resolved(12)
    assert resolved.command == ("run", "--seed", "12")
    assert resolved.inputs == {"in.txt": "/data/in_12.txt"}
    assert resolved.outputs == {"out.txt": "/data/out_12.txt"}
    assert resolved.env == {"KEEP": "{index}"}  # env is left alone


def test_job_status() -> None:
    assert bk.JobStatus("FAILED").is_final
    assert not bk.JobStatus.UNKNOWN.is_final
    info = bk.JobInfo("1", "RUNNING")  # type: ignore[arg-type]
    assert info.status is bk.JobStatus.RUNNING
