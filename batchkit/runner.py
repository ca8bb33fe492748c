"""The one place that starts scheduler commands.

Every backend runs ``sbatch``, ``squeue``, ``condor_q``... through :func:`run_command`, which

* takes an argv list (never a shell string, never ``shell=True``);
* enforces a timeout (the process is killed, and the failure counts as transient);
* retries transient failures with exponential backoff, where "transient" is decided by
  the caller's patterns (e.g. Slurm's "Socket timed out") plus timeouts;
* logs each argv at debug level, with values of options named like secrets masked;
* counts calls per program in :data:`CALL_COUNTS`, which the tests and benchmarks read to
  prove "one status query per poll".
"""

from __future__ import annotations

import collections
import logging
import os
import re
import subprocess
import threading
import time
from collections.abc import Iterable, Mapping, Sequence

import attrs

from batchkit.errors import CommandError, CommandTimeoutError, TransientCommandError

log = logging.getLogger(__name__)

#: How many times each program (by basename) was started in this process.
CALL_COUNTS: collections.Counter[str] = collections.Counter()
_COUNT_LOCK = threading.Lock()

_SECRET_RE = re.compile(r"(token|password|passwd|secret|proxy|key)", re.IGNORECASE)

#: Default time limit of one scheduler command, in seconds.
DEFAULT_TIMEOUT = 120.0


@attrs.frozen
class CommandResult:
    """What a finished command printed and returned."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    seconds: float


def redact(argv: Sequence[str]) -> list[str]:
    """argv with the value after any secret-looking option replaced by ``***``.

    Covers ``--token X``, ``--token=X`` and ``-p X`` style options whose name looks like a
    credential, so logs never carry a bearer token or a proxy password.
    """
    out: list[str] = []
    hide_next = False
    for arg in argv:
        if hide_next:
            out.append("***")
            hide_next = False
            continue
        if arg.startswith("-") and _SECRET_RE.search(arg):
            if "=" in arg:
                out.append(arg.split("=", 1)[0] + "=***")
            else:
                out.append(arg)
                hide_next = True
            continue
        out.append(arg)
    return out


def run_command(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    retries: int = 0,
    backoff: float = 1.0,
    max_backoff: float = 30.0,
    transient: Iterable[str] = (),
    check: bool = True,
    ok_returncodes: Iterable[int] = (0,),
    env: Mapping[str, str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
    input: str | None = None,
) -> CommandResult:
    """Run ``argv`` and return what it printed.

    ``transient`` holds substrings (case-insensitive) of stdout/stderr that mark a failure as
    worth retrying; a timeout always is. Up to ``retries`` further attempts are made, waiting
    ``backoff * 2**n`` seconds (capped at ``max_backoff``) in between. With ``check`` a
    non-zero exit raises :class:`CommandError` (or :class:`TransientCommandError` once the
    retries of a transient failure are used up); without it the result is returned as is.
    """
    argv = [os.fspath(a) for a in argv]
    patterns = [p.lower() for p in transient]
    ok = set(ok_returncodes)
    full_env = None if env is None else {**os.environ, **env}
    attempt = 0
    while True:
        attempt += 1
        with _COUNT_LOCK:
            CALL_COUNTS[os.path.basename(argv[0])] += 1
        log.debug("running %s", redact(argv))
        start = time.monotonic()
        try:
            proc = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=timeout,
                env=full_env,
                cwd=cwd,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
                errors="replace",
            )
        except FileNotFoundError as exc:
            raise CommandError(argv, None, message=f"command not found: {argv[0]} ({exc.strerror})") from exc
        except PermissionError as exc:
            raise CommandError(argv, None, message=f"cannot execute {argv[0]}: {exc.strerror}") from exc
        except subprocess.TimeoutExpired as exc:
            error: CommandError = CommandTimeoutError(
                argv,
                None,
                _text(exc.stdout),
                _text(exc.stderr),
                message=f"`{' '.join(redact(argv)[:6])}` did not finish within {timeout:g} s (killed)",
            )
        else:
            seconds = time.monotonic() - start
            result = CommandResult(tuple(argv), proc.returncode, proc.stdout, proc.stderr, seconds)
            if proc.returncode in ok or not check:
                return result
            text = (proc.stdout + "\n" + proc.stderr).lower()
            if any(p in text for p in patterns):
                error = TransientCommandError(argv, proc.returncode, proc.stdout, proc.stderr)
            else:
                raise CommandError(redact(argv), proc.returncode, proc.stdout, proc.stderr)
        if attempt > retries:
            raise error
        delay = min(max_backoff, backoff * 2 ** (attempt - 1))
        log.warning("transient failure of %s (%s); retrying in %.1f s", argv[0], error, delay)
        time.sleep(delay)


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value
