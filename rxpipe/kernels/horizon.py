"""Price (or volume) change over a time horizon (1h, 4h, 24h) per symbol, in O(1) per tick.

The reference is the last value seen at or before the end of the resolution bucket that holds
``t - horizon``; the bucket is ``horizon / buckets`` long (15 s for 1h with 240 buckets), so
memory per symbol is fixed whatever the tick rate.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def state(n_symbols: int, buckets: int) -> dict[str, np.ndarray]:
    return {
        "closes": np.full((n_symbols, buckets + 2), np.nan),
        "cur": np.full(n_symbols, -1, np.int64),  # current bucket number
        "first": np.full(n_symbols, -1, np.int64),  # first bucket seen
    }


@njit(cache=True)
def change_pct(symbol, ts, x, horizon_ns, res_ns, closes, cur, first, out):
    """``out[i]`` = 100 * (x[i] / x(t - horizon) - 1); NaN until the symbol has that much history."""
    ring = closes.shape[1]
    for i in range(x.shape[0]):
        s = symbol[i]
        b = ts[i] // res_ns
        if cur[s] < 0:
            first[s] = b
        elif b > cur[s]:  # carry the last close into the buckets with no tick
            last = closes[s, cur[s] % ring]
            k = cur[s] + 1
            stop = min(b, cur[s] + ring)
            while k < stop:
                closes[s, k % ring] = last
                k += 1
        if b >= cur[s]:
            cur[s] = b
            closes[s, b % ring] = x[i]
        ref_b = (ts[i] - horizon_ns) // res_ns
        if ref_b < first[s] or b - ref_b >= ring:
            out[i] = np.nan
        else:
            ref = closes[s, ref_b % ring]
            out[i] = 100.0 * (x[i] / ref - 1.0) if ref != 0.0 else np.nan
