"""The dashboard's data: one store per process, shared by every browser session.

It owns a :class:`~rxpipe.live.hub.LiveHub` (the running pipeline's, inside ``rxpipe run``; or,
for ``panel serve panel_app/app.py`` on its own, one fed from the database by a poller thread
that runs the same detectors), the database connection, and the actions the views offer
(acknowledge, resolve, silence, save a rule, validate, backtest). Views read it; they never
talk to the pipeline or the database themselves. Database calls block, so views call them
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import param
import psycopg

from rxpipe.config import Settings
from rxpipe.errors import RuleSyntaxError, StorageError
from rxpipe.live.hub import LiveHub
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.operators.detectors import DetectorSet
from rxpipe.rules.backtest import backtest, stored_ticks
from rxpipe.rules.compiler import compile_rule
from rxpipe.rules.engine import Silence
from rxpipe.rules.model import Rule
from rxpipe.runtime import Runtime
from rxpipe.sources.simulator import DEFAULT_SYMBOLS
from rxpipe.storage.database import Database
from rxpipe.storage.reads import recent_minute_bars
from rxpipe.storage.rules import AlertStore, RuleStore
from rxpipe.timestamps import iso

log = logging.getLogger(__name__)
NS = 1_000_000_000


@dataclass
class SystemFigures:
    """The system panel's numbers."""

    ticks_per_s: float = 0.0
    ticks_processed: int = 0
    rejected: int = 0
    latency_p50_ms: float = 0.0
    latency_p99_ms: float = 0.0
    storage_lag: int = 0
    uptime_s: float = 0.0
    status: str = "unknown"
    extra: dict[str, Any] = field(default_factory=dict)


class DataStore(param.Parameterized):
    """Streams and state for every view; actions that change things."""

    symbols = param.List(default=list(DEFAULT_SYMBOLS), doc="symbols offered by the picker")

    def __init__(
        self, hub: LiveHub, db: Database | None, runtime: Runtime | None = None, **params: Any
    ) -> None:
        super().__init__(**params)
        self.hub = hub
        self.db = db
        self.runtime = runtime
        self._rate = (time.monotonic(), 0)
        self._rate_value = 0.0
        self._started = time.time()

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def in_process(cls, runtime: Runtime) -> DataStore:
        """The store of ``rxpipe run``: the running pipeline's hub and database."""
        assert runtime.hub is not None, "build the runtime's pipeline first"
        names = runtime.settings.symbols or list(DEFAULT_SYMBOLS)
        return cls(runtime.hub, runtime.db, runtime, symbols=names)

    @classmethod
    def standalone(cls, settings: Settings) -> DataStore:
        """A store for ``panel serve panel_app/app.py``: the same data directory or database,
        polled. The embedded server is shared with a running ``rxpipe run``, never stopped."""
        url = (
            settings.storage.database_url.get_secret_value()
            if settings.storage.database_url
            else None
        )
        db = Database.open(url=url, data_dir=settings.data_dir, stop_embedded_on_exit=False)
        hub = LiveHub(SymbolTable(), SymbolTable())
        with db.connect() as conn:
            for symbol, (start, ohlcv) in recent_minute_bars(conn).items():
                hub.preload_bars(symbol, start, ohlcv)
            stored = [r[0] for r in conn.execute("SELECT name FROM symbols ORDER BY id").fetchall()]
        store = cls(hub, db, None, symbols=stored or settings.symbols or list(DEFAULT_SYMBOLS))
        DatabaseFeed(db, hub).start()
        return store

    # -- live figures (no I/O) ----------------------------------------------------------------

    def system(self) -> SystemFigures:
        now = time.monotonic()
        if self.runtime is not None:
            h = self.runtime.health()
            processed = h["ticks_processed"]
            figs = SystemFigures(
                ticks_processed=processed,
                rejected=h["ticks_rejected"],
                latency_p50_ms=h["batch_latency_ms"]["p50"],
                latency_p99_ms=h["batch_latency_ms"]["p99"],
                storage_lag=h["storage"].get("pending_ticks", 0) or 0,
                uptime_s=h["uptime_s"],
                status=h["status"],
                extra={
                    "anomalies": h["anomalies_stored"],
                    "alert_events": h["alert_events"],
                    "rules": h["rules"],
                },
            )
        else:
            processed = self.hub.ticks_seen
            figs = SystemFigures(
                ticks_processed=processed,
                uptime_s=time.time() - self._started,
                status="watching the database",
            )
        t0, n0 = self._rate
        if now - t0 >= 1.0:
            self._rate_value = (processed - n0) / (now - t0)
            self._rate = (now, processed)
        figs.ticks_per_s = self._rate_value
        return figs

    # -- database reads (blocking: call through asyncio.to_thread) ----------------------------

    def _conn(self) -> psycopg.Connection:
        if self.db is None:
            raise StorageError("storage is disabled")
        return self.db.connect()

    def alerts(self, limit: int = 100) -> list[dict[str, Any]]:
        """Recent alerts, firing and pending first."""
        if self.db is None:
            return list(self.hub.alert_history)[-limit:][::-1]
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT fingerprint, rule_name, symbol, state, severity, value, started_at, updated_at, "
                "acknowledged, silenced, inhibited FROM alerts "
                "ORDER BY (state IN ('firing', 'pending')) DESC, updated_at DESC LIMIT %s",
                (limit,),
            ).fetchall()
        return [
            {
                "id": fp,
                "rule": name,
                "symbol": sym,
                "state": ("acknowledged" if acked and st == "firing" else st)
                + (" (silenced)" if si or inh else ""),
                "severity": sev,
                "value": None if v is None else round(float(v), 6),
                "since": started.strftime("%H:%M:%S"),
                "updated": updated.strftime("%H:%M:%S"),
            }
            for fp, name, sym, st, sev, v, started, updated, acked, si, inh in rows
        ]

    def notifications(self, limit: int = 50) -> list[dict[str, Any]]:
        if self.db is None:
            return []
        with self._conn() as conn:
            rows = conn.execute(
                "SELECT l.at, l.channel, l.rule_id, l.status, l.attempt, l.error FROM notification_log l "
                "ORDER BY l.id DESC LIMIT %s",
                (limit,),
            ).fetchall()
        return [
            {
                "at": at.strftime("%H:%M:%S"),
                "channel": ch,
                "rule": rule,
                "status": st,
                "attempt": att,
                "error": err or "",
            }
            for at, ch, rule, st, att, err in rows
        ]

    def rules(self) -> list[Rule]:
        if self.db is None:
            return []
        with self._conn() as conn:
            return RuleStore(conn).list()

    def rollups(self, symbol: str) -> list[dict[str, Any]]:
        """The latest closed rollup of each interval for a symbol (live, else stored)."""
        latest: dict[str, dict[str, Any]] = {}
        for doc in reversed(self.hub.rollup_history):
            if doc["symbol"] == symbol and doc["window"] not in latest:
                latest[doc["window"]] = doc
        if not latest and self.db is not None:
            with self._conn() as conn:
                rows = conn.execute(
                    "SELECT DISTINCT ON (r.interval_s) r.interval_s, r.start_time, r.count, r.mean, r.min, r.max, "
                    "r.vwap, r.std_dev, r.p95, r.p99, r.volume FROM rollups r JOIN symbols s ON s.id = r.symbol_id "
                    "WHERE s.name = %s ORDER BY r.interval_s, r.start_time DESC",
                    (symbol,),
                ).fetchall()
            from rxpipe.signals import window_label

            for iv, start, count, mean, mn, mx, vwap, std, p95, p99, vol in rows:
                latest[window_label(iv)] = {
                    "window": window_label(iv),
                    "start_time": iso(int(start.timestamp() * 1e9)),
                    "count": count,
                    "average": mean,
                    "min": mn,
                    "max": mx,
                    "vwap": vwap,
                    "std_dev": std,
                    "percentile_95": p95,
                    "percentile_99": p99,
                    "volume": vol,
                }
        order = ["1m", "5m", "15m", "1h", "4h", "1d"]
        return [
            latest[w] for w in sorted(latest, key=lambda w: order.index(w) if w in order else 99)
        ]

    # -- actions (blocking) ---------------------------------------------------------------------

    def acknowledge(self, alert_id: str) -> bool:
        with self._conn() as conn:
            done = AlertStore(conn).acknowledge(alert_id)
        self._engine_ack(alert_id)
        return done

    def resolve(self, alert_id: str) -> bool:
        with self._conn() as conn:
            done = AlertStore(conn).resolve(alert_id, time.time_ns())
        self._engine_ack(alert_id)
        return done

    def silence(self, alert_id: str, hours: float = 1.0) -> Silence | None:
        """Silence the alert's rule on its symbol for ``hours``."""
        with self._conn() as conn:
            row = conn.execute(
                "SELECT rule_id, symbol FROM alerts WHERE fingerprint = %s", (alert_id,)
            ).fetchone()
            if row is None:
                return None
            now = time.time_ns()
            s = Silence(
                f"dash-{alert_id[:8]}-{now // NS}",
                {"rule": row[0], "symbol": row[1]},
                now,
                now + int(hours * 3600 * NS),
                "silenced from the dashboard",
            )
            AlertStore(conn).add_silence(s)
        sink = self.runtime.alert_sink if self.runtime else None
        if sink is not None:
            sink.engine.silences = [*sink.engine.silences, s]
        return s

    def _engine_ack(self, alert_id: str) -> None:
        sink = self.runtime.alert_sink if self.runtime else None
        if sink is not None:
            sink.engine.acknowledge(alert_id)

    def save_rule(self, rule: Rule) -> Rule:
        with self._conn() as conn:
            return RuleStore(conn).save(rule)

    @staticmethod
    def check(condition: str) -> str | None:
        """None if the condition compiles, else the error with its caret excerpt."""
        try:
            compile_rule(condition)
        except RuleSyntaxError as exc:
            return str(exc)
        return None

    def backtest(self, rule: Rule, hours: float = 24.0) -> dict[str, Any]:
        end = time.time_ns()
        only = rule.symbols if isinstance(rule.symbols, list) else None
        with self._conn() as conn:
            newest = conn.execute("SELECT max(ts) FROM ticks").fetchone()
            if newest and newest[0] is not None:  # a replayed history ends in the past
                end = min(end, int(newest[0].timestamp() * 1e9) + NS)
            symbols = SymbolTable()
            batches = stored_ticks(
                conn, symbols, start_ns=end - int(hours * 3600 * NS), end_ns=end, only=only
            )
            return backtest(rule, batches, symbols).to_json()


class DatabaseFeed:
    """For a standalone dashboard: new ticks and alert events from the database, every
    ``every_s``, through the same detectors into the store's hub."""

    def __init__(self, db: Database, hub: LiveHub, every_s: float = 0.25) -> None:
        self.db = db
        self.hub = hub
        self.every_s = every_s
        self.detectors = DetectorSet()
        self._stop = threading.Event()

    def start(self) -> DatabaseFeed:
        threading.Thread(target=self._run, name="rxpipe-dashboard-feed", daemon=True).start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        last = time.time_ns() - 60 * NS
        last_event = 0
        conn: psycopg.Connection | None = None
        while not self._stop.wait(self.every_s):
            try:
                conn = conn or self.db.connect()
                last = self._ticks(conn, last)
                last_event = self._alerts(conn, last_event)
            except (psycopg.Error, StorageError) as exc:
                log.warning("dashboard feed: %s; retrying", str(exc).splitlines()[0])
                if conn is not None:
                    conn.close()
                conn = None

    def _ticks(self, conn: psycopg.Connection, since: int) -> int:
        rows = conn.execute(
            "SELECT (extract(epoch FROM t.ts) * 1000000)::bigint, s.name, t.price, t.volume, t.side, t.seq "
            "FROM ticks t JOIN symbols s ON s.id = t.symbol_id WHERE t.ts > to_timestamp(%s / 1e9) "
            "ORDER BY t.ts LIMIT 50000",
            (since,),
        ).fetchall()
        if not rows:
            return since
        names = [r[1] for r in rows]
        ids = self.hub.symbols.intern_many(names)
        a = np.array([(r[0], r[2], r[3], r[4], r[5]) for r in rows], np.float64)
        batch = TickBatch.from_arrays(
            symbol=ids,
            ts=a[:, 0].astype(np.int64) * 1000,
            price=a[:, 1],
            volume=a[:, 2],
            side=a[:, 3],
            seq=a[:, 4],
        )
        self.hub.put(self.detectors.update(batch))
        return int(batch.ts[-1])

    def _alerts(self, conn: psycopg.Connection, since_id: int) -> int:
        if since_id == 0:  # the first poll only finds where the history ends
            row = conn.execute("SELECT coalesce(max(id), 0) FROM alert_events").fetchone()
            return max(1, int(row[0]) if row else 1)
        rows = conn.execute(
            "SELECT e.id, e.fingerprint, e.rule_id, coalesce(a.rule_name, e.rule_id), e.symbol, e.state, "
            "e.severity, e.at, e.value FROM alert_events e LEFT JOIN alerts a USING (fingerprint) "
            "WHERE e.id > %s AND NOT e.repeat ORDER BY e.id LIMIT 500",
            (since_id,),
        ).fetchall()
        for _, fp, rule_id, name, sym, st, sev, at, value in rows:
            self.hub.alert_history.append(
                {
                    "id": fp,
                    "alert_rule_id": rule_id,
                    "name": name,
                    "symbol": sym,
                    "state": st,
                    "severity": sev,
                    "current_value": value,
                    "at": iso(int(at.timestamp() * 1e9)),
                }
            )
        return int(rows[-1][0]) if rows else since_id
