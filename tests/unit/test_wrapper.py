"""The shared job wrapper, run for real under dash and bash.

No scheduler is involved: the test writes a batch with a file factory and starts rows exactly
as a node would (``/bin/sh wrapper.sh DIR ROW``).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import batchkit as bk
from batchkit.backends.local import LocalFileFactory, read_exit_marker
from batchkit.jobfiles import JobFiles, render_row

NASTY = [
    "plain",
    "two words",
    "it's",
    'say "hi"',
    "$HOME and ${PATH}",
    "`touch /tmp/batchkit-pwned`",
    "$(touch /tmp/batchkit-pwned)",
    "line1\nline2",
    "trailing newline\n",
    "tab\there",
    "back\\slash",
    "semi; rm -rf /",
    "glob *",
    "ünïcödé ✓",
    "{index}",
    "",
    "-n",
]

SHELLS = [pytest.param({"BATCHKIT_NO_BASH": "1"}, id="sh"), pytest.param({}, id="bash")]


def run_row(files: JobFiles, row: int, env: dict[str, str] | None = None) -> int:
    proc = subprocess.run(
        ["/bin/sh", str(files.wrapper), str(files.directory), str(row)],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )
    return proc.returncode


def echo_args_spec(args: list[str], **kw: object) -> bk.JobSpec:
    code = "import json, os, sys; print(json.dumps([sys.argv[1:], os.environ.get('NASTY')]))"
    return bk.JobSpec([sys.executable, "-c", code, *args], **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("shell_env", SHELLS)
def test_arguments_and_env_arrive_verbatim(tmp_path: Path, shell_env: dict[str, str]) -> None:
    import json

    Path("/tmp/batchkit-pwned").unlink(missing_ok=True)
    specs = [echo_args_spec(NASTY, env={"NASTY": value}) for value in NASTY]
    files = LocalFileFactory().create(specs, tmp_path / "b", cwd=str(tmp_path))
    for row in range(len(specs)):
        assert run_row(files, row, shell_env) == 0
        out, _ = files.log_paths(row)
        args, env_value = json.loads(out.read_text())
        assert args == [a.replace("{index}", str(row)) for a in NASTY]
        assert env_value == NASTY[row]
    assert not Path("/tmp/batchkit-pwned").exists()


@pytest.mark.parametrize("shell_env", SHELLS)
def test_index_attempt_and_markers(tmp_path: Path, shell_env: dict[str, str]) -> None:
    spec = bk.JobSpec(["sh", "-c", 'echo "$BATCHKIT_INDEX $BATCHKIT_ATTEMPT $BATCHKIT_JOB_NAME"; exit 3'], name="n x")
    files = LocalFileFactory().create([spec, spec], tmp_path / "b", indices=[40, 41], attempts=[2, 5])
    assert run_row(files, 1, shell_env) == 3
    out, err = files.log_paths(41)
    assert out.read_text() == "41 5 n x\n"
    marker = read_exit_marker(files.directory / "markers" / "41.exit")
    assert marker is not None
    assert (marker.exit_code, marker.step) == (3, "command")
    start = (files.directory / "markers" / "41.start").read_text()
    assert "attempt=5" in start and "host=" in start
    assert "exit code 3" in err.read_text()


def test_runs_in_submit_directory_without_files(tmp_path: Path) -> None:
    workdir = tmp_path / "work dir"
    workdir.mkdir()
    files = LocalFileFactory().create([bk.JobSpec(["sh", "-c", "pwd > here.txt"])], tmp_path / "b", cwd=str(workdir))
    assert run_row(files, 0) == 0
    assert (workdir / "here.txt").read_text().strip() == str(workdir)


def test_stage_in_and_out(tmp_path: Path) -> None:
    src = tmp_path / "in put.txt"
    src.write_text("payload\n")
    dest = tmp_path / "results" / "out_0.txt"
    spec = bk.JobSpec(
        ["sh", "-c", 'tr a-z A-Z < data.txt > result.txt; pwd > where.txt; test "$PWD" != "$0"', tmp_path],
        inputs={"data.txt": str(src)},
        outputs={"result.txt": str(tmp_path / "results" / "out_{index}.txt"), "where.txt": f"file://{tmp_path}/w.txt"},
    )
    files = LocalFileFactory().create([spec], tmp_path / "b")
    assert run_row(files, 0) == 0
    assert dest.read_text() == "PAYLOAD\n"
    scratch = (tmp_path / "w.txt").read_text().strip()
    assert scratch.startswith(os.environ.get("TMPDIR", "/tmp"))
    assert not Path(scratch).exists()  # scratch removed afterwards


def test_missing_input_fails_in_stage_in(tmp_path: Path) -> None:
    spec = bk.JobSpec(["sh", "-c", "echo ran > ran.txt"], inputs={"x": str(tmp_path / "missing")})
    files = LocalFileFactory().create([spec], tmp_path / "b")
    assert run_row(files, 0) == 241
    marker = read_exit_marker(files.directory / "markers" / "0.exit")
    assert marker is not None and marker.step == "stagein"
    assert "stage-in of x" in marker.reason


def test_missing_output_fails_without_partial_destination(tmp_path: Path) -> None:
    spec = bk.JobSpec(["true"], outputs={"never.txt": str(tmp_path / "never.txt")})
    files = LocalFileFactory().create([spec], tmp_path / "b")
    assert run_row(files, 0) == 243
    marker = read_exit_marker(files.directory / "markers" / "0.exit")
    assert marker is not None and "not produced" in marker.reason
    assert list(tmp_path.glob("never.txt*")) == []


def test_failed_command_skips_stage_out(tmp_path: Path) -> None:
    spec = bk.JobSpec(["sh", "-c", "echo partial > o.txt; exit 7"], outputs={"o.txt": str(tmp_path / "o.txt")})
    files = LocalFileFactory().create([spec], tmp_path / "b")
    assert run_row(files, 0) == 7
    assert not (tmp_path / "o.txt").exists()


def test_setup_script(tmp_path: Path) -> None:
    setup = tmp_path / "setup.sh"
    setup.write_text("export FROM_SETUP='set up ok'\n")
    spec = bk.JobSpec(["sh", "-c", 'echo "$FROM_SETUP"'])
    files = LocalFileFactory().create([spec], tmp_path / "b", setup_script=setup)
    assert run_row(files, 0) == 0
    assert files.log_paths(0)[0].read_text() == "set up ok\n"
    (files.directory / "setup.sh").write_text("false\n")
    assert run_row(files, 0) == 244


def test_unknown_row_and_missing_program(tmp_path: Path) -> None:
    files = LocalFileFactory().create([bk.JobSpec(["no-such-program-xyz"])], tmp_path / "b")
    assert run_row(files, 5) == 245
    assert run_row(files, 0) == 127
    marker = read_exit_marker(files.directory / "markers" / "0.exit")
    assert marker is not None and "not found" in marker.reason


def test_walltime_watchdog(tmp_path: Path) -> None:
    spec = bk.JobSpec(["sleep", "30"], resources=bk.Resources(walltime=1))
    files = LocalFileFactory().create([spec], tmp_path / "b")
    code = run_row(files, 0)
    assert code in (128 + 15, 143)
    marker = read_exit_marker(files.directory / "markers" / "0.exit")
    assert marker is not None and "walltime" in marker.reason


def test_row_tables_are_chunked(tmp_path: Path) -> None:
    specs = [bk.JobSpec(["sh", "-c", "echo $BATCHKIT_INDEX"]) for _ in range(600)]
    files = LocalFileFactory().create(specs, tmp_path / "b")
    assert [p.name for p in files.tables] == ["0.sh", "1.sh", "2.sh"]
    assert run_row(files, 599) == 0
    assert files.log_paths(599)[0].read_text() == "599\n"


def test_render_row_is_quoted() -> None:
    from batchkit.jobfiles import JobRow

    row = JobRow(0, 3, 1, bk.JobSpec(["echo", "a'b"], env={"X": "$(x)"}), "/tmp")
    text = render_row(row)
    assert "export X='$(x)'" in text
    assert "bk_run echo 'a'\"'\"'b'" in text


def test_dash_is_really_used() -> None:
    assert shutil.which("sh")


RUN_ARGS = [
    "{index}",
    "x{index}y",
    "{{index}}",
    "{{{index}}}",
    "it's {index}",
    '"{index}"',
    "$HOME{index}",
    "`{index}`",
    "",
]


@pytest.mark.parametrize("shell_env", SHELLS)
def test_runs_of_identical_rows_render_once_and_substitute_in_the_shell(
    tmp_path: Path, shell_env: dict[str, str]
) -> None:
    import json

    from batchkit.model import substitute_index

    spec = echo_args_spec(RUN_ARGS)  # one template object for every row
    n = 300  # crosses the 256-row chunk boundary
    files = LocalFileFactory().create([spec] * n, tmp_path / "b", indices=[1000 + i for i in range(n)])
    tables = [p.read_text() for p in files.tables]
    assert sum(t.count("bk_command()") for t in tables) == 2  # one block per chunk, not 300 branches
    for row in (0, 1, 255, 256, 299):
        assert run_row(files, row, shell_env) == 0
        index = 1000 + row
        args, _ = json.loads(files.log_paths(index)[0].read_text())
        assert args == [substitute_index(a, index) for a in RUN_ARGS]
    assert run_row(files, 300, shell_env) == 245  # beyond the batch


def test_mixed_rows_keep_their_own_attempts_and_specs(tmp_path: Path) -> None:
    a = bk.JobSpec(["sh", "-c", 'echo "a $BATCHKIT_INDEX $BATCHKIT_ATTEMPT"'])
    b = bk.JobSpec(["sh", "-c", 'echo "b $BATCHKIT_INDEX $BATCHKIT_ATTEMPT"'])
    specs = [a, a, b, a, a, a]
    files = LocalFileFactory().create(specs, tmp_path / "b", indices=[0, 1, 2, 3, 7, 8], attempts=[1, 1, 1, 1, 2, 2])
    expected = ["a 0 1", "a 1 1", "b 2 1", "a 3 1", "a 7 2", "a 8 2"]
    for row, text in enumerate(expected):
        assert run_row(files, row) == 0
        assert files.log_paths(int(text.split()[1]))[0].read_text() == text + "\n"
