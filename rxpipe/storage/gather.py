"""Group commit: a writer thread lets what arrives within a short window become one transaction.

A live pipeline hands its writers a small batch every few milliseconds. Written one by one,
each costs a transaction (a few round trips and a commit) and the Python that drives it, on
threads that share the GIL with the pipeline: at 50 k ticks/s the writers used more of the
interpreter than the pipeline itself, and ticks waited for it. Gathering for ``GATHER_S``
turns that into a transaction or two per window. Nothing waits on a write to be processed
(alerts reach their listeners before they are stored); only the "stored" counters lag by at
most the window, and a full queue or a flush writes at once.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

GATHER_S = 0.05


def gather(
    cond: threading.Condition,
    first_at: float,
    now_or_never: Callable[[], bool],
    window_s: float = GATHER_S,
) -> None:
    """With ``cond`` held, wait until ``window_s`` has passed since ``first_at`` (a
    ``time.monotonic()`` reading: when the oldest waiting item arrived) or ``now_or_never()``
    says to write at once (a full queue, a flush, closing). ``cond`` must be notified when that
    can change."""
    while not now_or_never():
        left = first_at + window_s - time.monotonic()
        if left <= 0:
            return
        cond.wait(left)


class Flushes:
    """Callers waiting in a writer's ``flush()``: while there are any, the writer writes at once.

    ``bool(flushes)`` is what the writer's gather asks; ``wait_idle`` is its ``flush``.
    """

    def __init__(self, cond: threading.Condition) -> None:
        self.cond = cond
        self.waiting = 0

    def __bool__(self) -> bool:
        return self.waiting > 0

    def wait_idle(self, idle: Callable[[], bool], deadline: float | None) -> bool:
        """Wait until ``idle()`` (checked under ``cond``), or False once ``deadline`` (a
        ``time.monotonic()`` reading; None: no limit) has passed."""
        with self.cond:
            self.waiting += 1
            self.cond.notify_all()
            try:
                while not idle():
                    left = None if deadline is None else deadline - time.monotonic()
                    if left is not None and left <= 0:
                        return False
                    self.cond.wait(0.5 if left is None else min(left, 0.5))
            finally:
                self.waiting -= 1
        return True
