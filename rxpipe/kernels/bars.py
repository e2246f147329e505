"""OHLCV bars per symbol and time bucket, closed bars kept in a ring per symbol.

``update`` walks the ticks once: a tick of a later bucket closes the symbol's open bar into its
ring (slot ``head % capacity``) and opens a new one. A late tick (of an earlier bucket than the
open bar, within the validator's tolerance) updates the open bar.
"""

from __future__ import annotations

import numpy as np
from numba import njit

OPEN, HIGH, LOW, CLOSE, VOLUME, COUNT = range(6)
FIELDS = ("open", "high", "low", "close", "volume", "count")


def state(n_symbols: int, capacity: int) -> dict[str, np.ndarray]:
    return {
        "cur_start": np.full(n_symbols, -1, np.int64),
        "cur": np.zeros((n_symbols, len(FIELDS))),
        "starts": np.zeros((n_symbols, capacity), np.int64),
        "ring": np.zeros((n_symbols, capacity, len(FIELDS))),
        "head": np.zeros(n_symbols, np.int64),
    }


@njit(cache=True)
def update(symbol, ts, price, volume, interval_ns, cur_start, cur, starts, ring, head):
    """Fold ticks into bars; returns how many bars closed."""
    capacity = starts.shape[1]
    closed = 0
    for i in range(symbol.shape[0]):
        s = symbol[i]
        b = ts[i] - ts[i] % interval_ns
        if cur_start[s] < 0 or b > cur_start[s]:
            if cur_start[s] >= 0:
                slot = head[s] % capacity
                starts[s, slot] = cur_start[s]
                for f in range(6):
                    ring[s, slot, f] = cur[s, f]
                head[s] += 1
                closed += 1
            cur_start[s] = b
            cur[s, OPEN] = price[i]
            cur[s, HIGH] = price[i]
            cur[s, LOW] = price[i]
            cur[s, CLOSE] = price[i]
            cur[s, VOLUME] = volume[i]
            cur[s, COUNT] = 1.0
        else:
            if price[i] > cur[s, HIGH]:
                cur[s, HIGH] = price[i]
            if price[i] < cur[s, LOW]:
                cur[s, LOW] = price[i]
            if b == cur_start[s]:
                cur[s, CLOSE] = price[i]
            cur[s, VOLUME] += volume[i]
            cur[s, COUNT] += 1.0
    return closed
