"""Hold back Ctrl+C while a submission round is being recorded.

law writes the new job ids into its jobs JSON right after the submit call returns. A Ctrl+C in
between would leave jobs running that the jobs JSON does not know, and the next ``law run``
would submit them again. :func:`deferred_interrupt` postpones the first SIGINT until the block
(submit + dump) is over; a second SIGINT interrupts at once, so a hanging scheduler command can
still be abandoned.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any


@contextmanager
def deferred_interrupt() -> Iterator[None]:
    """Run the block with the first SIGINT postponed to its end (main thread only, else a no-op)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous: Any = signal.getsignal(signal.SIGINT)
    if previous is None:  # installed outside Python: restore Python's default afterwards
        previous = signal.default_int_handler

    def _handler(signum: int, frame: FrameType | None) -> None:
        if received:  # second Ctrl+C: give up waiting
            signal.signal(signal.SIGINT, previous)
            raise KeyboardInterrupt
        received.append(signum)

    signal.signal(signal.SIGINT, _handler)
    try:
        yield
    finally:
        if signal.getsignal(signal.SIGINT) is _handler:
            signal.signal(signal.SIGINT, previous)
    if received:
        raise KeyboardInterrupt
