"""Tick validation kernel: one pass over a batch, per-symbol last-timestamp state."""

from __future__ import annotations

import numpy as np
from numba import njit

OK = 0
BAD_PRICE = 1
BAD_VOLUME = 2
OUT_OF_ORDER = 3
BAD_SYMBOL = 4
BAD_TIMESTAMP = 5

REASONS = {
    BAD_PRICE: "price is not a finite positive number",
    BAD_VOLUME: "volume is negative or not finite",
    OUT_OF_ORDER: "timestamp is earlier than the previous tick of its symbol by more than the tolerance",
    BAD_SYMBOL: "symbol id is not in the symbol table",
    BAD_TIMESTAMP: "timestamp is not positive",
}


@njit(cache=True, nogil=True)
def validate_ticks(symbol, ts, price, volume, last_ts, tolerance_ns, reason):
    """Write a reason code per tick into ``reason`` (0 = accepted); return the accepted count.

    ``last_ts[s]`` is the latest accepted timestamp of symbol id ``s`` (int64 min when none)
    and is advanced in place by accepted ticks, so a stream split into any batches gives the
    same verdicts.
    """
    n_ok = 0
    n_sym = last_ts.shape[0]
    for i in range(symbol.shape[0]):
        s = symbol[i]
        p = price[i]
        v = volume[i]
        t = ts[i]
        if s < 0 or s >= n_sym:
            reason[i] = BAD_SYMBOL
        elif not np.isfinite(p) or p <= 0.0:
            reason[i] = BAD_PRICE
        elif not np.isfinite(v) or v < 0.0:
            reason[i] = BAD_VOLUME
        elif t <= 0:
            reason[i] = BAD_TIMESTAMP
        elif t < last_ts[s] - tolerance_ns:
            reason[i] = OUT_OF_ORDER
        else:
            reason[i] = OK
            n_ok += 1
            if t > last_ts[s]:
                last_ts[s] = t
    return n_ok
