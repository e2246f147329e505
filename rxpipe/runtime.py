"""A running rxpipe: settings, symbol tables, database, source, pipeline and sinks together.

The CLI, the server and the benchmarks build one of these; a notebook can too.
"""

from __future__ import annotations

import gc
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import psycopg
import reactivex as rx
from reactivex import operators as ops

from rxpipe import __version__
from rxpipe.config import Settings
from rxpipe.errors import StorageError
from rxpipe.live.hub import LiveHub
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.notify.channels import EmailChannel
from rxpipe.notify.channels import from_settings as channel_from_settings
from rxpipe.notify.notifier import Notifier, Route
from rxpipe.notify.outbox import Outbox
from rxpipe.notify.ratelimit import RateLimiter
from rxpipe.notify.settings import RuleDestinations
from rxpipe.observability import EventLog, LogBuffer, Tracer
from rxpipe.operators.detectors import DetectorConfig, DetectorSet
from rxpipe.operators.validate import TickValidator
from rxpipe.pipeline import Pipeline, Sink
from rxpipe.rules.defaults import seed_rules
from rxpipe.rules.engine import AlertEngine
from rxpipe.sources.replay import Replay, parse_speed
from rxpipe.sources.simulator import DEFAULT_SYMBOLS, Simulator, simulator_source
from rxpipe.storage.alerts_sink import AlertSink
from rxpipe.storage.copy_binary import ROW_BYTES, above_watermark, encode_ticks
from rxpipe.storage.database import Database
from rxpipe.storage.reads import recent_minute_bars
from rxpipe.storage.rules import RuleStore
from rxpipe.storage.signals import SignalSink, SignalStore
from rxpipe.storage.sink import TickSink
from rxpipe.storage.ticks import TickStore

log = logging.getLogger(__name__)

SWITCH_INTERVAL_S = 0.001  # how often threads hand the GIL over (see Runtime.start)

SIMULATOR_SOURCE = "simulator"


@dataclass
class Runtime:
    """Everything one pipeline needs, built from :class:`Settings`."""

    settings: Settings
    symbols: SymbolTable = field(default_factory=SymbolTable)
    sources: SymbolTable = field(default_factory=SymbolTable)
    db: Database | None = None
    tick_sink: TickSink | None = None
    signal_sink: SignalSink | None = None
    alert_sink: AlertSink | None = None
    notifier: Notifier | None = None
    outbox: Outbox | None = None
    detectors: DetectorSet | None = None
    simulator: Simulator | None = None
    replay: Replay | None = None
    pipeline: Pipeline | None = None
    hub: LiveHub | None = None
    destinations: RuleDestinations | None = None
    events: EventLog = field(default_factory=EventLog)
    logs: LogBuffer = field(default_factory=LogBuffer)
    tracer: Tracer = field(default_factory=Tracer)
    started_at: float = field(default_factory=time.time)
    _events_recorded: int = 0

    def __post_init__(self) -> None:
        logging.getLogger("rxpipe").addHandler(self.logs)

    # -- assembly -------------------------------------------------------------------------

    def open_storage(self) -> Database | None:
        s = self.settings
        if not s.storage.enabled:
            return None
        url = s.storage.database_url.get_secret_value() if s.storage.database_url else None
        self.db = Database.open(url=url, data_dir=s.data_dir)
        db = self.db
        with db.connect() as conn:  # the seed's rule set, the first time
            RuleStore(conn).seed(seed_rules())
        self.tick_sink = TickSink(lambda: TickStore(db.connect(), self.symbols, self.sources))
        if s.detectors.enabled:
            self.signal_sink = SignalSink(lambda: SignalStore(db.connect(), self.symbols))
        return self.db

    def make_simulator(
        self,
        *,
        realtime: bool | None = None,
        step_s: float | None = None,
        start_ns: int | None = None,
    ) -> Simulator:
        s = self.settings
        names = s.symbols or DEFAULT_SYMBOLS
        seq_start = self.db.high_water(SIMULATOR_SOURCE) + 1 if self.db else 0
        self.simulator = Simulator(
            names,
            seed=s.simulator.seed,
            step_s=step_s if step_s is not None else len(names) / s.simulator.rate,
            start_ns=start_ns,
            event_rate_per_hour=s.simulator.event_rate_per_hour,
            symbol_table=self.symbols,
            source_id=self.sources.intern(SIMULATOR_SOURCE),
            seq_start=seq_start,
        )
        return self.simulator

    def make_replay(
        self,
        paths: list[str | Path],
        *,
        speed: float | None,
        symbol: str | None = None,
        progress: bool = False,
    ) -> Replay:
        self.replay = Replay(
            paths,
            symbols=self.symbols,
            sources=self.sources,
            symbol=symbol,
            speed=speed,
            batch_ticks=self.settings.batch.max_ticks,
            progress=progress,
        )
        return self.replay

    def source_from_settings(self) -> rx.Observable[TickBatch]:
        spec = self.settings.source
        if spec.startswith("replay:"):
            paths: list[str | Path] = [p for p in spec[len("replay:") :].split(",") if p]
            return self.make_replay(
                paths, speed=parse_speed(self.settings.replay_speed)
            ).observable()
        sim = self.make_simulator()
        return simulator_source(sim, realtime=self.settings.simulator.realtime)

    def build(
        self,
        source: rx.Observable[TickBatch],
        *,
        extra_sinks: list[Sink] | None = None,
        source_name: str = "",
        notify: bool = False,
        live: bool = False,
    ) -> Pipeline:
        """Wire the pipeline; ``notify`` sends notifications for its alerts (live runs only:
        a replay or a backfill of history records alerts without notifying anyone); ``live``
        feeds a hub for the dashboard and the WebSocket (``rxpipe run``)."""
        sinks: list[Any] = list(extra_sinks or [])
        if self.tick_sink is not None:
            sinks.append(self.tick_sink)
        if live:
            self.hub = LiveHub(self.symbols, self.sources)
            self._preload_bars()
        operators = []
        d = self.settings.detectors
        if d.enabled:
            self.detectors = DetectorSet(
                DetectorConfig(
                    window=d.window,
                    min_periods=d.min_periods,
                    z_threshold=d.z_threshold,
                    ci_level=d.ci_level,
                    ensemble_threshold=d.ensemble_threshold,
                    methods=tuple(d.methods),
                )
            )
            operators.append(ops.map(self.detectors.update))
            if self.signal_sink is not None:
                sinks.append(self.signal_sink)
            if self.db is not None:  # rules run on the detectors' signals; loaded from the database
                db = self.db
                self.alert_sink = AlertSink(AlertEngine([], self.symbols), db.connect)
                self.alert_sink.on_reload = lambda n: self.events.record(
                    "rules", f"loaded {n} enabled rule(s)", rules=n
                )
                with db.connect() as conn:
                    self.alert_sink.reload(conn)
                if self.hub is not None:
                    self.alert_sink.listeners.append(self.hub.on_alert)
                # first: alerts are what a tick's latency is measured by; storage only enqueues
                sinks.insert(len(extra_sinks or []), self.alert_sink)
                if notify:
                    self._start_notifications(db)
        if self.hub is not None:
            sinks.append(self.hub)  # last: what it shows has been handed to storage already
        self.pipeline = Pipeline(
            source,
            sinks=sinks,
            tracer=self.tracer,
            operators=operators,
            validator=TickValidator(self.settings.validation.tolerance_ms),
            max_ticks=self.settings.batch.max_ticks,
            max_ms=self.settings.batch.max_ms,
            close_ticks=self.settings.batch.close_ticks,
            source_name=source_name or self.settings.source,
        )
        return self.pipeline

    def _start_notifications(self, db: Database) -> None:
        n = self.settings.notify
        channels = {name: channel_from_settings(name, cfg) for name, cfg in n.channels.items()}
        email = next((c for c in channels.values() if isinstance(c, EmailChannel)), None)
        self.destinations = RuleDestinations(db.connect, email)
        self.outbox = Outbox(db.connect, channels, resolver=self.destinations.channel).start()
        self.notifier = Notifier(
            self.outbox,
            destinations=self.destinations,
            routes=[Route.from_settings(r, n.group_wait_s, n.group_interval_s) for r in n.routes],
            group_wait_s=n.group_wait_s,
            group_interval_s=n.group_interval_s,
            limiter=RateLimiter(per_rule_s=n.rate_limit_s, channel_per_minute=n.channel_per_minute),
        ).start()
        assert self.alert_sink is not None
        self.alert_sink.listeners.append(self.notifier.on_event)

    # -- lifecycle ------------------------------------------------------------------------

    def record_events(self) -> int:
        """Store the simulator's labelled events not stored yet."""
        if self.simulator is None or self.db is None:
            return 0
        new = self.simulator.events[self._events_recorded :]
        if new:
            self.db.record_events(new)
            self._events_recorded += len(new)
        return len(new)

    def _preload_bars(self) -> None:
        """Yesterday's one-minute bars from the stored rollups, so charts start with history."""
        if self.db is None or self.hub is None:
            return
        try:
            with self.db.connect() as conn:
                bars = recent_minute_bars(conn)
        except (psycopg.Error, StorageError) as exc:
            log.warning("no bar history for the dashboard: %s", exc)
            return
        for symbol, (start, ohlcv) in bars.items():
            self.hub.preload_bars(symbol, start, ohlcv)

    def start(self) -> Pipeline:
        """Start the pipeline built by :meth:`build`.

        The app's process is tuned for latency here. Everything alive by then (modules,
        compiled kernels, settings, rules) is moved out of the garbage collector's sight
        (``gc.freeze``): it lives as long as the process, and a full collection walking it
        stalled the pipeline for ~120 ms. And threads hand the GIL over every millisecond
        (``sys.setswitchinterval``, Python's default is 5 ms): the source, the pipeline's
        worker and the writers each run Python between their kernels, and a tick waited for
        every handover.
        """
        assert self.pipeline is not None, "build() first"
        self.warm_up()
        gc.freeze()
        sys.setswitchinterval(SWITCH_INTERVAL_S)
        self.pipeline.start()
        self.events.record("pipeline", "started", source=self.settings.source)
        return self.pipeline

    def warm_up(self) -> None:
        """Run the validator, the tick writer's encoder, the detectors and the rules once on
        made-up ticks, on throwaway state, before the source starts.

        The first call of each numba kernel loads its machine code from the cache and builds
        its dispatcher, holding the GIL: ~100 ms for the detector pass and the rules together,
        which the first real batch would otherwise wait for (its alerts came ~100 ms late), and
        the writer's encoder loading on the writer's thread stalled the pipeline's too."""
        if self.detectors is None:
            return
        t0 = time.perf_counter()
        n = 64
        ticks = TickBatch.from_arrays(
            symbol=[0, 1] * (n // 2),
            ts=time.time_ns() + 1_000_000 * np.arange(n),
            price=100.0 + np.cumsum(np.linspace(-1.0, 1.0, n)),
            volume=np.ones(n),
        )
        TickValidator().update(ticks)
        if self.tick_sink is not None:  # the tick writer's COPY encoder, on its first batch
            keep = np.empty(n, np.bool_)
            above_watermark(np.zeros(n, np.int64), ticks.seq, np.full(1, -1, np.int64), keep)
            ids = ticks.symbol.astype(np.int64)
            encode_ticks(
                ticks.ts, ids, ids, ticks.seq, ticks.price, ticks.volume, ticks.side, keep,
                np.empty(n * ROW_BYTES, np.uint8),
            )  # fmt: skip
        signals = DetectorSet(self.detectors.config).update(ticks)
        if self.alert_sink is not None:
            rules = self.alert_sink.engine.rules
            AlertEngine(rules, SymbolTable(["WARM-UP-A", "WARM-UP-B"])).update(signals)
        log.debug("kernels warmed up in %.0f ms", (time.perf_counter() - t0) * 1e3)

    def settle(self) -> None:
        """Freeze, once the app is up, what it built after :meth:`start`.

        The server, the dashboard's modules (Panel, Bokeh, param) and the numba types of the
        kernels compiled by the first batch come after ``start``: ~140 k objects that live as
        long as the process, and every full collection walked them again, stopping every
        thread for 130-170 ms a few times a minute (the API's p99 at 500 requests/s was those
        pauses). A full collection first, so that no garbage is frozen with them.
        """
        gc.collect()
        gc.freeze()

    def stop(self, timeout: float | None = 10.0) -> bool:
        """Stop the source, flush every sink (waiting at most ``timeout`` s, None: until done),
        store the simulator's events."""
        if self.pipeline is not None:
            self.events.record("pipeline", "stopping")
        ok = self.pipeline.stop(timeout) if self.pipeline else True
        for sink in (self.tick_sink, self.signal_sink, self.alert_sink):
            if sink is not None:
                ok = sink.close(timeout) and ok
        if self.notifier is not None:
            self.notifier.stop()
        if self.outbox is not None:
            self.outbox.stop(timeout)
        try:
            self.record_events()
        except Exception as exc:  # the ticks are safe; say why the event log is not
            log.warning("could not store simulator events: %s", exc)
        logging.getLogger("rxpipe").removeHandler(self.logs)
        return ok

    def health(self) -> dict[str, Any]:
        """The seed's health document plus rxpipe's counters."""
        p = self.pipeline
        sink = self.tick_sink
        storage: dict[str, Any]
        if sink is None:
            storage = {"status": "disabled"}
        else:
            storage = {
                "status": "error" if sink.last_error else "ok",
                "kind": self.db.kind if self.db else None,
                "schema_version": self.db.schema_version if self.db else None,
                "pending_ticks": sink.pending,
                "last_error": sink.last_error,
            }
        running = p is not None and not p.completed
        return {
            "status": "healthy"
            if storage["status"] != "error" and (p is None or p.error is None)
            else "degraded",
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "version": __version__,
            "uptime_s": round(time.time() - self.started_at, 3),
            "source": self.settings.source,
            "ticks_in": p.stats.ticks_in if p else 0,
            "ticks_processed": p.stats.ticks_processed if p else 0,
            "ticks_rejected": p.rejected if p else 0,
            "ticks_stored": sink.stored if sink else 0,
            "ticks_duplicate": sink.duplicates if sink else 0,
            "anomalies_stored": self.signal_sink.anomalies_stored if self.signal_sink else 0,
            "rollups_stored": self.signal_sink.rollups_stored if self.signal_sink else 0,
            "alert_events": self.alert_sink.events if self.alert_sink else 0,
            "rules": len(self.alert_sink.engine.rules) if self.alert_sink else 0,
            "rejected_by_reason": dict(p.validator.rejected) if p else {},
            "batch_latency_ms": {
                "p50": round(p.stats.latency.percentile(50) * 1e3, 3) if p else 0.0,
                "p99": round(p.stats.latency.percentile(99) * 1e3, 3) if p else 0.0,
            },
            "storage": storage,
            "services": {
                "pipeline": "running" if running else ("failed" if p and p.error else "stopped"),
                "storage": storage["status"],
            },
        }
