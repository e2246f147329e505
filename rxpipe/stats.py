"""Counters and latency windows a running pipeline exposes (health, metrics, benchmarks)."""

from __future__ import annotations

import threading
import time

import numpy as np


class LatencyWindow:
    """The last ``size`` latencies (seconds), for percentiles.

    >>> w = LatencyWindow(4)
    >>> for x in (1.0, 2.0, 3.0, 4.0, 5.0):
    ...     w.add(x)
    >>> w.percentile(50), w.count
    (3.5, 5)
    """

    def __init__(self, size: int = 4096) -> None:
        self._values = np.zeros(size)
        self.count = 0
        self._lock = threading.Lock()

    def add(self, seconds: float) -> None:
        with self._lock:
            self._values[self.count % len(self._values)] = seconds
            self.count += 1

    def percentile(self, q: float) -> float:
        with self._lock:
            filled = self._values[: min(self.count, len(self._values))]
            return float(np.percentile(filled, q)) if len(filled) else 0.0


class Histogram:
    """Counts per upper bound, a sum and a count: the shape Prometheus exposes.

    >>> h = Histogram((0.001, 0.01))
    >>> for x in (0.0005, 0.005, 0.5):
    ...     h.observe(x)
    >>> h.cumulative(), h.count
    ([1, 2, 3], 3)
    """

    DEFAULT_BOUNDS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25)

    def __init__(self, bounds: tuple[float, ...] = DEFAULT_BOUNDS) -> None:
        self.bounds = np.asarray(bounds, np.float64)
        self._counts = np.zeros(len(bounds) + 1, np.int64)  # the last one is +Inf
        self.sum = 0.0
        self.count = 0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        k = int(np.searchsorted(self.bounds, value, side="left"))
        with self._lock:
            self._counts[k] += 1
            self.sum += value
            self.count += 1

    def cumulative(self) -> list[int]:
        with self._lock:
            return np.cumsum(self._counts).tolist()


class PipelineStats:
    """What went through a pipeline: ticks in, rejected, processed, batches, batch latency."""

    def __init__(self) -> None:
        self.started_at = time.time()
        self.ticks_in = 0
        self.ticks_processed = 0
        self.batches = 0
        self.latency = LatencyWindow()
        self.histogram = Histogram()

    def uptime_s(self) -> float:
        return time.time() - self.started_at
