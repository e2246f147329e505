"""The tick sink: a writer thread that coalesces batches into large, durable transactions."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import psycopg

from rxpipe.errors import StorageError
from rxpipe.model import TickBatch
from rxpipe.storage.ticks import TickStore

log = logging.getLogger(__name__)


class TickSink:
    """Takes batches from the pipeline and writes them on a thread of its own.

    ``put`` never touches the database; it blocks only when more than ``max_pending`` ticks
    wait (back-pressure). Batches waiting together are written in one transaction. A failed
    write is retried with backoff and never dropped. :attr:`stored` counts acknowledged
    (committed) ticks.
    """

    def __init__(
        self,
        store_factory: Callable[[], TickStore],
        *,
        max_pending: int = 1 << 21,
        coalesce: int = 1 << 18,
    ) -> None:
        self._factory = store_factory
        self.max_pending = max_pending
        self.coalesce = coalesce
        self._queue: deque[TickBatch] = deque()
        self._pending = 0
        self._busy = False
        self._closing = False
        self._cond = threading.Condition()
        self.stored = 0
        self.duplicates = 0
        self.failures = 0
        self.last_error: str | None = None
        self.last_write_s = 0.0
        self._thread = threading.Thread(target=self._run, name="rxpipe-tick-writer", daemon=True)
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._pending

    def put(self, batch: TickBatch) -> None:
        if len(batch) == 0:
            return
        with self._cond:
            if self._closing:
                raise StorageError("the tick sink is closed")
            while self._pending >= self.max_pending and not self._closing:
                self._cond.wait(0.5)
            self._queue.append(batch)
            self._pending += len(batch)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything put so far is committed; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._cond.wait(left if left is None else min(left, 0.5))
        return True

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the writer thread."""
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0 if not done else timeout)
        return done

    def _take(self) -> TickBatch | None:
        with self._cond:
            while not self._queue:
                if self._closing:
                    return None
                self._cond.wait()
            parts: list[TickBatch] = []
            size = 0
            while self._queue and (not parts or size + len(self._queue[0]) <= self.coalesce):
                b = self._queue.popleft()
                parts.append(b)
                size += len(b)
            self._busy = True
            return TickBatch.concat(parts)

    def _run(self) -> None:
        store: TickStore | None = None
        while True:
            batch = self._take()
            if batch is None:
                break
            backoff = 0.2
            while True:
                try:
                    if store is None:
                        store = self._factory()
                    t0 = time.perf_counter()
                    result = store.write(batch)
                    self.last_write_s = time.perf_counter() - t0
                    break
                except (psycopg.Error, StorageError) as exc:
                    self.failures += 1
                    self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.warning(
                        "tick write failed (%s); retrying in %.1fs", self.last_error, backoff
                    )
                    if store is not None:
                        store.conn.close()
                        store = None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            with self._cond:
                self.stored += result.stored
                self.duplicates += result.duplicates
                self.last_error = None
                self._pending -= len(batch)
                self._busy = False
                self._cond.notify_all()
        if store is not None:
            store.conn.close()
