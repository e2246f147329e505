"""Anomalies and rollups to PostgreSQL, in batches, on a writer thread of their own."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import psycopg
from psycopg import sql

from rxpipe.errors import StorageError
from rxpipe.model import SymbolTable
from rxpipe.signals import (
    ANOMALY_TYPES,
    METHODS,
    ROLLUP_FIELDS,
    SEVERITIES,
    AnomalyBatch,
    RollupBatch,
    SignalBatch,
)
from rxpipe.storage.copy_binary import encode_columns
from rxpipe.storage.gather import Flushes, gather
from rxpipe.storage.ticks import IdMap

log = logging.getLogger(__name__)

_ROLLUP_COLS = ROLLUP_FIELDS
_ROLLUP_SQL = (
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "open",
    "close",
    "vwap",
    "median",
    "std_dev",
    "cv",
    "p95",
    "p99",
    "price_range",
    "volume",
    "volume_min",
    "volume_max",
    "volume_range",
)


def _nan_to_none(a: np.ndarray) -> list[Any]:
    return [None if not np.isfinite(v) else float(v) for v in a]


class SignalStore:
    """Writes the anomalies and rollups of signal batches; each statement takes arrays (unnest)."""

    def __init__(self, conn: psycopg.Connection, symbols: SymbolTable) -> None:
        self.conn = conn
        self._symbols = IdMap("symbols", symbols)

    def write(self, anomalies: AnomalyBatch, rollups: RollupBatch) -> tuple[int, int]:
        with self.conn.transaction():
            a = self._anomalies(anomalies) if len(anomalies) else 0
            r = self._rollups(rollups) if len(rollups) else 0
        return a, r

    def _anomalies(self, batch: AnomalyBatch) -> int:
        c = batch.columns
        ids = self._symbols.translate(self.conn, c["symbol"])
        cur = self.conn.execute(
            "INSERT INTO anomalies (ts, symbol_id, type, method, severity, score, confidence, observed, "
            "expected, lower_bound, upper_bound, window_size) "
            "SELECT to_timestamp(t / 1e9), s, ty, me, se, sc, co, ob, ex, lo, up, w FROM unnest("
            "%s::bigint[], %s::integer[], %s::text[], %s::text[], %s::text[], %s::float8[], %s::float8[], "
            "%s::float8[], %s::float8[], %s::float8[], %s::float8[], %s::integer[]) "
            "AS v(t, s, ty, me, se, sc, co, ob, ex, lo, up, w) ON CONFLICT DO NOTHING",
            (
                c["ts"].tolist(),
                ids.tolist(),
                [ANOMALY_TYPES[t] for t in c["type"]],
                [METHODS[m] for m in c["method"]],
                [SEVERITIES[v] for v in c["severity"]],
                _nan_to_none(c["score"]),
                _nan_to_none(np.clip(c["confidence"], 0, 1)),
                _nan_to_none(c["observed"]),
                _nan_to_none(c["expected"]),
                _nan_to_none(c["lower"]),
                _nan_to_none(c["upper"]),
                c["window"].tolist(),
            ),
        )
        return cur.rowcount

    def _rollups(self, batch: RollupBatch) -> int:
        """COPY the rows into a temporary table, then upsert them (a re-run replaces a bucket)."""
        c = batch.columns
        ids = self._symbols.translate(self.conn, c["symbol"].astype(np.int64))
        payload = encode_columns(
            [("int4", ids), ("int4", batch.interval // 10**9), ("timestamptz", c["start"])]
            + [
                (
                    "int8" if k == "count" else "float8",
                    c[k].astype(np.int64) if k == "count" else c[k],
                )
                for k in _ROLLUP_COLS
            ]
        )
        cols = sql.SQL(", ").join(
            sql.Identifier(k) for k in ("symbol_id", "interval_s", "start_time", *_ROLLUP_SQL)
        )
        self.conn.execute(
            "CREATE TEMP TABLE IF NOT EXISTS rollups_in (LIKE rollups INCLUDING DEFAULTS) ON COMMIT DELETE ROWS"
        )
        with (
            self.conn.cursor() as cur,
            cur.copy(
                sql.SQL("COPY rollups_in ({}) FROM STDIN (FORMAT BINARY)").format(cols)
            ) as copy,
        ):
            copy.write(payload)
        updates = sql.SQL(", ").join(
            sql.SQL("{} = excluded.{}").format(sql.Identifier(k), sql.Identifier(k))
            for k in _ROLLUP_SQL
        )
        query = sql.SQL(
            "INSERT INTO rollups ({cols}) SELECT {cols} FROM rollups_in "
            "ON CONFLICT (symbol_id, interval_s, start_time) DO UPDATE SET {updates}"
        ).format(cols=cols, updates=updates)
        return self.conn.execute(query).rowcount


class SignalSink:
    """Pipeline sink for SignalBatches: queues their anomalies and rollups for a writer thread.

    Ticks are the tick sink's business; this one stores what the detectors found. Writes are
    retried with backoff until the database answers; :attr:`anomalies_stored` and
    :attr:`rollups_stored` count committed rows.
    """

    def __init__(self, store_factory: Callable[[], SignalStore]) -> None:
        self._factory = store_factory
        self._pending: list[tuple[AnomalyBatch, RollupBatch]] = []
        self._first_at = 0.0  # when the oldest pending batch arrived
        self._cond = threading.Condition()
        self._flushes = Flushes(self._cond)
        self._busy = False
        self._closing = False
        self.anomalies_stored = 0
        self.rollups_stored = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="rxpipe-signal-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Any) -> None:
        if not isinstance(batch, SignalBatch) or (
            not len(batch.anomalies) and not len(batch.rollups)
        ):
            return
        with self._cond:
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.append((batch.anomalies, batch.rollups))
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._flushes.wait_idle(lambda: not self._pending and not self._busy, deadline)

    def close(self, timeout: float | None = None) -> bool:
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0)
        return done

    def _run(self) -> None:
        store: SignalStore | None = None
        while True:
            with self._cond:
                while not self._pending and not self._closing:
                    self._cond.wait()
                if not self._pending:
                    break
                gather(self._cond, self._first_at, lambda: self._closing or bool(self._flushes))
                work, self._pending = self._pending, []
                self._busy = True
            anomalies = AnomalyBatch.concat([a for a, _ in work])
            rollups = RollupBatch.concat([r for _, r in work])
            backoff = 0.2
            while True:
                try:
                    store = store or self._factory()
                    a, r = store.write(anomalies, rollups)
                    break
                except (psycopg.Error, StorageError) as exc:
                    self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                    log.warning(
                        "signal write failed (%s); retrying in %.1fs", self.last_error, backoff
                    )
                    if store is not None:
                        store.conn.close()
                    store = None
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 5.0)
            with self._cond:
                self.anomalies_stored += a
                self.rollups_stored += r
                self.last_error = None
                self._busy = False
                self._cond.notify_all()
        if store is not None:
            store.conn.close()
