"""What the API and the dashboard read from PostgreSQL: pages of ticks, aggregations,
anomalies, rollups, alerts and notifications, newest first, with keyset cursors.

Reads are async (psycopg's async connections from a pool on the server's loop), so a request
never blocks the loop. A cursor is the key of the last row of a page, opaque to clients.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from rxpipe.signals import SEVERITIES, Rollup, window_label
from rxpipe.storage.alert_reads import AlertReads
from rxpipe.storage.paging import (
    FAR_FUTURE,
    Page,
    Range,
    decode_cursor,
    encode_cursor,
    finite_or_none,
    page_of,
    to_ns,
    to_timestamp,
)
from rxpipe.timestamps import iso


class Reads(AlertReads):
    """The read side, over an async connection pool."""

    def __init__(self, pool: AsyncConnectionPool) -> None:
        self.pool = pool

    async def _rows(self, query: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        async with self.pool.connection() as conn:
            cur = await conn.execute(query.encode(), params)
            return await cur.fetchall()

    async def symbol_known(self, symbol: str) -> bool:
        rows = await self._rows("SELECT 1 FROM symbols WHERE name = %s", (symbol,))
        return bool(rows)

    async def ticks(self, symbol: str, r: Range) -> Page:
        """A symbol's ticks, newest first; PostgreSQL builds the JSON of the rows (in C) and
        the handler splices it into its answer.

        Ticks are indexed by time only (BRIN: the cheapest index for appends, so storage keeps
        its ingest rate), so a page without a lower bound looks back in growing windows (a
        minute, ten, an hour, a day, then everything) until it has its rows."""
        key = decode_cursor(r.cursor, (int, int)) or [FAR_FUTURE, 0]
        upper = min(r.end, key[0], time.time_ns() + 3600 * 1_000_000_000)
        for back_s in (60, 600, 3600, 86400, None):
            start = r.start if back_s is None else max(r.start, upper - back_s * 1_000_000_000)
            raw, shown, found, last_us, last_seq = await self._tick_page(
                symbol, start, r.end, key, r.limit
            )
            if found > r.limit or start == r.start:
                break
        more = found > r.limit and last_us is not None and last_seq is not None
        cursor = encode_cursor([int(last_us or 0) * 1000, int(last_seq or 0)]) if more else None
        return Page([], cursor, raw=raw, raw_count=int(shown))

    async def _tick_page(
        self, symbol: str, start: int, end: int, key: list[Any], limit: int
    ) -> tuple[str, int, int, int | None, int | None]:
        rows = await self._rows(
            "WITH page AS ("
            " SELECT t.ts, t.seq, t.price, t.volume, t.side, t.source_id, "
            " row_number() OVER (ORDER BY t.ts DESC, t.seq DESC) AS rn FROM ticks t "
            " WHERE t.symbol_id = (SELECT id FROM symbols WHERE name = %s) "
            " AND t.ts >= %s AND t.ts < %s AND (t.ts, t.seq) < (%s, %s) "
            " ORDER BY t.ts DESC, t.seq DESC LIMIT %s) "
            "SELECT coalesce(json_agg(json_build_object('symbol', %s::text, 'price', p.price, "
            "'volume', p.volume, 'timestamp', "
            "to_char(p.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'), "
            "'source', src.name, 'side', p.side, 'seq', p.seq) ORDER BY p.rn) "
            "FILTER (WHERE p.rn <= %s), '[]')::text, "
            "count(*) FILTER (WHERE p.rn <= %s), count(*), "
            "max((extract(epoch FROM p.ts) * 1000000)::bigint) FILTER (WHERE p.rn = %s), "
            "max(p.seq) FILTER (WHERE p.rn = %s) "
            "FROM page p JOIN sources src ON src.id = p.source_id",
            (
                symbol,
                to_timestamp(start),
                to_timestamp(end),
                to_timestamp(key[0]),
                key[1],
                limit + 1,
                symbol,
                limit,
                limit,
                limit,
                limit,
            ),
        )
        raw, shown, found, last_us, last_seq = rows[0]
        return raw, int(shown), int(found), last_us, last_seq

    async def aggregated(self, symbol: str, interval_s: int, kind: str, r: Range) -> Page:
        """The seed's Aggregation rows from the stored rollups of ``interval_s``."""
        key = decode_cursor(r.cursor, (int,)) or [FAR_FUTURE]
        rows = await self._rows(
            "SELECT r.start_time, r.count, r.min, r.max, r.mean, r.sum, r.volume, r.volume_min, "
            "r.volume_max FROM rollups r "
            "WHERE r.symbol_id = (SELECT id FROM symbols WHERE name = %s) AND r.interval_s = %s "
            "AND r.start_time >= %s AND r.start_time < %s AND r.start_time < %s "
            "ORDER BY r.start_time DESC LIMIT %s",
            (
                symbol,
                interval_s,
                to_timestamp(r.start),
                to_timestamp(r.end),
                to_timestamp(key[0]),
                r.limit + 1,
            ),
        )
        data = []
        for start, count, mn, mx, mean, total, vol, vmin, vmax in rows:
            if kind == "volume":
                vals = (vmin, vmax, vol / count if count else None, vol)
            else:
                vals = (mn, mx, mean, total)
            data.append(
                {
                    "symbol": symbol,
                    "type": kind,
                    "interval": window_label(interval_s),
                    "time_bucket": iso(to_ns(start)),
                    "count": count,
                    "min": finite_or_none(vals[0]),
                    "max": finite_or_none(vals[1]),
                    "avg": finite_or_none(vals[2]),
                    "sum": finite_or_none(vals[3]),
                }
            )
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return page_of(data, r.limit, [to_ns(last[0])] if last else None)

    async def anomalies(
        self,
        symbol: str,
        r: Range,
        *,
        types: list[str] | None = None,
        methods: list[str] | None = None,
        min_severity: str | None = None,
    ) -> Page:
        key = decode_cursor(r.cursor, (int, str, str)) or [FAR_FUTURE, "~", "~"]
        severities = list(SEVERITIES[SEVERITIES.index(min_severity) :]) if min_severity else None
        rows = await self._rows(
            "SELECT a.ts, a.type, a.method, a.severity, a.score, a.confidence, a.observed, "
            "a.expected, a.lower_bound, a.upper_bound, a.window_size FROM anomalies a "
            "WHERE a.symbol_id = (SELECT id FROM symbols WHERE name = %s) "
            "AND a.ts >= %s AND a.ts < %s AND (a.ts, a.type, a.method) < (%s, %s, %s) "
            "AND (%s::text[] IS NULL OR a.type = ANY(%s)) "
            "AND (%s::text[] IS NULL OR a.method = ANY(%s)) "
            "AND (%s::text[] IS NULL OR a.severity = ANY(%s)) "
            "ORDER BY a.ts DESC, a.type DESC, a.method DESC LIMIT %s",
            (
                symbol,
                to_timestamp(r.start),
                to_timestamp(r.end),
                to_timestamp(key[0]),
                key[1],
                key[2],
                types,
                types,
                methods,
                methods,
                severities,
                severities,
                r.limit + 1,
            ),
        )
        data = [
            {
                "symbol": symbol,
                "type": ty,
                "method": me,
                "severity": se,
                "current_value": finite_or_none(ob),
                "expected_value": finite_or_none(ex),
                "deviation": finite_or_none(sc),
                "confidence": finite_or_none(co),
                "timestamp": iso(to_ns(ts)),
                "window": w,
                "lower": finite_or_none(lo),
                "upper": finite_or_none(up),
                "metadata": {},
            }
            for ts, ty, me, se, sc, co, ob, ex, lo, up, w in rows
        ]
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return page_of(data, r.limit, [to_ns(last[0]), last[1], last[2]] if last else None)

    async def rollups(self, symbol: str, interval_s: int | None, r: Range) -> Page:
        key = decode_cursor(r.cursor, (int, int)) or [FAR_FUTURE, 2**31 - 1]
        rows = await self._rows(
            "SELECT r.interval_s, r.start_time, r.count, r.sum, r.min, r.max, r.mean, r.open, "
            "r.close, r.vwap, r.median, r.std_dev, r.cv, r.p95, r.p99, r.price_range, r.volume, "
            "r.volume_min, r.volume_max, r.volume_range FROM rollups r "
            "WHERE r.symbol_id = (SELECT id FROM symbols WHERE name = %s) "
            "AND (%s::integer IS NULL OR r.interval_s = %s) "
            "AND r.start_time >= %s AND r.start_time < %s "
            "AND (r.start_time, r.interval_s) < (%s, %s) "
            "ORDER BY r.start_time DESC, r.interval_s DESC LIMIT %s",
            (
                symbol,
                interval_s,
                interval_s,
                to_timestamp(r.start),
                to_timestamp(r.end),
                to_timestamp(key[0]),
                key[1],
                r.limit + 1,
            ),
        )
        data = [
            Rollup(
                symbol,
                float(row[0]),
                to_ns(row[1]),
                int(row[2]),
                *(float("nan") if v is None else float(v) for v in row[3:]),
            ).to_json()
            for row in rows
        ]
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return page_of(data, r.limit, [to_ns(last[1]), last[0]] if last else None)


def recent_minute_bars(
    conn: psycopg.Connection, hours: float = 24.0
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each symbol's stored one-minute rollups of the last ``hours`` before the newest one, as
    (start ns, [open, high, low, close, volume, count]) for the live bars."""
    rows = conn.execute(
        "SELECT s.name, r.start_time, r.open, r.max, r.min, r.close, r.volume, r.count "
        "FROM rollups r JOIN symbols s ON s.id = r.symbol_id WHERE r.interval_s = 60 "
        "AND r.start_time > (SELECT max(start_time) FROM rollups WHERE interval_s = 60) "
        "- make_interval(secs => %s) ORDER BY s.name, r.start_time",
        (hours * 3600,),
    ).fetchall()
    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    names = [r[0] for r in rows]
    for name in dict.fromkeys(names):
        mine = [r for r in rows if r[0] == name]
        start = np.array([to_ns(r[1]) for r in mine], np.int64)
        ohlcv = np.array([[float(v) for v in r[2:]] for r in mine])
        out[name] = (start, ohlcv)
    return out
