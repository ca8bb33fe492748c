"""The local backend's runner: ``python -m batchkit.backends.local_runner BATCH_DIR``.

Started detached by :class:`~batchkit.backends.local.LocalJobManager`. It holds
``runner.lock`` while it works (so two runners never launch the same batch), then for every
row not launched and not cancelled: waits for a free slot, starts
``sh wrapper.sh BATCH_DIR ROW`` in a new session with the slot locks on fds 8 and 9,
records ``pids/<row>`` and moves on. It exits once every row is launched; the jobs do not
need it.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from batchkit.backends.local import process_start_time

POLL = 0.05
SLOT_FDS = (9, 8)  # the wrapper's watchdog closes these (see wrapper.sh)


def try_slot(directory: str, count: int) -> int | None:
    """Lock one of ``count`` slot files in ``directory``; return the locked fd or None."""
    os.makedirs(directory, exist_ok=True)
    for slot in range(count):
        fd = os.open(os.path.join(directory, f"{slot}.lock"), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return fd
    return None


def acquire_slots(run: dict[str, Any], cancelled: Any) -> list[int] | None:
    """Block until a slot (and a group slot, if capped) is free; None if cancelled meanwhile."""
    specs = [run["slots"]] + ([run["group_slots"]] if run.get("group_slots") else [])
    while True:
        fds: list[int] = []
        for spec in specs:
            fd = try_slot(spec["dir"], int(spec["count"]))
            if fd is None:
                break
            fds.append(fd)
        if len(fds) == len(specs):
            return fds
        for fd in fds:
            os.close(fd)
        if cancelled():
            return None
        _reap()
        time.sleep(POLL)


def _reap() -> None:
    """Collect exited children so they do not linger as zombies while we run."""
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return
    except ChildProcessError:
        return


def launch(directory: Path, row: int, fds: list[int]) -> int:
    """Start row ``row`` with the slot locks on fixed fds, record and return its pid."""
    for target, fd in zip(SLOT_FDS, fds):
        os.dup2(fd, target)
        os.close(fd)
    passed = SLOT_FDS[: len(fds)]
    sched_log = directory / "logs"
    sched_log.mkdir(exist_ok=True)
    with open(sched_log / f"row{row}.runner.log", "ab") as out:
        proc = subprocess.Popen(
            ["/bin/sh", str(directory / "wrapper.sh"), str(directory), str(row)],
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
            start_new_session=True,
            pass_fds=passed,
            cwd=str(directory),
        )
    for fd in passed:
        os.close(fd)
    start = process_start_time(proc.pid) or ""
    pid_file = directory / "pids" / str(row)
    tmp = pid_file.with_name(f"{row}.tmp")
    tmp.write_text(f"{proc.pid} {start}\n")
    os.replace(tmp, pid_file)
    return proc.pid


def reset_signals() -> None:
    """Give the jobs a clean signal state, whatever the submitting process had.

    Blocked signals and ignored dispositions survive exec: a job started from a process with
    SIGTERM blocked or ignored (gfal2 blocks nearly all signals in the thread that creates its
    context; ``nohup`` ignores SIGHUP) could not be cancelled gracefully, because a shell cannot
    trap a signal that was ignored when it started. The wrapper traps TERM, INT and HUP itself.
    """
    signal.pthread_sigmask(signal.SIG_SETMASK, [])
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_DFL)


def main(argv: list[str]) -> int:
    reset_signals()
    directory = Path(argv[1])
    run = json.loads((directory / "run.json").read_text())
    lock_fd = os.open(directory / "runner.lock", os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(lock_fd, fcntl.LOCK_EX)  # a second runner waits, then finds nothing to do
    (directory / "pids").mkdir(exist_ok=True)
    cancel_dir = directory / "cancel"

    for row in range(int(run["rows"])):

        def cancelled(row: int = row) -> bool:
            return (cancel_dir / "all").exists() or (cancel_dir / str(row)).exists()

        if (directory / "pids" / str(row)).exists() or cancelled():
            continue
        fds = acquire_slots(run, cancelled)
        if fds is None:
            continue
        pid = launch(directory, row, fds)
        if cancelled():  # a cancel raced with the launch: it may have missed the pid file
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
        _reap()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
