"""Reading the adapter's b2luigi settings, with b2luigi's own lookup order (task attribute first)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import b2luigi
import pytest
from b2luigi.core.settings import with_new_settings
from batchkit_b2luigi.settings import (
    DEFAULT_POLL_INTERVAL,
    DEFAULT_SUBMIT_WINDOW,
    read_task_settings,
    read_worker_settings,
)

from batchkit.errors import SpecError


class Plain(b2luigi.Task):
    n = b2luigi.IntParameter(default=0)


class BigMemory(b2luigi.Task):
    batchkit_resources = {"memory": "8GB"}
    batchkit_options = {"partition": "long"}


class PerParameter(b2luigi.Task):
    n = b2luigi.IntParameter()

    @property
    def batchkit_resources(self) -> dict[str, int]:
        return {"cpus": self.n}


@pytest.fixture(autouse=True)
def settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("B2LUIGI_TASK_FILE", str(tmp_path / "project" / "tasks.py"))
    monkeypatch.delenv("B2LUIGI_SETTINGS_JSON", raising=False)
    monkeypatch.chdir(tmp_path)
    with with_new_settings():
        yield tmp_path


def test_defaults(settings: Path) -> None:
    s = read_task_settings(Plain())
    assert s.group.backend == "local"
    assert s.group.options == {} and s.group.retries == 0
    # relative paths are resolved next to the task file, like b2luigi does for its directories
    assert s.group.record_dir == str(settings / "project" / "task_files" / "batchkit")
    assert s.working_dir == str(settings / "project")
    assert s.resources.memory is None and s.resources.cpus == 1
    assert (s.shell, s.env_script, s.env, s.job_options) == ("bash", "", {}, {})
    w = read_worker_settings()
    assert (w.poll_interval, w.submit_window, w.on_interrupt) == (DEFAULT_POLL_INTERVAL, DEFAULT_SUBMIT_WINDOW, None)


def test_global_settings_and_task_attributes_which_win(settings: Path) -> None:
    b2luigi.set_setting("batchkit_backend", "slurm")
    b2luigi.set_setting("batchkit_options", {"partition": "short", "account": "belle"})
    b2luigi.set_setting("batchkit_resources", {"memory": "2GB", "walltime": "1:00:00"})
    b2luigi.set_setting("task_file_dir", "tf")
    b2luigi.set_setting("working_dir", "/data/run")
    plain, big = read_task_settings(Plain()), read_task_settings(BigMemory())
    assert plain.group.backend == big.group.backend == "slurm"
    assert plain.group.options == {"partition": "short", "account": "belle"}
    assert plain.resources.memory == 2 * 10**9 and plain.resources.walltime == 3600
    assert plain.group.record_dir == str(settings / "project" / "tf" / "batchkit")
    assert plain.working_dir == "/data/run"
    # the task's attribute replaces the whole setting (b2luigi does not merge dicts)
    assert big.group.options == {"partition": "long"}
    assert big.resources.memory == 8 * 10**9 and big.resources.walltime is None
    # different backend options -> a different record (and status query); same -> shared
    assert big.group != plain.group and big.group.directory != plain.group.directory
    assert read_task_settings(Plain(n=3)).group == plain.group
    assert read_task_settings(PerParameter(n=4)).resources.cpus == 4


def test_group_directory_is_stable_and_depends_on_options_and_retries(settings: Path) -> None:
    b2luigi.set_setting("batchkit_options", {"b": 1, "a": [1, 2]})
    first = read_task_settings(Plain()).group
    b2luigi.set_setting("batchkit_options", {"a": [1, 2], "b": 1})  # same options, other order
    assert read_task_settings(Plain()).group.directory == first.directory
    b2luigi.set_setting("batchkit_retries", 2)
    assert read_task_settings(Plain()).group.directory != first.directory
    assert first.directory.startswith(first.record_dir + "/local-")


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("batchkit_backend", "", "batchkit_backend"),
        ("batchkit_options", ["partition=short"], "batchkit_options"),
        ("batchkit_options", {"when": object()}, "JSON"),
        ("batchkit_resources", {"ram": "2GB"}, "unknown field"),
        ("batchkit_resources", {"memory": "lots"}, "memory"),
        ("batchkit_job_options", "partition=short", "batchkit_job_options"),
        ("batchkit_retries", -1, "batchkit_retries"),
        ("batchkit_retries", True, "batchkit_retries"),
        ("env", {"1BAD": "x"}, "env"),
        ("env", {"GOOD": 3}, "env"),
        ("shell", "bash; rm -rf /", "shell"),
        ("env_script", ["setup.sh"], "env_script"),
    ],
)
def test_bad_task_settings_name_the_setting(key: str, value: object, message: str) -> None:
    b2luigi.set_setting(key, value)
    with pytest.raises(SpecError, match=message):
        read_task_settings(Plain())


@pytest.mark.parametrize(
    ("key", "value"),
    [("batchkit_on_interrupt", "stop"), ("batchkit_poll_interval", -1), ("batchkit_submit_window", "2s")],
)
def test_bad_worker_settings_name_the_setting(key: str, value: object) -> None:
    b2luigi.set_setting(key, value)
    with pytest.raises(SpecError, match=key):
        read_worker_settings()


def test_worker_settings(settings: Path) -> None:
    b2luigi.set_setting("batchkit_on_interrupt", "keep")
    b2luigi.set_setting("batchkit_poll_interval", 30)
    b2luigi.set_setting("batchkit_submit_window", 0)
    w = read_worker_settings()
    assert (w.poll_interval, w.submit_window, w.on_interrupt) == (30.0, 0.0, "keep")
