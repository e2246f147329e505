"""Rollups per symbol and time bucket over several intervals (1m, 5m, 15m, 1h, 4h, 1d)."""

from __future__ import annotations

from typing import Any

import numpy as np

from rxpipe.kernels import rollup as ru_k
from rxpipe.model import TickBatch
from rxpipe.operators.state import SymbolState
from rxpipe.signals import RollupBatch

MAX_EXACT = 16_384  # prices a bucket keeps per symbol; past that its quantiles come from a sample


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
        self.intervals = np.array([round(s * 1e9) for s in intervals_s], np.int64)
        k = len(self.intervals)
        self.state = SymbolState(
            bounds=(-1, (k, 2), np.int64),
            counts=(0, (k, 3), np.int64),
            acc=(0.0, (k, 10)),
        )
        self.prices = np.zeros((0, k, 256))
        self._scratch = ru_k.scratch(self.prices.shape[2])

    @property
    def capacity(self) -> int:
        """Prices a bucket keeps before it grows its buffer (or, at ``MAX_EXACT``, samples)."""
        return int(self.prices.shape[2])

    def update(self, batch: TickBatch) -> RollupBatch:
        if not len(batch) or not len(self.intervals):
            return RollupBatch.empty()
        self._ensure(int(batch.symbol.max()) + 1)
        rows = len(batch) * len(self.intervals)  # a tick closes at most one bucket an interval
        out, which = np.empty((rows, len(ru_k.COLUMNS))), np.empty(rows, np.int64)
        i, n_out = 0, 0
        while True:
            i, n_out = ru_k.rollup(
                batch.symbol, batch.ts, batch.price, batch.volume, self.intervals, i,
                self.state["bounds"], self.state["counts"], self.state["acc"], self.prices,
                out, which, n_out, MAX_EXACT, *self._scratch,
            )  # fmt: skip
            if i >= len(batch):
                return self._rows(out[:n_out], which[:n_out])
            self._grow(min(self.capacity * 2, MAX_EXACT))  # a busy bucket

    def flush(self) -> RollupBatch:
        """Rows for the buckets still open (partial), which are then started afresh."""
        n = self.state.n_symbols * len(self.intervals)
        out, which = np.empty((n, len(ru_k.COLUMNS))), np.empty(n, np.int64)
        s = self.state
        n_out = ru_k.flush(
            s["bounds"], s["counts"], s["acc"], self.prices, out, which, 0, *self._scratch
        )
        return self._rows(out[:n_out], which[:n_out])

    def snapshot(self) -> dict[str, np.ndarray]:
        return {**self.state.snapshot(), "prices": self.prices.copy()}

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        snap = dict(snap)
        self.prices = snap.pop("prices").copy()
        self._scratch = ru_k.scratch(self.capacity)
        self.state.restore(snap)

    def _ensure(self, n: int) -> None:
        self.state.ensure(n)
        if len(self.prices) < self.state.n_symbols:
            grown = np.zeros((self.state.n_symbols, *self.prices.shape[1:]))
            grown[: len(self.prices)] = self.prices
            self.prices = grown

    def _grow(self, capacity: int) -> None:
        grown = np.empty((*self.prices.shape[:2], capacity))  # read only up to what is stored
        grown[:, :, : self.capacity] = self.prices
        self.prices = grown
        self._scratch = ru_k.scratch(capacity)

    def _rows(self, rows: np.ndarray, which: np.ndarray) -> RollupBatch:
        if not len(rows):
            return RollupBatch.empty()
        cols = {name: rows[:, k].copy() for k, name in enumerate(ru_k.COLUMNS)}
        cols["symbol"] = cols["symbol"].astype(np.int64)
        cols["start"] = cols["start"].astype(np.int64)
        return RollupBatch(self.intervals[which], cols)
