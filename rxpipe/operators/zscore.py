"""The z-score of a tick field against its rolling window, as a small detector and an Rx operator."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import reactivex as rx
from reactivex import operators as ops

from rxpipe.kernels.rolling import rolling_count
from rxpipe.model import TickBatch
from rxpipe.operators.state import SymbolState
from rxpipe.signals import SignalBatch


class ZScore:
    """Rolling z-score of ``field`` (``price`` or ``volume``) over the last ``window`` ticks of
    each symbol; NaN until ``min_periods`` ticks.

    >>> z = ZScore(window=3, min_periods=3)
    >>> b = TickBatch.from_arrays(symbol=[0] * 5, ts=range(1, 6), price=[1.0, 2.0, 3.0, 4.0, 10.0],
    ...                           volume=[1.0] * 5)
    >>> z.update(b)["z"].round(3).tolist()
    [nan, nan, nan, 2.0, 7.0]
    """

    def __init__(self, window: int = 100, *, field: str = "price", min_periods: int = 30) -> None:
        if field not in ("price", "volume"):
            raise ValueError(f"field is 'price' or 'volume', not {field!r}")
        self.window, self.field, self.min_periods = window, field, min_periods
        self.state = SymbolState(
            buf=(0.0, (window,)), count=(0, (), np.int64), mean=(0.0, ()), m2=(0.0, ())
        )

    def update(self, batch: TickBatch) -> SignalBatch:
        n = len(batch)
        x = getattr(batch, self.field)
        mean, std, z = np.empty((3, n))  # one allocation for the three columns
        a = self.state.arrays
        done = rolling_count(
            batch.symbol, x, a["buf"], a["count"], a["mean"], a["m2"], self.min_periods,
            mean, std, z,
        )  # fmt: skip
        while done < n:  # a symbol new to the state: grow it and go on from that tick
            self.state.ensure(int(batch.symbol[done:].max()) + 1)
            a = self.state.arrays
            done = rolling_count(
                batch.symbol, x, a["buf"], a["count"], a["mean"], a["m2"], self.min_periods,
                mean, std, z, done,
            )  # fmt: skip
        return SignalBatch(batch, {"mean": mean, "std": std, "z": z})

    def snapshot(self) -> dict[str, np.ndarray]:
        return self.state.snapshot()

    def restore(self, snap: dict[str, np.ndarray]) -> None:
        self.state.restore(snap)


def zscore(
    window: int = 100,
    *,
    field: str = "price",
    min_periods: int = 30,
) -> Callable[[rx.Observable[TickBatch]], rx.Observable[SignalBatch]]:
    """Rx operator: each TickBatch becomes a SignalBatch with ``mean``, ``std`` and ``z`` columns.

    >>> import reactivex as rx
    >>> b = TickBatch.from_arrays(symbol=[0] * 4, ts=[1, 2, 3, 4], price=[1.0, 2.0, 1.0, 9.0],
    ...                           volume=[1.0] * 4)
    >>> rx.of(b).pipe(zscore(3, min_periods=3)).run()["z"][-1].round(2)
    np.float64(13.28)
    """
    detector = ZScore(window, field=field, min_periods=min_periods)
    return ops.map(detector.update)


def detect(config: Any = None) -> Callable[[rx.Observable[TickBatch]], rx.Observable[SignalBatch]]:
    """Rx operator: the full detector set (every method, moving averages, rollups, ensemble)."""
    from rxpipe.operators.detectors import DetectorSet

    return ops.map(DetectorSet(config).update)
