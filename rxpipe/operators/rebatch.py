"""Re-batching: batches close at ``max_ticks`` ticks or ``max_ms`` milliseconds, whichever first."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import reactivex as rx
from reactivex.abc import DisposableBase, ObserverBase, SchedulerBase
from reactivex.disposable import CompositeDisposable, SerialDisposable
from reactivex.scheduler import TimeoutScheduler

from rxpipe.model import TickBatch


def rebatch(
    max_ticks: int = 4096, max_ms: float = 50.0, scheduler: SchedulerBase | None = None
) -> Callable[[rx.Observable[TickBatch]], rx.Observable[TickBatch]]:
    """Rx operator: coalesce small batches and split large ones.

    Every emitted batch has at most ``max_ticks`` ticks, and no tick waits longer than about
    ``max_ms`` for its batch to close. A batch of exactly ``max_ticks`` passes through as is.

    >>> import reactivex as rx
    >>> from reactivex import operators as ops
    >>> small = [TickBatch.from_arrays(symbol=[0] * 3, ts=[1, 2, 3], price=[1.0] * 3,
    ...                                volume=[1.0] * 3)] * 3
    >>> [len(b) for b in rx.from_iterable(small).pipe(rebatch(4), ops.to_list()).run()]
    [4, 4, 1]
    """

    def _rebatch(source: rx.Observable[TickBatch]) -> rx.Observable[TickBatch]:
        def subscribe(
            observer: ObserverBase[TickBatch], default: SchedulerBase | None = None
        ) -> DisposableBase:
            timer_scheduler = scheduler or TimeoutScheduler.singleton()
            lock = threading.RLock()
            pending: list[TickBatch] = []
            count = [0]
            timer = SerialDisposable()

            def emit_pending() -> None:
                if pending:
                    out = TickBatch.concat(pending)
                    pending.clear()
                    count[0] = 0
                    observer.on_next(out)

            def on_timer(_: Any, __: Any = None) -> None:
                with lock:
                    emit_pending()

            def on_next(batch: TickBatch) -> None:
                if len(batch) == 0:
                    return
                with lock:
                    if not pending and len(batch) == max_ticks:
                        observer.on_next(batch)
                        return
                    was_empty = not pending
                    pending.append(batch)
                    count[0] += len(batch)
                    if count[0] >= max_ticks:
                        whole = TickBatch.concat(pending)
                        pending.clear()
                        full = len(whole) - len(whole) % max_ticks
                        rest = whole.take(slice(full, None))
                        if len(rest):
                            pending.append(rest)
                        count[0] = len(rest)
                        for lo in range(0, full, max_ticks):
                            observer.on_next(whole.take(slice(lo, lo + max_ticks)))
                        was_empty = True
                    if pending and was_empty:
                        timer.disposable = timer_scheduler.schedule_relative(
                            max_ms / 1000.0, on_timer
                        )
                    elif not pending:
                        timer.disposable = None

            def on_error(exc: Exception) -> None:
                with lock:
                    emit_pending()
                    observer.on_error(exc)

            def on_completed() -> None:
                with lock:
                    emit_pending()
                    observer.on_completed()

            sub = source.subscribe(on_next, on_error, on_completed, scheduler=default)
            return CompositeDisposable(sub, timer)

        return rx.create(subscribe)

    return _rebatch
