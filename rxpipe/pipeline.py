"""The pipeline: a source through validation, re-batching and operators into sinks.

>>> import reactivex as rx
>>> from rxpipe.model import TickBatch
>>> got = []
>>> p = Pipeline(rx.of(TickBatch.from_arrays(symbol=[0, 0], ts=[1, 2], price=[1.0, -5.0],
...                                          volume=[1.0, 1.0])), sinks=[got.append])
>>> p.start().wait(5), p.stats.ticks_processed, p.rejected
(True, 1, 1)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import reactivex as rx
from reactivex import operators as ops
from reactivex.abc import DisposableBase
from reactivex.subject import Subject

from rxpipe.model import TickBatch
from rxpipe.observability import Tracer
from rxpipe.operators.drain import drain
from rxpipe.operators.validate import TickValidator
from rxpipe.stats import PipelineStats

log = logging.getLogger(__name__)

Operator = Callable[[rx.Observable[Any]], rx.Observable[Any]]


@runtime_checkable
class Sink(Protocol):
    """Something that takes every processed batch; ``flush`` waits until it is durable."""

    def put(self, batch: TickBatch) -> None: ...

    def flush(self, timeout: float | None = None) -> bool: ...

    def close(self, timeout: float | None = None) -> bool: ...


class _CallableSink:
    def __init__(self, fn: Callable[[TickBatch], object]) -> None:
        self.fn = fn

    def put(self, batch: TickBatch) -> None:
        self.fn(batch)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> bool:
        return True


def _sink_name(sink: Sink) -> str:
    inner = sink.fn if isinstance(sink, _CallableSink) else sink
    return getattr(inner, "__name__", type(inner).__name__)


def _nonempty(batch: TickBatch) -> bool:
    return len(batch) > 0


class Pipeline:
    """Wires ``source`` → validate → batching → ``operators`` → every sink.

    The operators and sinks run on a worker thread of their own (see
    :func:`~rxpipe.operators.drain.drain`). A batch holds at most ``max_ticks`` ticks; when the
    worker is free it closes once it holds ``close_ticks`` or ``max_ms`` after its first tick;
    a busy worker takes everything that arrived meanwhile.

    ``start`` subscribes; ``stop`` ends the source, delivers the batch being built, flushes
    every sink, and says whether all of it finished within the timeout.
    """

    def __init__(
        self,
        source: rx.Observable[TickBatch],
        *,
        operators: Sequence[Operator] = (),
        sinks: Sequence[Sink | Callable[[TickBatch], object]] = (),
        validator: TickValidator | None = None,
        max_ticks: int = 4096,
        max_ms: float = 50.0,
        close_ticks: int = 128,
        source_name: str = "",
        tracer: Tracer | None = None,
    ) -> None:
        self.source = source
        self.tracer = tracer
        self.operators = list(operators)
        self.sinks: list[Sink] = [s if isinstance(s, Sink) else _CallableSink(s) for s in sinks]
        self.validator = validator if validator is not None else TickValidator()
        self.max_ticks = max_ticks
        self.max_ms = max_ms
        self.close_ticks = close_ticks
        self.source_name = source_name
        self.stats = PipelineStats()
        self.error: BaseException | None = None
        self._done = threading.Event()
        self._subscription: DisposableBase | None = None
        self._stop: Subject[bool] = Subject()
        self._operators_started = 0.0  # when the current batch entered the operators

    @property
    def rejected(self) -> int:
        return self.validator.rejected_total

    def _count_in(self, batch: TickBatch) -> TickBatch:
        self.stats.ticks_in += len(batch)
        return batch

    def _validate(self, batch: TickBatch) -> TickBatch:
        return self.validator.update(batch, self.source_name)

    def _enter_operators(self, batch: TickBatch) -> TickBatch:
        self._operators_started = time.perf_counter()
        return batch

    def _deliver(self, batch: Any) -> None:
        t0 = time.perf_counter()
        began = self._operators_started if self.operators else t0
        trace = self.tracer.start(len(batch), began) if self.tracer is not None else None
        if trace is not None and self.operators:
            trace.add("operators", self._operators_started, t0)
        for sink in self.sinks:
            s0 = time.perf_counter()
            sink.put(batch)
            if trace is not None:
                trace.add(f"sink:{_sink_name(sink)}", s0, time.perf_counter())
        self.stats.batches += 1
        self.stats.ticks_processed += len(batch)
        elapsed = time.perf_counter() - t0
        self.stats.latency.add(elapsed)
        self.stats.histogram.observe(elapsed + (t0 - self._operators_started))
        if trace is not None and self.tracer is not None:
            self.tracer.finish(trace)

    def _on_error(self, exc: Exception) -> None:
        log.error("pipeline stopped by an error: %s", exc, exc_info=exc)
        self.error = exc
        self._done.set()

    def start(self) -> Pipeline:
        stream = self.source.pipe(
            ops.take_until(self._stop),
            ops.map(self._count_in),
            ops.map(self._validate),
            ops.filter(_nonempty),
            drain(self.max_ticks, self.max_ms, self.close_ticks),
            ops.map(self._enter_operators),
            *self.operators,
        )
        self.stats.started_at = time.time()
        self._subscription = stream.subscribe(self._deliver, self._on_error, self._done.set)
        return self

    def wait(self, timeout: float | None = None) -> bool:
        """Wait for the source to complete; True if it did."""
        return self._done.wait(timeout)

    @property
    def completed(self) -> bool:
        return self._done.is_set()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the source, deliver the batch being built, then flush and close every sink.

        True if all of it finished within ``timeout`` seconds (None: wait until done).
        """
        deadline = None if timeout is None else time.monotonic() + timeout

        def left() -> float | None:
            return None if deadline is None else max(0.0, deadline - time.monotonic())

        self._stop.on_next(True)  # completes the stream: the worker delivers what it holds
        self._done.wait(left())
        if self._subscription is not None:
            self._subscription.dispose()
        flushed = True
        for sink in self.sinks:
            flushed = sink.close(left()) and flushed
        return flushed and self._done.is_set()

    def flush(self, timeout: float | None = None) -> bool:
        return all(sink.flush(timeout) for sink in self.sinks)
