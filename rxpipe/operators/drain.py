"""Draining: batches close as soon as the stages after them are free for them.

The source hands its batches over and goes on; one worker thread runs everything downstream,
and each time it is free it takes *all* the ticks waiting (up to ``max_ticks``) as its next
batch. At low load a tick waits for nothing but the batch in progress; under load the waiting
ticks pile up while a batch is processed, so batches grow and the per-batch costs are shared by
more ticks. This is the batching of LMAX's disruptor and of Kafka's producer: a busy worker's
next batch is whatever piled up, not what a timer allows.

When the worker is free, a batch lingers (Kafka's ``linger.ms``) until it is worth its fixed
costs (every rule runs once per batch, whatever its size): it closes once it holds
``close_ticks`` ticks, or at the latest ``max_ms`` after its first tick; a worker that was busy
longer than that adds no wait. A fast stream fills a batch in a few milliseconds (128 ticks:
2.6 ms at 50 k ticks/s), a slow one makes at most one batch per ``max_ms`` instead of one per
hand-over (a simulator handing over a tick a millisecond cost a quarter of a core in per-batch
work without a linger).

Ticks waiting are bounded (``max_waiting``): past that, the source blocks until the worker
catches up (back-pressure, as when the stages ran on the source's own thread).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import reactivex as rx
from reactivex.abc import DisposableBase, ObserverBase, SchedulerBase
from reactivex.disposable import CompositeDisposable, Disposable

from rxpipe.model import TickBatch


class _Handoff:
    """What the source has handed over and the worker has not taken yet."""

    def __init__(self, max_waiting: int, close_ticks: int, linger_s: float) -> None:
        self.cond = threading.Condition()
        self.batches: list[TickBatch] = []
        self.ticks = 0
        self.first_at = 0.0  # when the first of the waiting ticks arrived (monotonic)
        self.max_waiting = max_waiting
        self.close_ticks = close_ticks
        self.linger_s = linger_s
        self.ended: Exception | bool = False  # True: completed; an exception: failed
        self.stopped = False  # disposed: drop everything

    def put(self, batch: TickBatch) -> None:
        with self.cond:
            while self.ticks >= self.max_waiting and not self.stopped:
                self.cond.wait()
            if not self.stopped:
                if not self.batches:
                    self.first_at = time.monotonic()
                self.batches.append(batch)
                self.ticks += len(batch)
                self.cond.notify_all()

    def end(self, how: Exception | bool) -> None:
        with self.cond:
            self.ended = how
            self.cond.notify_all()

    def take(self) -> tuple[TickBatch | None, Exception | bool]:
        """Everything waiting (None when nothing is), or how the stream ended once it is all
        taken; blocks while there is neither."""
        with self.cond:
            while not self.batches and not self.ended and not self.stopped:
                self.cond.wait()
            while self.batches and not self.ended and not self.stopped:
                left = self.first_at + self.linger_s - time.monotonic()
                if left <= 0 or self.ticks >= self.close_ticks:
                    break
                self.cond.wait(left)
            if self.stopped:
                return None, False
            if not self.batches:
                return None, self.ended
            out = TickBatch.concat(self.batches)
            self.batches.clear()
            self.ticks = 0
            self.cond.notify_all()
            return out, False

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.batches.clear()
            self.cond.notify_all()


def drain(
    max_ticks: int = 4096,
    max_ms: float = 0.0,
    close_ticks: int | None = None,
    max_waiting: int | None = None,
) -> Callable[[rx.Observable[TickBatch]], rx.Observable[TickBatch]]:
    """Rx operator: emit, on a worker thread of its own, everything that arrived while the
    previous batch was processed (and, when the worker is free, until the batch holds
    ``close_ticks`` or ``max_ms`` has passed since its first tick), in batches of at most
    ``max_ticks``; every tick, in order.

    >>> import reactivex as rx
    >>> from reactivex import operators as ops
    >>> b = TickBatch.from_arrays(symbol=[0] * 3, ts=[1, 2, 3], price=[1.0] * 3, volume=[1.0] * 3)
    >>> out = rx.from_iterable([b] * 3).pipe(drain(4), ops.to_list()).run()
    >>> sum(len(x) for x in out), max(len(x) for x in out) <= 4
    (9, True)
    """
    waiting_limit = max_waiting if max_waiting is not None else 16 * max_ticks

    def _drain(source: rx.Observable[TickBatch]) -> rx.Observable[TickBatch]:
        def subscribe(
            observer: ObserverBase[TickBatch], scheduler: SchedulerBase | None = None
        ) -> DisposableBase:
            enough = max_ticks if close_ticks is None else min(close_ticks, max_ticks)
            handoff = _Handoff(waiting_limit, enough, max_ms / 1000.0)

            def work() -> None:
                while True:
                    batch, ended = handoff.take()
                    if batch is None:
                        if isinstance(ended, Exception):
                            observer.on_error(ended)
                        elif ended:
                            observer.on_completed()
                        return
                    try:
                        for lo in range(0, len(batch), max_ticks):
                            observer.on_next(batch.take(slice(lo, lo + max_ticks)))
                    except Exception as exc:  # a stage failed: the stream ends with its error
                        handoff.stop()
                        observer.on_error(exc)
                        return

            def on_next(batch: TickBatch) -> None:
                if len(batch):
                    handoff.put(batch)

            worker = threading.Thread(target=work, name="rxpipe-pipeline", daemon=True)
            worker.start()
            sub = source.subscribe(
                on_next, handoff.end, lambda: handoff.end(True), scheduler=scheduler
            )
            return CompositeDisposable(sub, Disposable(handoff.stop))

        return rx.create(subscribe)

    return _drain
