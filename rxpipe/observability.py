"""What the running app tells about itself: recent events, structured logs, per-batch traces.

Three bounded rings, owned by the runtime (no globals), read by ``/api/v1/observability/*``:

>>> events = EventLog(10)
>>> events.record("pipeline", "started", source="simulator")["message"]
'started'
>>> tracer = Tracer(10)
>>> trace = tracer.start(ticks=4096)
>>> with trace.span("detect"):
...     pass
>>> tracer.finish(trace); [s["name"] for s in tracer.recent()[0]["spans"]]
['detect']
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from rxpipe.timestamps import iso


class EventLog:
    """Notable things the pipeline did: started, stopped, rules reloaded, a write failed."""

    def __init__(self, size: int = 1000) -> None:
        self._ring: deque[dict[str, Any]] = deque(maxlen=size)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    def record(self, kind: str, message: str, **fields: Any) -> dict[str, Any]:
        with self._lock:
            doc = {
                "id": next(self._ids),
                "timestamp": iso(time.time_ns()),
                "type": kind,
                "message": message,
                "fields": fields,
            }
            self._ring.append(doc)
        return doc

    def recent(self, limit: int = 100, kind: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            items = [e for e in self._ring if kind is None or e["type"] == kind]
        return items[-limit:][::-1]


class LogBuffer(logging.Handler):
    """A logging handler keeping the last records as dicts; attach it to the ``rxpipe`` logger."""

    def __init__(self, size: int = 1000, level: int = logging.INFO) -> None:
        super().__init__(level)
        self._ring: deque[dict[str, Any]] = deque(maxlen=size)
        self._ids = itertools.count(1)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string must not break logging
            message = str(record.msg)
        self._ring.append(
            {
                "id": next(self._ids),
                "timestamp": iso(int(record.created * 1e9)),
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": message,
                "thread": record.threadName,
            }
        )

    def recent(self, limit: int = 100, level: str | None = None) -> list[dict[str, Any]]:
        floor = logging.getLevelName(level.upper()) if level else 0
        floor = floor if isinstance(floor, int) else 0
        items = [r for r in list(self._ring) if logging.getLevelName(r["level"].upper()) >= floor]
        return items[-limit:][::-1]


class Trace:
    """The spans of one batch through the pipeline (kept as readings; the JSON is made only
    when someone asks for it, not once per batch on the pipeline's thread)."""

    def __init__(self, trace_id: int, ticks: int, t0: float | None = None) -> None:
        self.trace_id = trace_id
        self.ticks = ticks
        now = time.perf_counter()
        self._t0 = now if t0 is None else t0  # a perf_counter() reading: when the batch began
        self.start_ns = time.time_ns() - int((now - self._t0) * 1e9)
        self._spans: list[tuple[str, float, float]] = []

    @contextmanager
    def span(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            t1 = time.perf_counter()
            self.add(name, t0, t1)

    def add(self, name: str, t0: float, t1: float) -> None:
        self._spans.append((name, t0, t1))

    @property
    def spans(self) -> list[dict[str, Any]]:
        return [
            {
                "name": name,
                "offset_ms": round((t0 - self._t0) * 1e3, 4),
                "duration_ms": round((t1 - t0) * 1e3, 4),
            }
            for name, t0, t1 in self._spans
        ]

    def to_json(self) -> dict[str, Any]:
        spans = self.spans
        return {
            "trace_id": f"{self.trace_id:016x}",
            "timestamp": iso(self.start_ns),
            "ticks": self.ticks,
            "duration_ms": round(sum(s["duration_ms"] for s in spans), 4),
            "spans": spans,
        }


class Tracer:
    """Keeps the last traces (one per delivered batch)."""

    def __init__(self, size: int = 500) -> None:
        self._ring: deque[Trace] = deque(maxlen=size)
        self._ids = itertools.count(1)

    def start(self, ticks: int, t0: float | None = None) -> Trace:
        return Trace(next(self._ids), ticks, t0)

    def finish(self, trace: Trace) -> None:
        self._ring.append(trace)

    def recent(self, limit: int = 100) -> list[dict[str, Any]]:
        return [t.to_json() for t in list(self._ring)[-limit:][::-1]]
