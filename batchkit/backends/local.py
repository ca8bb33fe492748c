"""The local backend: jobs are real processes on this machine.

Design, so that a killed supervisor never takes jobs down with it:

* ``submit`` registers the batch (``<state_dir>/runs/<run_id>`` -> batch directory), writes
  ``run.json`` into the batch directory and starts a *runner* (:mod:`local_runner`) in its
  own session. The runner launches the rows one by one, each in its own session, as soon as
  a slot is free, then exits; the jobs live on without it.
* Slots are lock files (``flock``) under ``<state_dir>/slots`` (``max_parallel`` of them,
  default: CPU count, shared by every local job of the user on this machine) and, when the
  submission caps ``parallel_jobs``, under ``<state_dir>/groups/<tag>``. The job process
  inherits the lock's file descriptor, so a slot is busy exactly as long as the job runs --
  including after a ``kill -9`` of anything else.
* The state of a row is read from files: ``pids/<row>`` (pid and kernel start time, so a
  reused pid is not mistaken for the job), the wrapper's ``markers/<index>.exit``, and
  ``cancel/<row>``. ``query`` needs no process of ours to be alive; if the runner died before
  launching every row, ``query`` starts a new one (it skips rows already launched).

Job ids are ``<run_id>.<row>``, e.g. ``"3f9a0c1d2e.17"``.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from batchkit.backends.base import JobManager
from batchkit.errors import BackendError, SpecError
from batchkit.jobfiles import JobFileFactory, JobFiles
from batchkit.model import JobInfo, JobStatus

RUN_FILE = "run.json"
DESCRIPTION_FILE = "local.json"


def default_state_dir() -> Path:
    """Where local runs are registered: ``$BATCHKIT_LOCAL_STATE`` or the user's cache."""
    env = os.environ.get("BATCHKIT_LOCAL_STATE")
    if env:
        return Path(env)
    cache = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(cache) / "batchkit" / "local"


class LocalFileFactory(JobFileFactory):
    """Wrapper + table, plus ``local.json`` naming the rows' indices."""

    walltime_watchdog = True  # nothing else enforces walltime on a local process

    def render_submit(self, files: JobFiles) -> list[Path]:
        path = files.directory / DESCRIPTION_FILE
        data = {
            "tag": files.tag,
            "indices": [r.index for r in files.rows],
            "wrapper": str(files.wrapper),
        }
        _write_json(path, data)
        return [path]


@attrs.frozen
class ExitMarker:
    """The wrapper's ``markers/<index>.exit`` file, parsed."""

    exit_code: int
    end: float | None
    step: str
    reason: str


def parse_marker(text: str) -> dict[str, str]:
    """Parse ``key=value key=value ... reason=free text`` (``reason`` is always last)."""
    text = text.strip()
    out: dict[str, str] = {}
    head, sep, reason = text.partition(" reason=")
    if not sep and text.startswith("reason="):
        head, reason = "", text[len("reason=") :]
    for part in head.split():
        key, eq, value = part.partition("=")
        if eq:
            out[key] = value
    if sep or text.startswith("reason="):
        out["reason"] = reason.strip()
    return out


def read_exit_marker(path: Path) -> ExitMarker | None:
    """The exit marker at ``path``, or None if there is none (yet) or it is unreadable."""
    try:
        fields = parse_marker(path.read_text())
        return ExitMarker(
            exit_code=int(fields["exit"]),
            end=float(fields["end"]) if fields.get("end") else None,
            step=fields.get("step", ""),
            reason=fields.get("reason", ""),
        )
    except (OSError, KeyError, ValueError):
        return None


def info_from_exit_marker(job_id: str, marker: ExitMarker, cancelled: bool = False) -> JobInfo:
    """Map an exit marker to a JobInfo (shared by every backend's marker fallback)."""
    if cancelled and marker.exit_code != 0:
        return JobInfo(job_id, JobStatus.CANCELLED, marker.exit_code, "cancelled", "CANCELLED")
    if marker.exit_code == 0:
        return JobInfo(job_id, JobStatus.FINISHED, 0, None, "EXITED")
    reason = marker.reason or f"exit code {marker.exit_code}"
    if marker.step and marker.step not in ("command", "done") and marker.step not in reason:
        reason = f"{reason} (in {marker.step})"
    return JobInfo(job_id, JobStatus.FAILED, marker.exit_code, reason, "EXITED")


def process_start_time(pid: int) -> str | None:
    """Kernel start time of ``pid`` (clock ticks since boot), None if it is gone or a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            stat = fh.read()
    except OSError:
        return None
    fields = stat[stat.rfind(")") + 2 :].split()
    if fields[0] in ("Z", "X"):
        return None
    return fields[19]


def is_alive(pid: int, start_time: str | None) -> bool:
    """True if ``pid`` runs and is the same process as when ``start_time`` was taken."""
    if os.path.isdir("/proc/self"):
        current = process_start_time(pid)
        return current is not None and (start_time is None or current == start_time)
    try:  # pragma: no cover - systems without /proc
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class LocalJobManager(JobManager):
    """Run jobs as detached processes on this machine, at most ``max_parallel`` at once."""

    name = "local"
    required_tools = ("sh",)
    interrupt_policy = "cancel"
    submit_options = ("parallel_jobs", "group")

    def __init__(
        self,
        max_parallel: int | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        kill_grace: float = 10.0,
    ) -> None:
        if max_parallel is not None and (not isinstance(max_parallel, int) or max_parallel < 1):
            raise SpecError(f"local backend: max_parallel must be a positive integer, got {max_parallel!r}")
        self.max_parallel = max_parallel or os.cpu_count() or 1
        self.state_dir = Path(state_dir) if state_dir is not None else default_state_dir()
        self.kill_grace = kill_grace
        self.file_factory = LocalFileFactory()

    # ------------------------------------------------------------------ submit
    def submit_files(self, files: JobFiles) -> list[str]:
        options = dict(files.options)
        unknown = set(options) - set(self.submit_options)
        if unknown:
            raise SpecError(f"local backend: unknown submit option(s) {sorted(unknown)}")
        run_id = secrets.token_hex(5)
        runs = self.state_dir / "runs"
        runs.mkdir(parents=True, exist_ok=True)
        (runs / run_id).symlink_to(files.directory)
        group_slots: dict[str, Any] | None = None
        if options.get("parallel_jobs"):
            group = str(options.get("group") or files.tag)
            group_slots = {"dir": str(self.state_dir / "groups" / group), "count": int(options["parallel_jobs"])}
        run = {
            "run_id": run_id,
            "rows": len(files.rows),
            "indices": [r.index for r in files.rows],
            "tag": files.tag,
            "slots": {"dir": str(self.state_dir / "slots"), "count": self.max_parallel},
            "group_slots": group_slots,
            "python": sys.executable,
        }
        _write_json(files.directory / RUN_FILE, run)
        start_runner(files.directory)
        return [f"{run_id}.{r.row}" for r in files.rows]

    # ------------------------------------------------------------------ query
    def query(self, job_ids: Sequence[str]) -> dict[str, JobInfo]:
        result: dict[str, JobInfo] = {}
        for run_id, rows in _group_ids(job_ids).items():
            run = self._open_run(run_id)
            if run is None:
                for _row, job_id in rows.items():
                    result[job_id] = JobInfo(job_id, JobStatus.UNKNOWN, None, "no such local run", None)
                continue
            result.update(run.states(rows))
        return result

    def find(self, tag: str, directory: str | os.PathLike[str]) -> dict[int, JobInfo]:
        path = Path(directory)
        try:
            run = json.loads((path / RUN_FILE).read_text())
        except (OSError, ValueError):
            return {}
        if run.get("tag") != tag:
            return {}
        run_id = run["run_id"]
        rows = {row: f"{run_id}.{row}" for row in range(int(run["rows"]))}
        handle = self._open_run(run_id)
        if handle is None:
            return {}
        infos = handle.states(rows)
        return {row: infos[job_id] for row, job_id in rows.items()}

    # ------------------------------------------------------------------ cancel / cleanup
    def cancel(self, job_ids: Sequence[str]) -> None:
        victims: list[tuple[int, str | None]] = []
        for run_id, rows in _group_ids(job_ids).items():
            run = self._open_run(run_id)
            if run is None:
                continue
            victims.extend(run.mark_cancelled(rows))
        for pid, start in victims:
            if is_alive(pid, start):
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + self.kill_grace
        while victims and time.monotonic() < deadline:
            victims = [(p, s) for p, s in victims if is_alive(p, s)]
            if victims:
                time.sleep(0.05)
        for pid, _start in victims:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pid, signal.SIGKILL)

    def cleanup(self, job_ids: Sequence[str]) -> None:
        for run_id in _group_ids(job_ids):
            link = self.state_dir / "runs" / run_id
            with contextlib.suppress(FileNotFoundError):
                link.unlink()

    def _open_run(self, run_id: str) -> _Run | None:
        link = self.state_dir / "runs" / run_id
        try:
            directory = Path(os.readlink(link))
            data = json.loads((directory / RUN_FILE).read_text())
        except (OSError, ValueError):
            return None
        return _Run(directory, data)


class _Run:
    """One registered local batch: reads its rows' state from files."""

    def __init__(self, directory: Path, data: Mapping[str, Any]) -> None:
        self.directory = directory
        self.data = data
        self.indices: list[int] = list(data["indices"])

    def states(self, rows: Mapping[int, str]) -> dict[str, JobInfo]:
        pids_dir = self.directory / "pids"
        cancel_dir = self.directory / "cancel"
        markers_dir = self.directory / "markers"
        launched = set(_listdir(pids_dir))
        cancelled = set(_listdir(cancel_dir))
        markers = set(_listdir(markers_dir))
        all_cancelled = "all" in cancelled
        runner_alive: bool | None = None
        result: dict[str, JobInfo] = {}
        for row, job_id in rows.items():
            if not 0 <= row < len(self.indices):
                result[job_id] = JobInfo(job_id, JobStatus.UNKNOWN, None, "no such row", None)
                continue
            index = self.indices[row]
            is_cancelled = all_cancelled or str(row) in cancelled
            if f"{index}.exit" in markers:
                marker = read_exit_marker(markers_dir / f"{index}.exit")
                if marker is not None:
                    result[job_id] = info_from_exit_marker(job_id, marker, is_cancelled)
                    continue
            if str(row) in launched:
                pid, start = _read_pid(pids_dir / str(row))
                if pid is not None and is_alive(pid, start):
                    result[job_id] = JobInfo(job_id, JobStatus.RUNNING, None, None, "RUNNING")
                    continue
                marker = read_exit_marker(markers_dir / f"{index}.exit")  # it may have just ended
                if marker is not None:
                    result[job_id] = info_from_exit_marker(job_id, marker, is_cancelled)
                elif is_cancelled:
                    result[job_id] = JobInfo(job_id, JobStatus.CANCELLED, None, "cancelled", "CANCELLED")
                else:
                    reason = "job process ended without writing an exit marker (killed?)"
                    result[job_id] = JobInfo(job_id, JobStatus.FAILED, None, reason, "LOST")
                continue
            if is_cancelled:
                result[job_id] = JobInfo(job_id, JobStatus.CANCELLED, None, "cancelled before it started", "CANCELLED")
                continue
            if runner_alive is None:
                runner_alive = runner_running(self.directory)
                if not runner_alive:  # the runner died before launching everything: restart it
                    start_runner(self.directory)
                    runner_alive = True
            result[job_id] = JobInfo(job_id, JobStatus.PENDING, None, None, "QUEUED")
        return result

    def mark_cancelled(self, rows: Mapping[int, str]) -> list[tuple[int, str | None]]:
        cancel_dir = self.directory / "cancel"
        cancel_dir.mkdir(exist_ok=True)
        victims = []
        for row in rows:
            (cancel_dir / str(row)).touch()
            pid, start = _read_pid(self.directory / "pids" / str(row))
            if pid is not None:
                victims.append((pid, start))
        return victims


def start_runner(directory: Path) -> None:
    """Start a detached runner for the batch in ``directory`` (it exits when all launched)."""
    log = open(directory / "runner.log", "ab")  # noqa: SIM115 - handed to the child
    try:
        subprocess.Popen(
            [sys.executable, "-m", "batchkit.backends.local_runner", str(directory)],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=log,
            start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise BackendError(f"cannot start the local runner for {directory}: {exc}") from exc
    finally:
        log.close()


def runner_running(directory: Path) -> bool:
    """True if a runner holds the batch's ``runner.lock``."""
    try:
        fd = os.open(directory / "runner.lock", os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _group_ids(job_ids: Sequence[str]) -> dict[str, dict[int, str]]:
    groups: dict[str, dict[int, str]] = {}
    for job_id in job_ids:
        run_id, _, row = str(job_id).rpartition(".")
        if not run_id or not row.isdigit():
            raise SpecError(f"{job_id!r} is not a local job id (expected '<run>.<row>')")
        groups.setdefault(run_id, {})[int(row)] = job_id
    return groups


def _listdir(path: Path) -> Iterator[str]:
    try:
        yield from os.listdir(path)
    except FileNotFoundError:
        return


def _read_pid(path: Path) -> tuple[int | None, str | None]:
    try:
        parts = path.read_text().split()
        return int(parts[0]), (parts[1] if len(parts) > 1 else None)
    except (OSError, ValueError, IndexError):
        return None, None


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, path)
