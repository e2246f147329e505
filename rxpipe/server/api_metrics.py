"""``/api/v1/metrics/{symbol}`` and its ``/aggregated``, ``/anomalies`` and ``/rollups``."""

from __future__ import annotations

from typing import Any

from rxpipe.durations import parse_duration
from rxpipe.errors import InputError
from rxpipe.operators.detectors import DetectorConfig
from rxpipe.server.base import ApiError, ApiHandler
from rxpipe.signals import ANOMALY_TYPES, METHODS, SEVERITIES, window_label
from rxpipe.storage.paging import FAR_FUTURE, FAR_PAST, Page, Range, decode_cursor, encode_cursor
from rxpipe.timestamps import iso, iso_many

INTERVALS = tuple(int(s) for s in DetectorConfig().rollup_intervals_s)
HOT_PAGES = 1024  # newest pages kept (symbol x limit); past that the cache starts again


class _SymbolHandler(ApiHandler):
    def latest(self, symbol: str) -> dict[str, Any] | None:
        hub = self.ctx.runtime.hub
        doc = hub.latest().get(symbol) if hub is not None else None
        if doc is None:
            return None
        ts = doc.pop("ts")
        return {"symbol": symbol, "timestamp": iso(ts), **doc}

    async def known(self, symbol: str, page: Page) -> None:
        if page.data or page.raw_count or self.latest(symbol) is not None:
            return
        if self.ctx.reads is None or not await self.ctx.reads.symbol_known(symbol):
            raise ApiError(404, f"no data for symbol {symbol!r}", field="symbol")

    def interval(self, default: str | None) -> int | None:
        text = self.query("interval", default)
        if text is None:
            return None
        try:
            seconds = int(parse_duration(text))
        except InputError:
            seconds = -1
        if seconds not in INTERVALS:
            options = ", ".join(window_label(s) for s in INTERVALS)
            raise ApiError(
                400, f"interval is one of {options}; found {text[:20]!r}", field="interval"
            )
        return seconds


class MetricsHandler(_SymbolHandler):
    """The latest values and signals of a symbol and its stored ticks, newest first.

    The newest page (no range, no cursor) comes from the live hub, which changes once per
    pipeline batch: its text is kept and sent again until the hub moves (at hundreds of
    requests a second, encoding the same hundred ticks each time was a third of the server's
    time).
    """

    async def get(self, symbol: str) -> None:
        symbol = self.symbol(symbol)
        r = self.range()
        hot = self.hot_key(symbol, r)
        hub = self.ctx.runtime.hub
        version = hub.version if hub is not None else -1  # read before the page is built
        if hot is not None:
            cached = self.ctx.hot_pages.get(hot)
            if cached is not None and cached[0] == version:
                self.set_status(200)
                self.finish(cached[1])
                return
        page = self.from_memory(symbol, r)
        from_hub = page is not None
        if page is None:
            page = await self.reads().ticks(symbol, r) if self.ctx.reads else Page([], None)
        await self.known(symbol, page)
        text = page.to_text(symbol=symbol, latest=self.latest(symbol))
        if hot is not None and from_hub:
            if len(self.ctx.hot_pages) >= HOT_PAGES:
                self.ctx.hot_pages.clear()
            self.ctx.hot_pages[hot] = (version, text)
        self.set_status(200)
        self.finish(text)

    def hot_key(self, symbol: str, r: Range) -> tuple[str, int] | None:
        """The cache key of the newest page, or None for any other page."""
        if r.start != FAR_PAST or r.end != FAR_FUTURE or r.cursor is not None:
            return None
        return symbol, r.limit

    def from_memory(self, symbol: str, r: Range) -> Page | None:
        """The newest ticks from the live hub's ring, when the page needs nothing older."""
        hub = self.ctx.runtime.hub
        if hub is None or r.start != FAR_PAST or r.end != FAR_FUTURE:
            return None
        key = decode_cursor(r.cursor, (int, int))
        batch, enough = hub.recent_ticks(symbol, (key[0], key[1]) if key else None, r.limit)
        if not enough:
            return None
        shown = batch.take(slice(0, r.limit))
        stamps = iso_many(shown.ts).tolist()
        src = hub.sources
        rows = [
            {
                "symbol": symbol,
                "price": p,
                "volume": v,
                "timestamp": t,
                "source": src.name(s) if s < len(src) else str(s),
                "side": sd,
                "seq": q,
            }
            for p, v, t, s, sd, q in zip(
                shown.price.tolist(),
                shown.volume.tolist(),
                stamps,
                shown.source.tolist(),
                shown.side.tolist(),
                shown.seq.tolist(),
                strict=True,
            )
        ]
        cursor = encode_cursor([int(shown.ts[-1]), int(shown.seq[-1])])  # enough: more exist
        return Page(rows, cursor)


class AggregatedHandler(_SymbolHandler):
    """The seed's aggregation rows (count, min, max, avg, sum per time bucket)."""

    async def get(self, symbol: str) -> None:
        symbol = self.symbol(symbol)
        interval = self.interval("1m")
        kind = self.choice("type", ("price", "volume"), "price")
        r = self.range()
        assert interval is not None and kind is not None
        page = await self.reads().aggregated(symbol, interval, kind, r)
        await self.known(symbol, page)
        self.send(page.to_json(symbol=symbol, interval=window_label(interval), type=kind))


class AnomaliesHandler(_SymbolHandler):
    async def get(self, symbol: str) -> None:
        symbol = self.symbol(symbol)
        kind = self.choice("type", ANOMALY_TYPES)
        method = self.choice("method", METHODS)
        severity = self.choice("severity", SEVERITIES)
        r = self.range()
        page = await self.reads().anomalies(
            symbol,
            r,
            types=[kind] if kind else None,
            methods=[method] if method else None,
            min_severity=severity,
        )
        await self.known(symbol, page)
        self.send(page.to_json(symbol=symbol))


class RollupsHandler(_SymbolHandler):
    async def get(self, symbol: str) -> None:
        symbol = self.symbol(symbol)
        interval = self.interval(None)
        r = self.range()
        page = await self.reads().rollups(symbol, interval, r)
        await self.known(symbol, page)
        self.send(page.to_json(symbol=symbol))
