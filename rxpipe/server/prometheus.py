"""``GET /metrics`` in the Prometheus text format, read from the running app at scrape time
(nothing is counted twice in the hot path; the registry is the server's, not a global)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import tornado.web
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from rxpipe.runtime import Runtime


class RuntimeCollector(Collector):
    def __init__(self, runtime: Runtime, ws_clients: Callable[[], int]) -> None:
        self.runtime = runtime
        self.ws_clients = ws_clients

    def collect(self) -> Iterator[Metric]:
        rt, p = self.runtime, self.runtime.pipeline
        counter = CounterMetricFamily
        yield _one(
            counter, "rxpipe_ticks_in", "ticks the source emitted", p.stats.ticks_in if p else 0
        )
        yield _one(
            counter,
            "rxpipe_ticks_processed",
            "ticks through the operators",
            p.stats.ticks_processed if p else 0,
        )
        rejected = counter(
            "rxpipe_ticks_rejected", "ticks refused by validation", labels=["reason"]
        )
        for reason, n in (dict(p.validator.rejected) if p else {}).items():
            rejected.add_metric([reason], n)
        yield rejected
        sink = rt.tick_sink
        yield _one(
            counter,
            "rxpipe_ticks_stored",
            "ticks committed to the database",
            sink.stored if sink else 0,
        )
        yield _one(
            GaugeMetricFamily,
            "rxpipe_ticks_pending",
            "ticks waiting to be stored",
            sink.pending if sink else 0,
        )
        if p is not None:
            h = p.stats.histogram
            cum = h.cumulative()
            buckets = [(repr(float(b)), c) for b, c in zip(h.bounds, cum, strict=False)]
            buckets.append(("+Inf", cum[-1]))
            hist = HistogramMetricFamily(
                "rxpipe_batch_seconds", "time a batch spends in the operators and sinks"
            )
            hist.add_metric([], buckets, h.sum)
            yield hist
        anomalies = counter("rxpipe_anomalies", "anomalies found", labels=["type", "severity"])
        alerts = counter("rxpipe_alert_events", "alert state changes", labels=["state", "severity"])
        if rt.hub is not None:
            for (t, s), n in dict(rt.hub.anomaly_counts).items():
                anomalies.add_metric([t, s], n)
            for (t, s), n in dict(rt.hub.alert_counts).items():
                alerts.add_metric([t, s], n)
        yield anomalies
        yield alerts
        notes = counter(
            "rxpipe_notifications", "notification outcomes", labels=["channel", "status"]
        )
        if rt.outbox is not None:
            for (c, s), n in dict(rt.outbox.outcomes).items():
                notes.add_metric([c, s], n)
        yield notes
        yield _one(
            GaugeMetricFamily,
            "rxpipe_websocket_clients",
            "WebSocket clients connected",
            self.ws_clients(),
        )
        yield _one(
            GaugeMetricFamily,
            "rxpipe_uptime_seconds",
            "seconds since start",
            rt.health()["uptime_s"],
        )


def _one(kind: Any, name: str, doc: str, value: float) -> Metric:
    m = kind(name, doc)
    m.add_metric([], value)
    return m


class MetricsHandler(tornado.web.RequestHandler):
    def initialize(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def get(self) -> None:
        self.set_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.finish(generate_latest(self.registry))


def registry_for(runtime: Runtime, ws_clients: Callable[[], int]) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(RuntimeCollector(runtime, ws_clients))
    return registry
