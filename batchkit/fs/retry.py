"""Retries with backoff and failover across the base URLs of one logical location.

The rule callers may rely on: only :class:`~batchkit.errors.TransientTransferError` (a
timeout, a refused or dropped connection, a busy server, HTTP 5xx) is retried. Everything
else -- no such file, permission denied, a bad URL, a checksum mismatch that is *not* caused
by a dropped connection -- is raised at once, because trying again cannot help.

With several candidate URLs (a :class:`~batchkit.fs.Location` with several bases), a
transient failure moves on to the next base immediately; only after every base failed in one
round does the loop sleep (``backoff``, then ``backoff * factor``, ... up to ``max_delay``).
``attempts`` counts rounds, so with two bases and ``attempts=3`` each base is tried three times.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Sequence
from typing import Callable, TypeVar

import attrs

from batchkit.errors import TransientTransferError
from batchkit.fs.url import URL

log = logging.getLogger(__name__)

T = TypeVar("T")


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if value < 0:
        raise ValueError(f"{attribute.name} must be >= 0, got {value}")


@attrs.frozen
class RetryPolicy:
    """How often and how patiently transient failures are retried.

    ``timeout`` is the limit of one protocol operation in seconds (a whole file transfer has
    no limit of its own; a stalled one fails through the protocol's own stall detection).
    The defaults can be changed for a whole process with ``BATCHKIT_FS_ATTEMPTS``,
    ``BATCHKIT_FS_BACKOFF`` and ``BATCHKIT_FS_TIMEOUT``.
    """

    attempts: int = attrs.field(default=3, validator=attrs.validators.ge(1))
    backoff: float = attrs.field(default=1.0, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=attrs.validators.ge(1.0))
    max_delay: float = attrs.field(default=30.0, validator=_positive)
    timeout: float = attrs.field(default=60.0, validator=attrs.validators.gt(0))

    def delay(self, failed_rounds: int) -> float:
        """Seconds to sleep after ``failed_rounds`` (1, 2, ...) rounds failed."""
        return min(self.max_delay, self.backoff * self.factor ** max(0, failed_rounds - 1))

    @classmethod
    def from_env(cls) -> RetryPolicy:
        env = os.environ
        return cls(
            attempts=int(env.get("BATCHKIT_FS_ATTEMPTS", "3")),
            backoff=float(env.get("BATCHKIT_FS_BACKOFF", "1.0")),
            timeout=float(env.get("BATCHKIT_FS_TIMEOUT", "60")),
        )


def default_policy() -> RetryPolicy:
    return RetryPolicy.from_env()


def with_failover(
    candidates: Sequence[URL],
    operation: Callable[[URL], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """``operation(url)`` on the first candidate that works; see the module docstring."""
    if not candidates:
        raise ValueError("no candidate URLs")
    last: TransientTransferError | None = None
    for round_no in range(1, policy.attempts + 1):
        for url in candidates:
            try:
                return operation(url)
            except TransientTransferError as exc:
                last = exc
                log.info("transient failure on %s (round %d/%d): %s", url.display(), round_no, policy.attempts, exc)
        if round_no < policy.attempts:
            sleep(policy.delay(round_no))
    assert last is not None
    raise gave_up(last, policy.attempts, len(candidates))


def gave_up(error: TransientTransferError, rounds: int, bases: int) -> TransientTransferError:
    """``error`` restated with how often it was tried, keeping the original as the cause."""
    tries = f"{rounds} attempt{'s' if rounds != 1 else ''}" + (f" on each of {bases} bases" if bases > 1 else "")
    message = str(error)
    if error.url and message.startswith(error.url + ": "):
        message = message[len(error.url) + 2 :]
    final = type(error)(f"{message} (gave up after {tries})", error.url)
    final.__cause__ = error
    return final
