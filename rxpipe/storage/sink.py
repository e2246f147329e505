"""The tick sink: writer threads that coalesce batches into large, durable transactions."""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable

import psycopg

from rxpipe.errors import StorageError
from rxpipe.model import TickBatch
from rxpipe.signals import SignalBatch
from rxpipe.storage.gather import Flushes, gather
from rxpipe.storage.ticks import TickStore

log = logging.getLogger(__name__)


class _Lane:
    """One writer thread with its own connection and queue."""

    def __init__(self, factory: Callable[[], TickStore], coalesce: int, name: str) -> None:
        self.factory = factory
        self.coalesce = coalesce
        self.queue: deque[TickBatch] = deque()
        self.pending = 0
        self.first_at = 0.0  # when the oldest queued batch arrived
        self.busy = False
        self.closing = False
        self.cond = threading.Condition()
        self.flushes = Flushes(self.cond)
        self.stored = 0
        self.duplicates = 0
        self.failures = 0
        self.last_error: str | None = None
        self.thread = threading.Thread(target=self._run, name=name, daemon=True)
        self.thread.start()

    def put(self, batch: TickBatch, max_pending: int) -> None:
        with self.cond:
            if self.closing:
                raise StorageError("the tick sink is closed")
            while self.pending >= max_pending and not self.closing:
                self.cond.wait(0.5)
            if not self.queue:
                self.first_at = time.monotonic()
            self.queue.append(batch)
            self.pending += len(batch)
            self.cond.notify_all()

    def idle(self) -> bool:
        return not self.queue and not self.busy

    def _take(self) -> TickBatch | None:
        with self.cond:
            while not self.queue:
                if self.closing:
                    return None
                self.cond.wait()
            gather(
                self.cond,
                self.first_at,
                lambda: self.pending >= self.coalesce or self.closing or bool(self.flushes),
            )
            parts: list[TickBatch] = []
            size = 0
            while self.queue and (not parts or size + len(self.queue[0]) <= self.coalesce):
                b = self.queue.popleft()
                parts.append(b)
                size += len(b)
            self.busy = True
            return TickBatch.concat(parts)

    def _write(self, store: TickStore | None, batch: TickBatch) -> tuple[TickStore, int, int]:
        """Write ``batch``, reconnecting and retrying with backoff until it is committed."""
        backoff = 0.2
        while True:
            try:
                if store is None:
                    store = self.factory()
                result = store.write(batch)
                return store, result.stored, result.duplicates
            except (psycopg.Error, StorageError) as exc:
                self.failures += 1
                self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("tick write failed (%s); retrying in %.1fs", self.last_error, backoff)
                if store is not None:
                    store.conn.close()
                    store = None
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _run(self) -> None:
        store: TickStore | None = None
        while (batch := self._take()) is not None:
            store, stored, duplicates = self._write(store, batch)
            with self.cond:
                self.stored += stored
                self.duplicates += duplicates
                self.last_error = None
                self.pending -= len(batch)
                self.busy = False
                self.cond.notify_all()
        if store is not None:
            store.conn.close()


class TickSink:
    """Takes batches from the pipeline and writes them on threads of their own.

    Symbols are spread over ``writers`` lanes, each with its own connection, so PostgreSQL
    can use more than one core; a symbol always goes to the same lane, which keeps its ticks in
    order. ``put`` never touches the database and blocks only when a lane has more than
    ``max_pending`` ticks waiting (back-pressure). Batches waiting together are written in one
    transaction; a failed write is retried with backoff and never dropped. :attr:`stored`
    counts acknowledged (committed) ticks.
    """

    def __init__(
        self,
        store_factory: Callable[[], TickStore],
        *,
        writers: int = 2,
        max_pending: int = 1 << 20,
        coalesce: int = 1 << 18,
    ) -> None:
        if writers < 1:
            raise ValueError("writers must be at least 1")
        self.max_pending = max_pending
        self._lanes = [
            _Lane(store_factory, coalesce, f"rxpipe-tick-writer-{i}") for i in range(writers)
        ]
        self._closed = False

    @property
    def stored(self) -> int:
        return sum(lane.stored for lane in self._lanes)

    @property
    def duplicates(self) -> int:
        return sum(lane.duplicates for lane in self._lanes)

    @property
    def pending(self) -> int:
        return sum(lane.pending for lane in self._lanes)

    @property
    def failures(self) -> int:
        return sum(lane.failures for lane in self._lanes)

    @property
    def last_error(self) -> str | None:
        return next((lane.last_error for lane in self._lanes if lane.last_error), None)

    def put(self, batch: TickBatch | SignalBatch) -> None:
        if isinstance(batch, SignalBatch):
            batch = batch.ticks
        if len(batch) == 0:
            return
        n = len(self._lanes)
        if n == 1:
            self._lanes[0].put(batch, self.max_pending)
            return
        lane_of = batch.symbol % n
        for i, lane in enumerate(self._lanes):
            part = batch.take(lane_of == i)
            if len(part):
                lane.put(part, self.max_pending)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything put so far is committed; False if ``timeout`` ran out."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return all(lane.flushes.wait_idle(lane.idle, deadline) for lane in self._lanes)

    def close(self, timeout: float | None = None) -> bool:
        """Flush, then stop the writer threads."""
        done = self.flush(timeout)
        for lane in self._lanes:
            with lane.cond:
                lane.closing = True
                lane.cond.notify_all()
        for lane in self._lanes:
            lane.thread.join(timeout=1.0 if not done else timeout)
        return done
