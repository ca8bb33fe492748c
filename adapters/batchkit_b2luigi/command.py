"""What a b2luigi task runs on the node: b2luigi's own batch-runner command, as an argv list.

b2luigi's batch systems write ``executable_wrapper.sh`` per task (``cd working_dir``,
``source env_script``, ``export`` the ``env`` setting, ``exec`` the command from
:func:`b2luigi.core.utils.create_cmd_from_task`) and point the scheduler's stdout/stderr at
``get_log_file_dir(task)/stdout|stderr``. This module does the same with one difference: no
user value is ever pasted into shell code. A fixed launcher script (:data:`LAUNCHER`) gets
every value as a positional argument, and batchkit's job table quotes the argv, so an ``env``
value like ``it's`` arrives verbatim (b2luigi's own wrapper breaks on it).

The command itself is b2luigi's: ``create_cmd_from_task`` returns *shell words* by contract
(its ``--param`` tokens are already ``shlex``-quoted, ``executable_prefix`` may hold several
words), so they are split exactly as a shell would split them, without expansions.
"""

from __future__ import annotations

import os
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from b2luigi.core.utils import create_cmd_from_task, get_log_file_dir

from batchkit.errors import SpecError
from batchkit.model import JobSpec
from batchkit_b2luigi.settings import TaskJobSettings, setting

#: The launcher run by ``/bin/<shell> -c``. Arguments: stdout file, stderr file, working
#: directory, env script ('' for none), ``NAME=value``... , ``--``, the command's argv.
#: The env script is sourced inside a function so it sees no positional arguments (like
#: b2luigi's wrapper, where ``$@`` is empty), and ``set -e`` makes a failing setup fail the job.
LAUNCHER = """set -e
bk_out=$1 bk_err=$2 bk_wd=$3 bk_setup=$4
shift 4
exec >"$bk_out" 2>"$bk_err"
cd "$bk_wd"
echo 'Working in the folder:'; pwd
bk_source() { bk_script=$1; shift; . "$bk_script"; }
if [ -n "$bk_setup" ]; then echo "Setting up the environment: $bk_setup"; bk_source "$bk_setup"; fi
while [ "$#" -gt 0 ] && [ "$1" != "--" ]; do export "$1"; shift; done
[ "$#" -gt 0 ] && shift
echo 'Will now execute the program'
exec "$@"
"""

#: ``$0`` of the launcher (shows up in ``ps`` and in shell error messages).
LAUNCHER_NAME = "b2luigi-job"


def launcher_argv(
    shell: str,
    stdout: str,
    stderr: str,
    working_dir: str,
    env_script: str,
    env: Mapping[str, str],
    command: Sequence[str],
) -> list[str]:
    """The argv that runs ``command`` the way b2luigi's executable wrapper would (pure)."""
    if not command:
        raise SpecError("b2luigi produced an empty job command")
    return [
        f"/bin/{shell}",
        "-c",
        LAUNCHER,
        LAUNCHER_NAME,
        stdout,
        stderr,
        working_dir,
        env_script,
        *(f"{key}={value}" for key, value in env.items()),
        "--",
        *command,
    ]


def escape_braces(text: str) -> str:
    """``text`` protected from batchkit's ``{index}`` substitution in job commands (pure).

    :class:`batchkit.JobSpec` replaces ``{index}`` and reads ``{{``/``}}`` as literal braces;
    doubling every brace makes any value (a JSON task parameter, say) arrive unchanged.
    """
    return text.replace("{", "{{").replace("}", "}}")


def shell_words(words: Sequence[Any]) -> list[str]:
    """b2luigi's command words as the shell would split them (no expansions; pure)."""
    try:
        return shlex.split(" ".join(str(w) for w in words))
    except ValueError as exc:
        raise SpecError(f"cannot split b2luigi's job command {list(words)!r}: {exc}") from exc


def log_files(task: Any) -> tuple[str, str]:
    """``<log dir>/stdout`` and ``<log dir>/stderr``: where b2luigi users look for a job's output."""
    log_dir = os.path.abspath(get_log_file_dir(task))
    return os.path.join(log_dir, "stdout"), os.path.join(log_dir, "stderr")


def task_job_spec(task: Any, settings: TaskJobSettings) -> JobSpec:
    """The batchkit job that runs ``task`` through b2luigi's batch runner.

    Creates the task's log directory (the launcher writes ``stdout``/``stderr`` there).
    """
    if setting("apptainer_image", task, ""):
        raise SpecError(
            "the batchkit batch system does not run apptainer_image tasks; use batch_system='local' "
            "or one of b2luigi's own batch systems for them"
        )
    stdout, stderr = log_files(task)
    os.makedirs(os.path.dirname(stdout), exist_ok=True)
    argv = launcher_argv(
        settings.shell,
        stdout,
        stderr,
        settings.working_dir,
        settings.env_script,
        settings.env,
        shell_words(create_cmd_from_task(task)),
    )
    return JobSpec(
        command=[escape_braces(arg) for arg in argv],
        name=task.task_id,
        resources=settings.resources,
        backend_options=settings.job_options,
    )
