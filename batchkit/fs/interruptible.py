"""Run a blocking library call so that the calling thread stays interruptible.

The XRootD and gfal2 bindings block inside C for the whole transfer, where Python cannot
deliver Ctrl+C. The call therefore runs in a worker thread while the caller waits in short
steps: a ``KeyboardInterrupt`` (or any other exception) in the caller sets ``cancel``, asks the
library to stop (``on_cancel``), waits for the worker to finish and re-raises -- so a copy is
never left running behind the caller's back, and its temporary file can be cleaned up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


def run_interruptible(
    work: Callable[[], T],
    cancel: threading.Event,
    on_cancel: Callable[[], None] | None = None,
    name: str = "batchkit-transfer",
) -> T:
    """Return ``work()``, run in a worker thread; its exception is re-raised here.

    ``on_cancel`` is called whenever ``cancel`` is set while the work runs (by another thread
    or by an exception in this one).
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def run() -> None:
        try:
            box["value"] = work()
        except BaseException as exc:  # re-raised in the caller's thread below
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=run, name=name, daemon=True)
    worker.start()
    try:
        while not done.wait(0.25):
            if cancel.is_set() and on_cancel is not None:
                on_cancel()
    except BaseException:
        cancel.set()
        if on_cancel is not None:
            on_cancel()
        worker.join()
        raise
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value
