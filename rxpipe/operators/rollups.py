"""Rollups per symbol and time bucket over several intervals (1m, 5m, 15m, 1h, 4h, 1d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rxpipe.kernels import rollup as ru_k
from rxpipe.model import TickBatch
from rxpipe.operators.state import SymbolState
from rxpipe.signals import RollupBatch

MAX_EXACT = 16_384  # prices a bucket keeps per symbol; past that its quantiles come from a sample


class _Interval:
    def __init__(self, seconds: float) -> None:
        self.ns = int(seconds * 1e9)
        self.state = SymbolState(bucket=(-1, (), np.int64), acc=(0.0, (len(ru_k._ACC),)))
        self.prices = np.zeros((0, 256))

    def ensure(self, n: int) -> None:
        self.state.ensure(n)
        if len(self.prices) < self.state.n_symbols:
            grown = np.zeros((self.state.n_symbols, self.prices.shape[1]))
            grown[: len(self.prices)] = self.prices
            self.prices = grown

    def update(self, b: TickBatch) -> RollupBatch:
        if not len(b):
            return RollupBatch.empty()
        self.ensure(int(b.symbol.max()) + 1)
        span = int(b.ts.max() - b.ts.min()) // self.ns + 2
        out = np.empty((min(len(b), self.state.n_symbols * span), len(ru_k.COLUMNS)))
        i, n_out = 0, 0
        while True:
            i, n_out = ru_k.rollup(
                b.symbol,
                b.ts,
                b.price,
                b.volume,
                self.ns,
                i,
                self.state["bucket"],
                self.state["acc"],
                self.prices,
                out,
                n_out,
                MAX_EXACT,
            )
            if i >= len(b):
                break
            wider = min(self.prices.shape[1] * 2, MAX_EXACT)  # a busy bucket
            grown = np.zeros((len(self.prices), wider))
            grown[:, : self.prices.shape[1]] = self.prices
            self.prices = grown
        return _rows(out[:n_out], self.ns)

    def flush(self) -> RollupBatch:
        out = np.empty((self.state.n_symbols, len(ru_k.COLUMNS)))
        n_out = ru_k.flush(self.state["bucket"], self.state["acc"], self.prices, self.ns, out, 0)
        return _rows(out[:n_out], self.ns)


def _rows(rows: np.ndarray, interval_ns: int) -> RollupBatch:
    cols = {name: rows[:, k].copy() for k, name in enumerate(ru_k.COLUMNS)}
    cols["symbol"] = cols["symbol"].astype(np.int64)
    cols["start"] = cols["start"].astype(np.int64)
    return RollupBatch(np.full(len(rows), interval_ns, np.int64), cols)


class Rollups:
    """Closes a rollup row per symbol and bucket of each interval as ticks pass.

    >>> from rxpipe.model import TickBatch
    >>> r = Rollups([60])
    >>> b = TickBatch.from_arrays(symbol=[0, 0, 0], ts=[0, 30 * 10**9, 61 * 10**9],
    ...                           price=[1.0, 3.0, 2.0], volume=[1.0, 1.0, 1.0])
    >>> rows = r.update(b)
    >>> len(rows), rows.columns["mean"].tolist(), rows.columns["max"].tolist()
    (1, [2.0], [3.0])
    """

    def __init__(self, intervals_s: Any = (60, 300, 900, 3600, 14400, 86400)) -> None:
        self.intervals = [_Interval(s) for s in intervals_s]

    def update(self, batch: TickBatch) -> RollupBatch:
        return RollupBatch.concat([iv.update(batch) for iv in self.intervals])

    def flush(self) -> RollupBatch:
        """Rows for the buckets still open (partial), which are then started afresh."""
        return RollupBatch.concat([iv.flush() for iv in self.intervals])

    def snapshot(self) -> list[dict[str, np.ndarray]]:
        return [{**iv.state.snapshot(), "prices": iv.prices.copy()} for iv in self.intervals]

    def restore(self, snap: list[dict[str, np.ndarray]]) -> None:
        for iv, s in zip(self.intervals, snap, strict=True):
            s = dict(s)
            iv.prices = s.pop("prices").copy()
            iv.state.restore(s)
