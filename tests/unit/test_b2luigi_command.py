"""The job command of a b2luigi task: b2luigi's batch-runner words, run by a fixed launcher.

The launcher is executed for real with /bin/bash and /bin/sh (dash here): these tests check
what a job sees -- working directory, sourced env script, exported ``env`` values (including
ones b2luigi's own wrapper cannot quote), its stdout/stderr files and its exit code.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import b2luigi
import pytest
from b2luigi.core.settings import with_new_settings
from batchkit_b2luigi.command import escape_braces, launcher_argv, shell_words, task_job_spec
from batchkit_b2luigi.settings import read_task_settings

from batchkit.errors import SpecError
from batchkit.model import JobSpec

TRICKY = ["it's", 'say "hi"', "$HOME `id` $(id)", "{index}", "{{index}}", "a}b{c", "}}", "{", "new\nline", "*"]


class Echo(b2luigi.Task):
    text = b2luigi.Parameter()


@pytest.fixture
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Fresh b2luigi settings; the task file is tmp_path/tasks.py (relative paths resolve there)."""
    monkeypatch.setenv("B2LUIGI_TASK_FILE", str(tmp_path / "tasks.py"))
    monkeypatch.delenv("B2LUIGI_SETTINGS_JSON", raising=False)
    monkeypatch.chdir(tmp_path)
    with with_new_settings():
        b2luigi.set_setting("log_dir", str(tmp_path / "logs"))
        b2luigi.set_setting("task_file_dir", str(tmp_path / "task_files"))
        yield tmp_path


def run_launcher(tmp_path: Path, shell: str, command: list[str], env: dict[str, str], setup: str = "") -> int:
    argv = launcher_argv(
        shell, str(tmp_path / "stdout"), str(tmp_path / "stderr"), str(tmp_path / "wd"), setup, env, command
    )
    (tmp_path / "wd").mkdir(exist_ok=True)
    return subprocess.run(argv, cwd="/", env={"PATH": os.environ["PATH"], "HOME": "/root"}, timeout=30).returncode


@pytest.mark.parametrize("shell", ["bash", "sh"])
def test_launcher_runs_the_command_in_working_dir_with_env_after_setup(tmp_path: Path, shell: str) -> None:
    setup = tmp_path / "setup with space.sh"
    # the env script sees no arguments (like in b2luigi's wrapper) and its variables survive;
    # the env setting is applied after it, so it overrides
    setup.write_text('echo "setup got $# args"\nexport FROM_SETUP=yes OVERRIDDEN=setup\n')
    env = {f"V{i}": value for i, value in enumerate(TRICKY)}
    env["OVERRIDDEN"] = "env"
    script = 'pwd; echo "$FROM_SETUP $OVERRIDDEN"; for v in ' + " ".join(f"V{i}" for i in range(len(TRICKY)))
    script += "; do printenv $v; echo; done; echo err >&2; exit 7"
    rc = run_launcher(tmp_path, shell, ["/bin/sh", "-c", script], env, str(setup))
    assert rc == 7
    out = (tmp_path / "stdout").read_text()
    assert f"\n{tmp_path / 'wd'}\n" in out
    assert "setup got 0 args" in out
    assert "yes env\n" in out
    values = out.split("yes env\n", 1)[1].split("\n\n")[: len(TRICKY)]
    assert values == TRICKY
    assert (tmp_path / "stderr").read_text() == "err\n"


def test_launcher_fails_when_the_env_script_fails_and_never_runs_the_command(tmp_path: Path) -> None:
    setup = tmp_path / "setup.sh"
    setup.write_text("false\necho unreachable\n")
    rc = run_launcher(tmp_path, "bash", ["/bin/sh", "-c", "echo ran > ran.txt"], {}, str(setup))
    assert rc != 0
    assert not (tmp_path / "wd" / "ran.txt").exists()
    assert "unreachable" not in (tmp_path / "stdout").read_text()


def test_launcher_passes_arguments_verbatim(tmp_path: Path) -> None:
    rc = run_launcher(tmp_path, "bash", ["/usr/bin/printf", "<%s>\\n", *TRICKY], {})
    assert rc == 0
    out = (tmp_path / "stdout").read_text()
    assert out.endswith("".join(f"<{t}>\n" for t in TRICKY))


def test_escaped_braces_survive_batchkit_index_substitution() -> None:
    spec = JobSpec(command=["x", *(escape_braces(t) for t in TRICKY)])
    assert list(spec.resolved(5).command[1:]) == TRICKY


def test_shell_words_undo_b2luigi_quoting_of_cli_mode_parameters(settings: Path) -> None:
    b2luigi.set_setting("__batch_runner_use_cli", True)
    b2luigi.set_setting("__batch_runner_task_file", str(settings / "my tasks.py"))
    from b2luigi.core.utils import create_cmd_from_task

    words = shell_words(create_cmd_from_task(Echo(text="a b 'c' {index} $HOME")))
    assert words[words.index("--param") + 1] == "text=a b 'c' {index} $HOME"
    assert words[words.index("--task-file") + 1] == str(settings / "my tasks.py")


def test_task_job_spec_runs_b2luigis_batch_runner_named_by_task_id(settings: Path) -> None:
    b2luigi.set_setting("batchkit_resources", {"memory": "1GB", "cpus": 2})
    b2luigi.set_setting("env", {"QUOTED": "it's"})
    b2luigi.set_setting("executable", ["/opt/py/bin/python3"])
    task = Echo(text="hello")
    spec = task_job_spec(task, read_task_settings(task))
    assert spec.name == task.task_id
    assert spec.resources.cpus == 2 and spec.resources.memory == 10**9
    command = list(spec.resolved(0).command)
    assert command[-5:] == ["/opt/py/bin/python3", "tasks.py", "--batch-runner", "--task-id", task.task_id]
    assert "QUOTED=it's" in command
    log_dir = settings / "logs" / "text=hello" / "Echo"
    assert str(log_dir / "stdout") in command and str(log_dir / "stderr") in command
    assert log_dir.is_dir()  # created up front: the launcher writes its output there
    assert str(settings) in command  # working_dir defaults to the task file's directory


def test_task_job_spec_refuses_apptainer_tasks(settings: Path) -> None:
    b2luigi.set_setting("apptainer_image", "/cvmfs/some/image.sif")
    task = Echo(text="x")
    with pytest.raises(SpecError, match="apptainer"):
        task_job_spec(task, read_task_settings(task))
