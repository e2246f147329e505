"""The live hub: a pipeline sink that keeps what the dashboard and the WebSocket show.

The pipeline's thread ``put``s each batch: the hub folds it into one-minute bars (numba), a
sampled strip of signals per symbol, the latest values per symbol, and bounded histories of
anomalies, alerts and rollups, all under one short lock. The server's loop ``drain``s what
happened since the last drain (every 50 ms) as JSON fragments per channel and symbol, so a
message is serialised once however many clients receive it. Nothing here waits on a client.

>>> from rxpipe.model import SymbolTable, TickBatch
>>> hub = LiveHub(SymbolTable(["BTCUSDT"]), SymbolTable(["simulator"]))
>>> hub.put(TickBatch.from_arrays(symbol=[0, 0], ts=[10**9, 2 * 10**9], price=[1.0, 2.0],
...                               volume=[1.0, 1.0]))
>>> out = hub.drain()
>>> len(out.channel("ticks")["BTCUSDT"]), hub.latest()["BTCUSDT"]["price"]
(2, 2.0)
"""

from __future__ import annotations

import json
import threading
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rxpipe.kernels import ring as ring_k
from rxpipe.live.bars import Bars
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.operators.state import SymbolState
from rxpipe.rules.engine import AlertEvent
from rxpipe.signals import SignalBatch
from rxpipe.timestamps import iso, iso_many

CHANNELS = ("ticks", "signals", "anomalies", "alerts", "rollups")
# the signals the dashboard's strip and the signals channel carry, sampled per batch
STRIP_FIELDS = ("price", "z_ret", "ewma_vol", "ensemble", "ma_fast", "ma_slow", "vol_ratio")


@dataclass
class Outbound:
    """What happened since the last drain: JSON fragments per channel, per symbol."""

    seq: int
    fragments: dict[str, dict[str, list[str]]] = field(
        default_factory=lambda: {c: {} for c in CHANNELS}
    )
    dropped_ticks: int = 0

    def channel(self, name: str) -> dict[str, list[str]]:
        return self.fragments[name]

    def __bool__(self) -> bool:
        return any(self.fragments[c] for c in CHANNELS)


class LiveHub:
    """Pipeline sink and alert listener; thread-safe reads for the dashboard and the API."""

    def __init__(
        self,
        symbols: SymbolTable,
        sources: SymbolTable,
        *,
        bar_interval_s: float = 60.0,
        bar_capacity: int = 1440,
        strip_capacity: int = 2400,
        max_updates: int = 1000,
        history: int = 500,
        recent_ticks: int = 1000,
    ) -> None:
        self.symbols = symbols
        self.sources = sources
        self.max_updates = max_updates
        self.bars = Bars(bar_interval_s, bar_capacity)
        self._lock = threading.Lock()
        self._recent = SymbolState(
            ts=(0, (recent_ticks,), np.int64),
            price=(np.nan, (recent_ticks,)),
            volume=(np.nan, (recent_ticks,)),
            side=(0, (recent_ticks,), np.int8),
            seq=(0, (recent_ticks,), np.int64),
            source=(0, (recent_ticks,), np.int16),
            head=(0, (), np.int64),
        )
        self._strip = SymbolState(
            ts=(0, (strip_capacity,), np.int64),
            values=(np.nan, (strip_capacity, len(STRIP_FIELDS))),
            head=(0, (), np.int64),
        )
        self._latest: dict[int, dict[str, Any]] = {}
        self._ticks: list[TickBatch] = []
        self._tick_count = 0
        self._dropped = 0
        self._signals: dict[int, dict[str, Any]] = {}
        self._events: dict[str, list[tuple[str, dict[str, Any]]]] = {
            "anomalies": [],
            "alerts": [],
            "rollups": [],
        }
        self.anomaly_history: deque[dict[str, Any]] = deque(maxlen=history)
        self.alert_history: deque[dict[str, Any]] = deque(maxlen=history)
        self.rollup_history: deque[dict[str, Any]] = deque(maxlen=history)
        self.anomaly_counts: Counter[tuple[str, str]] = Counter()  # (type, severity)
        self.alert_counts: Counter[tuple[str, str]] = Counter()  # (state, severity)
        self.ticks_seen = 0
        self.seq = 0  # drains so far
        self.version = 0  # puts so far (the dashboard redraws when it moves)

    # -- the pipeline side (its thread) ---------------------------------------------------

    def put(self, batch: Any) -> None:
        if isinstance(batch, SignalBatch):
            ticks, columns = batch.ticks, batch.columns
        elif isinstance(batch, TickBatch):
            ticks, columns, batch = batch, {}, None
        else:
            return
        if not len(ticks):
            return
        last = _last_per_symbol(ticks.symbol)
        sampled = {f: _column(f, ticks, columns)[last] for f in STRIP_FIELDS}
        anomalies = batch.anomalies.events(self.symbols) if batch is not None else []
        at_price = ticks.price[batch.anomalies.columns["index"]] if anomalies else ticks.price[:0]
        rollups = batch.rollups.events(self.symbols) if batch is not None else []
        with self._lock:
            self.bars.update(ticks)
            self._remember(ticks)
            self._sample(ticks, last, sampled)
            self._queue_ticks(ticks)
            for a, price in zip(anomalies[:200], at_price.tolist(), strict=False):
                doc = a.to_json()  # a burst beyond 200 is counted, not shown
                doc["price"] = price
                self._events["anomalies"].append((a.symbol, doc))
                self.anomaly_history.append(doc)
            for a in anomalies:
                self.anomaly_counts[(a.type, a.severity)] += 1
            for r in rollups:
                doc = r.to_json()
                self._events["rollups"].append((r.symbol, doc))
                self.rollup_history.append(doc)
            self.ticks_seen += len(ticks)
            self.version += 1

    def on_alert(self, e: AlertEvent) -> None:
        """An alert sink listener: every state change goes to the alerts channel."""
        doc = e.to_json()
        with self._lock:
            self.alert_counts[(e.state, e.severity)] += 1
            if e.repeat:
                return
            self._events["alerts"].append((e.symbol, doc))
            self.alert_history.append(doc)
            self.version += 1

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = None) -> bool:
        return True

    def _sample(self, ticks: TickBatch, last: np.ndarray, sampled: dict[str, np.ndarray]) -> None:
        st = self._strip
        syms = ticks.symbol[last]
        st.ensure(int(syms.max()) + 1)
        cap = st["ts"].shape[1]
        values = np.column_stack([sampled[f] for f in STRIP_FIELDS])
        slots = st["head"][syms] % cap
        st["ts"][syms, slots] = ticks.ts[last]
        st["values"][syms, slots] = values
        st["head"][syms] += 1
        for k, s in enumerate(syms.tolist()):
            doc = {"ts": int(ticks.ts[last[k]]), "volume": float(ticks.volume[last[k]])}
            doc.update(zip(STRIP_FIELDS, values[k].tolist(), strict=True))
            self._latest[s] = doc
            self._signals[s] = doc

    def _remember(self, ticks: TickBatch) -> None:
        r = self._recent
        r.ensure(int(ticks.symbol.max()) + 1)
        ring_k.append(
            ticks.symbol,
            ticks.ts,
            ticks.price,
            ticks.volume,
            ticks.side,
            ticks.seq,
            ticks.source,
            r["ts"],
            r["price"],
            r["volume"],
            r["side"],
            r["seq"],
            r["source"],
            r["head"],
        )

    def _queue_ticks(self, ticks: TickBatch) -> None:
        self._ticks.append(ticks)
        self._tick_count += len(ticks)
        excess = self._tick_count - self.max_updates
        while excess > 0 and self._ticks:  # keep the newest max_updates: conflate the rest
            first = self._ticks[0]
            if len(first) <= excess:
                self._ticks.pop(0)
                cut = len(first)
            else:
                self._ticks[0] = first.take(slice(excess, None))
                cut = excess
            self._tick_count -= cut
            self._dropped += cut
            excess -= cut

    # -- the server side (its loop) -------------------------------------------------------

    def drain(self, channels: frozenset[str] | set[str] = frozenset(CHANNELS)) -> Outbound:
        """Everything since the last drain, serialised once; only ``channels`` (those someone
        listens to) are serialised, the rest is let go."""
        with self._lock:
            ticks, self._ticks, self._tick_count = self._ticks, [], 0
            dropped, self._dropped = self._dropped, 0
            signals, self._signals = self._signals, {}
            events = {k: v for k, v in self._events.items()}
            self._events = {k: [] for k in self._events}
            self.seq += 1
            out = Outbound(self.seq, dropped_ticks=dropped)
        if ticks and "ticks" in channels:
            _tick_fragments(TickBatch.concat(ticks), self.symbols, self.sources, out)
        if "signals" not in channels:
            signals = {}
        for s, doc in signals.items():
            name = self.symbols.name(s)
            out.fragments["signals"][name] = [
                json.dumps({"symbol": name, "timestamp": iso(doc["ts"]), **_finite(doc)})
            ]
        for channel, items in events.items():
            if channel not in channels:
                continue
            frags = out.fragments[channel]
            for symbol, doc in items:
                frags.setdefault(symbol, []).append(json.dumps(doc))
        return out

    # -- reads (any thread) -----------------------------------------------------------------

    def latest(self) -> dict[str, dict[str, Any]]:
        """The last tick and signals of every symbol seen, as JSON values: a signal still
        warming up (NaN) or not finite is None."""
        with self._lock:
            return {self.symbols.name(s): _finite(d, keep_ts=True) for s, d in self._latest.items()}

    def recent_ticks(
        self, symbol: str, before: tuple[int, int] | None = None, limit: int = 100
    ) -> tuple[TickBatch, bool]:
        """A symbol's newest ticks (older than ``before`` = (ts, seq) if given), newest first,
        and whether the ring reaches back far enough to answer (else: ask the database)."""
        sid = self.symbols.id(symbol)
        r = self._recent
        with self._lock:
            if sid is None or sid >= r.n_symbols:
                return TickBatch.empty(), False
            head, cap = int(r["head"][sid]), r["ts"].shape[1]
            n = min(head, cap)
            order = (np.arange(head - 1, head - 1 - n, -1) % cap) if n else np.empty(0, np.int64)
            cols = {
                k: r[k][sid, order].copy()
                for k in ("ts", "price", "volume", "side", "seq", "source")
            }
        if before is not None:
            keep = (cols["ts"] < before[0]) | (
                (cols["ts"] == before[0]) & (cols["seq"] < before[1])
            )
            cols = {k: v[keep] for k, v in cols.items()}
        complete = len(cols["ts"]) > limit  # older ticks may be in the database only
        cols = {k: v[: limit + 1] for k, v in cols.items()}
        batch = TickBatch(
            symbol=np.full(len(cols["ts"]), sid, np.int32),
            ts=cols["ts"],
            price=cols["price"],
            volume=cols["volume"],
            side=cols["side"],
            seq=cols["seq"],
            source=cols["source"],
        )
        return batch, complete

    def bar_series(self, symbol: str) -> dict[str, np.ndarray]:
        """One-minute OHLCV bars of a symbol, oldest first, the open one last."""
        sid = self.symbols.id(symbol)
        with self._lock:
            return self.bars.series(-1 if sid is None else sid)

    def strip(self, symbol: str) -> dict[str, np.ndarray]:
        """The sampled signals of a symbol, oldest first: ``ts`` and each of STRIP_FIELDS."""
        sid = self.symbols.id(symbol)
        st = self._strip
        with self._lock:
            if sid is None or sid >= st.n_symbols:
                return {"ts": np.empty(0, np.int64), **{f: np.empty(0) for f in STRIP_FIELDS}}
            head, cap = int(st["head"][sid]), st["ts"].shape[1]
            n = min(head, cap)
            order = np.arange(head - n, head) % cap
            ts = st["ts"][sid, order].copy()
            values = st["values"][sid, order].copy()
        return {"ts": ts, **{f: values[:, k] for k, f in enumerate(STRIP_FIELDS)}}

    def preload_bars(self, symbol: str, start: np.ndarray, ohlcv: np.ndarray) -> None:
        with self._lock:
            self.bars.preload(self.symbols.intern(symbol), start, ohlcv)


def _last_per_symbol(symbol: np.ndarray) -> np.ndarray:
    """Index of each symbol's last tick in the batch, in symbol order."""
    rev = symbol[::-1]
    _, first_in_rev = np.unique(rev, return_index=True)
    return len(symbol) - 1 - first_in_rev


def _column(name: str, ticks: TickBatch, columns: dict[str, np.ndarray]) -> np.ndarray:
    if name == "price":
        return ticks.price
    col = columns.get(name)
    return col if col is not None else np.full(len(ticks), np.nan)


def _finite(doc: dict[str, Any], keep_ts: bool = False) -> dict[str, Any]:
    """``doc`` with non-finite floats as None (JSON has no NaN), without ``ts`` unless kept."""
    return {
        k: (v if not isinstance(v, float) or np.isfinite(v) else None)
        for k, v in doc.items()
        if keep_ts or k != "ts"
    }


def _tick_fragments(
    ticks: TickBatch, symbols: SymbolTable, sources: SymbolTable, out: Outbound
) -> None:
    """The seed's price update fields (symbol, price, volume, timestamp, source) and ours."""
    stamps = iso_many(ticks.ts).tolist()
    names = [symbols.name(s) for s in range(len(symbols))]
    quoted = [json.dumps(n) for n in names]  # a name is text from a file: quote it properly
    srcs = [json.dumps(sources.name(s)) for s in range(len(sources))]
    frags = out.fragments["ticks"]
    for sym, price, vol, stamp, src, side, seq in zip(
        ticks.symbol.tolist(),
        ticks.price.tolist(),
        ticks.volume.tolist(),
        stamps,
        ticks.source.tolist(),
        ticks.side.tolist(),
        ticks.seq.tolist(),
        strict=True,
    ):
        frags.setdefault(names[sym], []).append(
            f'{{"symbol":{quoted[sym]},"price":{price!r},"volume":{vol!r},"timestamp":"{stamp}",'
            f'"source":{srcs[src] if src < len(srcs) else src},"side":{side},"seq":{seq}}}'
        )
