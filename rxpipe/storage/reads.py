"""What the API and the dashboard read from PostgreSQL: pages of ticks, aggregations,
anomalies, rollups, alerts and notifications, newest first, with keyset cursors.

Reads are async (psycopg's async connections from a pool on the server's loop), so a request
never blocks the loop. A cursor is the key of the last row of a page, opaque to clients.
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import psycopg
from psycopg_pool import AsyncConnectionPool

from rxpipe.errors import InputError
from rxpipe.signals import SEVERITIES, Rollup, window_label
from rxpipe.timestamps import iso

FAR_PAST = -(2**62)
FAR_FUTURE = 2**62


def _ts(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(
        microsecond=(ns // 1000) % 1_000_000
    )


def _ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(text: str | None, shape: tuple[type, ...]) -> list[Any] | None:
    """The key in a cursor, checked against the types the query expects."""
    if not text:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise InputError("not a cursor this API gave out", source="cursor") from None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True)
        )
    ):
        raise InputError("not a cursor this API gave out", source="cursor")
    return key


@dataclass
class Range:
    """A time range in ns (start inclusive, end exclusive), a page size and a cursor."""

    start: int = FAR_PAST
    end: int = FAR_FUTURE
    limit: int = 100
    cursor: str | None = None


@dataclass
class Page:
    data: list[dict[str, Any]]
    next_cursor: str | None
    raw: str | None = None  # the rows as JSON text already (built by the database)
    raw_count: int = 0

    def to_json(self, **extra: Any) -> dict[str, Any]:
        data = json.loads(self.raw) if self.raw is not None else self.data
        return {**extra, "data": data, "count": len(data), "next_cursor": self.next_cursor}

    def to_text(self, **extra: Any) -> str:
        """The page as JSON text; rows the database serialised are spliced in, not re-encoded."""
        if self.raw is None:
            return json.dumps(self.to_json(**extra), default=str, allow_nan=False)
        head = json.dumps(
            {**extra, "count": self.raw_count, "next_cursor": self.next_cursor},
            default=str,
            allow_nan=False,
        )
        return f'{head[:-1]}, "data": {self.raw}}}'


def _page(rows: list[dict[str, Any]], limit: int, key: list[Any] | None) -> Page:
    return Page(rows[:limit], encode_cursor(key) if len(rows) > limit and key else None)


def _num(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)


class Reads:
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
                _ts(start),
                _ts(end),
                _ts(key[0]),
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
            (symbol, interval_s, _ts(r.start), _ts(r.end), _ts(key[0]), r.limit + 1),
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
                    "time_bucket": iso(_ns(start)),
                    "count": count,
                    "min": _num(vals[0]),
                    "max": _num(vals[1]),
                    "avg": _num(vals[2]),
                    "sum": _num(vals[3]),
                }
            )
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return _page(data, r.limit, [_ns(last[0])] if last else None)

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
                _ts(r.start),
                _ts(r.end),
                _ts(key[0]),
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
                "current_value": _num(ob),
                "expected_value": _num(ex),
                "deviation": _num(sc),
                "confidence": _num(co),
                "timestamp": iso(_ns(ts)),
                "window": w,
                "lower": _num(lo),
                "upper": _num(up),
                "metadata": {},
            }
            for ts, ty, me, se, sc, co, ob, ex, lo, up, w in rows
        ]
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return _page(data, r.limit, [_ns(last[0]), last[1], last[2]] if last else None)

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
                _ts(r.start),
                _ts(r.end),
                _ts(key[0]),
                key[1],
                r.limit + 1,
            ),
        )
        data = [
            Rollup(
                symbol,
                float(row[0]),
                _ns(row[1]),
                int(row[2]),
                *(float("nan") if v is None else float(v) for v in row[3:]),
            ).to_json()
            for row in rows
        ]
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return _page(data, r.limit, [_ns(last[1]), last[0]] if last else None)

    # -- alerts -------------------------------------------------------------------------------

    _ALERT_SELECT = (
        "SELECT a.fingerprint, a.rule_id, a.rule_name, a.symbol, a.state, a.severity, a.value, "
        "a.started_at, a.updated_at, a.resolved_at, a.acknowledged, a.silenced, a.inhibited, "
        "a.labels, a.annotations, r.body FROM alerts a LEFT JOIN rules r ON r.id = a.rule_id "
    )

    async def alerts(
        self,
        r: Range,
        *,
        status: str | None = None,
        severity: str | None = None,
        symbol: str | None = None,
        rule_id: str | None = None,
    ) -> Page:
        key = decode_cursor(r.cursor, (int, str)) or [FAR_FUTURE, "~"]
        states = {
            "active": ["firing", "pending"],
            "resolved": ["resolved", "inactive"],
        }.get(status or "", [status] if status else None)
        rows = await self._rows(
            self._ALERT_SELECT + "WHERE (a.updated_at, a.fingerprint) < (%s, %s) "
            "AND a.updated_at >= %s AND a.updated_at < %s "
            "AND (%s::text[] IS NULL OR a.state = ANY(%s)) "
            "AND (%s::boolean IS NULL OR (a.silenced OR a.inhibited) = %s) "
            "AND (%s::boolean IS NULL OR a.acknowledged = %s) "
            "AND (%s::text IS NULL OR a.severity = %s) AND (%s::text IS NULL OR a.symbol = %s) "
            "AND (%s::text IS NULL OR a.rule_id = %s) "
            "ORDER BY a.updated_at DESC, a.fingerprint DESC LIMIT %s",
            (
                _ts(key[0]),
                key[1],
                _ts(r.start),
                _ts(r.end),
                None if status in ("silenced", "acknowledged") else states,
                None if status in ("silenced", "acknowledged") else states,
                True if status == "silenced" else None,
                True if status == "silenced" else None,
                True if status == "acknowledged" else None,
                True if status == "acknowledged" else None,
                severity,
                severity,
                symbol,
                symbol,
                rule_id,
                rule_id,
                r.limit + 1,
            ),
        )
        data = [alert_row(row) for row in rows]
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return _page(data, r.limit, [_ns(last[8]), last[0]] if last else None)

    async def alert(self, fingerprint: str) -> dict[str, Any] | None:
        rows = await self._rows(self._ALERT_SELECT + "WHERE a.fingerprint = %s", (fingerprint,))
        return alert_row(rows[0]) if rows else None

    async def alert_history(self, fingerprint: str, limit: int = 100) -> list[dict[str, Any]]:
        rows = await self._rows(
            "SELECT state, at, value, silenced, inhibited, repeat FROM alert_events "
            "WHERE fingerprint = %s ORDER BY at DESC, id DESC LIMIT %s",
            (fingerprint, limit),
        )
        return [
            {
                "state": st,
                "at": iso(_ns(at)),
                "value": _num(v),
                "silenced": si,
                "inhibited": inh,
                "repeat": rep,
            }
            for st, at, v, si, inh, rep in rows
        ]

    # -- notifications --------------------------------------------------------------------------

    async def notifications(
        self, r: Range, *, status: str | None = None, channel: str | None = None
    ) -> Page:
        key = decode_cursor(r.cursor, (int,)) or [FAR_FUTURE]
        rows = await self._rows(
            "SELECT l.id, l.channel, l.rule_id, l.status, l.attempt, l.error, l.at, o.payload, "
            "o.sent_at, o.created_at FROM notification_log l "
            "LEFT JOIN notification_outbox o ON o.id = l.outbox_id "
            "WHERE l.id < %s AND l.at >= %s AND l.at < %s "
            "AND (%s::text IS NULL OR l.status = %s) AND (%s::text IS NULL OR l.channel = %s) "
            "ORDER BY l.id DESC LIMIT %s",
            (key[0], _ts(r.start), _ts(r.end), status, status, channel, channel, r.limit + 1),
        )
        data = []
        for lid, ch, rule_id, st, attempt, err, at, payload, sent_at, created in rows:
            alerts = (payload or {}).get("alerts", [])
            first = alerts[0] if alerts else {}
            data.append(
                {
                    "id": lid,
                    "alert_id": first.get("fingerprint"),
                    "type": ch,
                    "recipient": ch,
                    "message": _message_title(alerts) if alerts else (err or ""),
                    "status": st,
                    "sent_at": iso(_ns(sent_at)) if st == "sent" and sent_at else None,
                    "error": err if st != "sent" else None,
                    "metadata": {"rule_id": rule_id, "attempt": attempt, "alerts": len(alerts)},
                    "created_at": iso(_ns(created or at)),
                    "at": iso(_ns(at)),
                }
            )
        last = rows[min(len(rows), r.limit) - 1] if rows else None
        return _page(data, r.limit, [int(last[0])] if last else None)


def _message_title(alerts: list[dict[str, Any]]) -> str:
    from rxpipe.notify.message import Message

    return Message("", "", "", alerts).title


def alert_row(row: tuple[Any, ...]) -> dict[str, Any]:
    """An ``alerts`` row (with its rule's body) in the seed's Alert shape, plus rxpipe's state."""
    (fp, rule_id, name, symbol, state, sev, value, started, updated, resolved) = row[:10]
    acked, silenced, inhibited, labels, annotations, body = row[10:]
    body = body or {}
    if silenced or inhibited:
        status = "silenced"
    elif state in ("resolved", "inactive"):
        status = "resolved"
    else:
        status = "active"
    return {
        "id": fp,
        "alert_rule_id": rule_id,
        "name": name,
        "description": annotations.get("description") or body.get("description", ""),
        "severity": sev,
        "status": status,
        "state": "acknowledged" if acked and state == "firing" else state,
        "acknowledged": acked,
        "symbol": symbol,
        "condition": body.get("condition", ""),
        "threshold": body.get("threshold"),
        "current_value": _num(value),
        "triggered_at": iso(_ns(started)),
        "resolved_at": iso(_ns(resolved)) if resolved else None,
        "labels": labels,
        "annotations": annotations,
        "metadata": {"silenced": silenced, "inhibited": inhibited},
        "created_at": iso(_ns(started)),
        "updated_at": iso(_ns(updated)),
    }


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
        start = np.array([_ns(r[1]) for r in mine], np.int64)
        ohlcv = np.array([[float(v) for v in r[2:]] for r in mine])
        out[name] = (start, ohlcv)
    return out
