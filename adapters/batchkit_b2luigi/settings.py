"""The b2luigi settings this adapter reads, validated once per task start.

Every value comes from :func:`b2luigi.get_setting` with ``task=task``, so the usual b2luigi
lookup order applies: a task attribute/property/parameter of the same name wins over
:func:`b2luigi.set_setting`, which wins over ``settings.json``. Settings that decide *where the
job record lives and how it is supervised* (backend, backend options, retries, record
directory) form a :class:`GroupKey`: tasks with equal keys share one batchkit submission, so
their jobs are submitted together and queried with one scheduler call per poll.

Settings read (all optional):

``batchkit_backend``
    batchkit backend name (``"local"``, ``"slurm"``, ``"htcondor"``, ...). Default ``"local"``.
``batchkit_options``
    mapping of options for the backend's JobManager (``{"partition": "short"}`` for Slurm,
    ``{"max_parallel": 4}`` for local). Default ``{}``.
``batchkit_resources``
    mapping for :class:`batchkit.Resources`: ``cpus``, ``memory`` ("2GB"), ``walltime``
    ("1:00:00"), ``gpus``, ``disk``. Default: the site's defaults.
``batchkit_job_options``
    per-job backend options (:attr:`batchkit.JobSpec.backend_options`), e.g. a partition
    for one task only; such jobs still share the group's record and its status query.
``batchkit_retries``
    how often batchkit resubmits a failed job before b2luigi sees the failure. Default 0.
``batchkit_record_dir``
    where the job record lives. Default ``<task_file_dir>/batchkit`` (b2luigi's
    ``task_file_dir`` setting, default ``task_files`` next to the script).

Worker-wide (read without a task, once per group): ``batchkit_poll_interval`` (seconds
between status queries, default 5), ``batchkit_submit_window`` (seconds starts are collected
into one submission, default 2; 0 submits every task at once), ``batchkit_on_interrupt``
(``"cancel"`` or ``"keep"``; default: the backend's policy -- local jobs are stopped,
batch jobs keep running).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Mapping
from typing import Any

import attrs
from b2luigi.core.settings import get_setting
from b2luigi.core.utils import map_folder

from batchkit.errors import SpecError
from batchkit.model import Resources

DEFAULT_BACKEND = "local"
DEFAULT_POLL_INTERVAL = 5.0
DEFAULT_SUBMIT_WINDOW = 2.0

_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_MISSING = object()


def setting(key: str, task: object | None, default: Any) -> Any:
    """``b2luigi.get_setting`` with a default that may be ``None`` or ``False``.

    b2luigi treats ``default=None`` as "required" and raises; a private sentinel avoids that.
    """
    value = get_setting(key, default=_MISSING, task=task)
    return default if value is _MISSING else value


def _mapping(value: Any, what: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(f"b2luigi setting {what} must be a mapping (a dict), got {value!r}")
    for key in value:
        if not isinstance(key, str):
            raise SpecError(f"b2luigi setting {what}: keys must be strings, got {key!r}")
    return dict(value)


def _seconds(value: Any, what: str, default: float) -> float:
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SpecError(f"b2luigi setting {what} must be a non-negative number of seconds, got {value!r}")
    return float(value)


@attrs.frozen
class GroupKey:
    """What decides which submission (job record) a task's job goes into.

    Equal keys -> same record directory -> jobs submitted together and queried together.
    ``options_json`` is the canonical JSON of the backend options, so a key is hashable and
    its directory name is stable across restarts of the b2luigi process.
    """

    record_dir: str
    backend: str
    options_json: str
    retries: int

    @property
    def options(self) -> dict[str, Any]:
        value: dict[str, Any] = json.loads(self.options_json)
        return value

    @property
    def directory(self) -> str:
        """``<record_dir>/<backend>-<hash of options and retries>``: stable across restarts."""
        digest = hashlib.sha1(f"{self.options_json}|{self.retries}".encode()).hexdigest()[:10]
        return os.path.join(self.record_dir, f"{self.backend}-{digest}")


@attrs.frozen
class TaskJobSettings:
    """Everything read from b2luigi's settings to turn one task into one batchkit job."""

    group: GroupKey
    resources: Resources
    job_options: dict[str, Any] = attrs.field(hash=False)
    shell: str
    working_dir: str
    env_script: str
    env: dict[str, str] = attrs.field(hash=False)


@attrs.frozen
class WorkerSettings:
    """Settings of the polling/submitting machinery, shared by all tasks of a group."""

    poll_interval: float = DEFAULT_POLL_INTERVAL
    submit_window: float = DEFAULT_SUBMIT_WINDOW
    on_interrupt: str | None = None


def options_json(options: Mapping[str, Any]) -> str:
    """Canonical JSON of backend options; a :class:`SpecError` if they are not JSON values."""
    try:
        return json.dumps(dict(options), sort_keys=True, separators=(",", ":"))
    except (TypeError, ValueError) as exc:
        raise SpecError(f"b2luigi setting batchkit_options must hold JSON values only: {exc}") from exc


def env_overrides(value: Any) -> dict[str, str]:
    """b2luigi's ``env`` setting, checked: variable names and string values only."""
    env = _mapping(value, "env")
    for key, val in env.items():
        if not _ENV_NAME_RE.match(key):
            raise SpecError(f"b2luigi setting env: {key!r} is not a valid environment variable name")
        if not isinstance(val, str) or "\x00" in val:
            raise SpecError(f"b2luigi setting env: value of {key} must be a string, got {val!r}")
    return env


def default_record_dir(task: object) -> str:
    """``<task_file_dir>/batchkit`` with b2luigi's rules for relative paths (next to the script)."""
    base = map_folder(setting("task_file_dir", task, "task_files"))
    return os.path.join(os.path.abspath(base), "batchkit")


def read_task_settings(task: object) -> TaskJobSettings:
    """Read and validate every per-task setting; :class:`SpecError` names the bad one."""
    backend = setting("batchkit_backend", task, DEFAULT_BACKEND)
    if not isinstance(backend, str) or not backend:
        raise SpecError(f"b2luigi setting batchkit_backend must be a backend name, got {backend!r}")
    retries = setting("batchkit_retries", task, 0)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise SpecError(f"b2luigi setting batchkit_retries must be a non-negative integer, got {retries!r}")
    record_dir = setting("batchkit_record_dir", task, None) or default_record_dir(task)
    group = GroupKey(
        record_dir=os.path.abspath(map_folder(str(record_dir))),
        backend=backend,
        options_json=options_json(_mapping(setting("batchkit_options", task, {}), "batchkit_options")),
        retries=retries,
    )
    resources = Resources.from_dict(_mapping(setting("batchkit_resources", task, {}), "batchkit_resources"))
    shell = setting("shell", task, "bash")
    if not isinstance(shell, str) or not re.match(r"^[A-Za-z0-9_.+-]+$", shell):
        raise SpecError(f"b2luigi setting shell must be the name of a shell in /bin, got {shell!r}")
    env_script = setting("env_script", task, "") or ""
    if not isinstance(env_script, str):
        raise SpecError(f"b2luigi setting env_script must be the path of a script, got {env_script!r}")
    working_dir = setting("working_dir", task, None)
    working_dir = map_folder(str(working_dir)) if working_dir else script_directory()
    return TaskJobSettings(
        group=group,
        resources=resources,
        job_options=_mapping(setting("batchkit_job_options", task, {}), "batchkit_job_options"),
        shell=shell,
        working_dir=os.path.abspath(working_dir),
        env_script=env_script,
        env=env_overrides(setting("env", task, {})),
    )


def read_worker_settings() -> WorkerSettings:
    """The worker-wide settings (read once, when a group is first used)."""
    policy = setting("batchkit_on_interrupt", None, None)
    if policy not in (None, "cancel", "keep"):
        raise SpecError(f"b2luigi setting batchkit_on_interrupt must be 'cancel' or 'keep', got {policy!r}")
    return WorkerSettings(
        poll_interval=_seconds(
            setting("batchkit_poll_interval", None, None), "batchkit_poll_interval", DEFAULT_POLL_INTERVAL
        ),
        submit_window=_seconds(
            setting("batchkit_submit_window", None, None), "batchkit_submit_window", DEFAULT_SUBMIT_WINDOW
        ),
        on_interrupt=policy,
    )


def script_directory() -> str:
    """b2luigi's default working directory of a job: the directory of the task file."""
    from b2luigi.core.utils import get_filename

    return os.path.dirname(os.path.abspath(str(get_filename())))
