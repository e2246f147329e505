"""Live OHLCV bars per symbol: the closed ones in a bounded ring, and the open one.

>>> from rxpipe.model import TickBatch
>>> bars = Bars(interval_s=60, capacity=10)
>>> bars.update(TickBatch.from_arrays(symbol=[0, 0, 0], ts=[0, 30 * 10**9, 61 * 10**9],
...                                   price=[10.0, 12.0, 11.0], volume=[1.0, 2.0, 3.0]))
1
>>> b = bars.series(0)
>>> b["start"].tolist(), b["high"].tolist(), b["close"].tolist(), b["volume"].tolist()
([0, 60000000000], [12.0, 11.0], [12.0, 11.0], [3.0, 3.0])
"""

from __future__ import annotations

import numpy as np

from rxpipe.kernels import bars as bars_k
from rxpipe.model import TickBatch
from rxpipe.operators.state import SymbolState


class Bars:
    """OHLCV bars of ``interval_s`` seconds; ``capacity`` closed bars per symbol are kept."""

    def __init__(self, interval_s: float = 60.0, capacity: int = 1440) -> None:
        self.interval_ns = int(interval_s * 1e9)
        self.capacity = capacity
        n = len(bars_k.FIELDS)
        self.state = SymbolState(
            cur_start=(-1, (), np.int64),
            cur=(0.0, (n,)),
            starts=(0, (capacity,), np.int64),
            ring=(0.0, (capacity, n)),
            head=(0, (), np.int64),
        )

    def update(self, ticks: TickBatch) -> int:
        """Fold a batch in; returns how many bars closed."""
        if not len(ticks):
            return 0
        self.state.ensure(int(ticks.symbol.max()) + 1)
        st = self.state
        return int(
            bars_k.update(
                ticks.symbol,
                ticks.ts,
                ticks.price,
                ticks.volume,
                self.interval_ns,
                st["cur_start"],
                st["cur"],
                st["starts"],
                st["ring"],
                st["head"],
            )
        )

    def preload(self, symbol: int, start: np.ndarray, ohlcv: np.ndarray) -> None:
        """Put closed history bars (oldest first; columns open, high, low, close, volume, count)
        into an empty ring, e.g. from stored one-minute rollups."""
        self.state.ensure(symbol + 1)
        st = self.state
        if st["head"][symbol] or st["cur_start"][symbol] >= 0 or not len(start):
            return
        keep = slice(max(0, len(start) - self.capacity), None)
        start, ohlcv = start[keep], ohlcv[keep]
        n = len(start)
        st["starts"][symbol, :n] = start
        st["ring"][symbol, :n] = ohlcv
        st["head"][symbol] = n

    def series(self, symbol: int, include_open: bool = True) -> dict[str, np.ndarray]:
        """The symbol's bars, oldest first, as columns ``start`` (ns) and the OHLCV fields."""
        st = self.state
        if symbol >= st.n_symbols:
            return {"start": np.empty(0, np.int64), **{f: np.empty(0) for f in bars_k.FIELDS}}
        head, cap = int(st["head"][symbol]), self.capacity
        n = min(head, cap)
        order = (np.arange(head - n, head) % cap) if n else np.empty(0, np.int64)
        starts = st["starts"][symbol, order]
        rows = st["ring"][symbol, order]
        if include_open and st["cur_start"][symbol] >= 0:
            starts = np.append(starts, st["cur_start"][symbol])
            rows = np.vstack([rows, st["cur"][symbol][None, :]])
        out = {"start": starts.copy()}
        for k, f in enumerate(bars_k.FIELDS):
            out[f] = rows[:, k].copy()
        return out
