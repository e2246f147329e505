"""Rolling quantiles per symbol over a tick-count window, from an incrementally sorted window.

Each symbol keeps its window twice: in arrival order (a ring, to know what leaves) and sorted.
A new value is placed by binary search and the leaving one removed the same way, so a tick costs
O(log w) comparisons plus one contiguous shift of at most ``w`` floats (a memmove; for the
windows used here, w <= a few thousand, it is faster than a pointer-based tree). No per-tick sort.
Quantiles interpolate linearly between order statistics, as numpy's and pandas' default.
"""

from __future__ import annotations

import numpy as np
from numba import njit


def state(n_symbols: int, window: int) -> dict[str, np.ndarray]:
    return {
        "ring": np.zeros((n_symbols, window)),
        "sorted": np.zeros((n_symbols, window)),
        "count": np.zeros(n_symbols, np.int64),
    }


@njit(cache=True, inline="always")
def _search(srt, s, n, v):
    """First position in ``srt[s, :n]`` whose value is >= v (branch-free binary search)."""
    lo = 0
    size = n
    while size > 1:
        half = size >> 1
        if srt[s, lo + half - 1] < v:
            lo += half
        size -= half
    if size == 1 and srt[s, lo] < v:
        lo += 1
    return lo


@njit(cache=True)
def rolling_quantiles(symbol, x, qs, ring, srt, count, min_periods, out):
    """``out[i, j]`` = quantile ``qs[j]`` of the ``window`` values before ``x[i]`` (NaN in warm-up)."""
    w = ring.shape[1]
    nq = qs.shape[0]
    for i in range(x.shape[0]):
        s = symbol[i]
        c = count[s]
        n = c if c < w else w
        if n >= min_periods and n >= 1:
            for j in range(nq):
                pos = qs[j] * (n - 1)
                lo = int(pos)
                hi = lo + 1 if lo + 1 < n else lo
                out[i, j] = srt[s, lo] + (srt[s, hi] - srt[s, lo]) * (pos - lo)
        else:
            for j in range(nq):
                out[i, j] = np.nan
        v = x[i]
        if not np.isfinite(v):
            continue
        slot = c % w
        if c >= w:  # take out the value leaving the window, then slide the new one into place
            k = _search(srt, s, n, ring[s, slot])
            t = _search(srt, s, n, v)
            if t > k:  # new value goes after the hole: shift the values between left
                t -= 1
                for j in range(k, t):
                    srt[s, j] = srt[s, j + 1]
            else:
                for j in range(k, t, -1):
                    srt[s, j] = srt[s, j - 1]
            srt[s, t] = v
        else:
            t = _search(srt, s, n, v)
            for j in range(n, t, -1):
                srt[s, j] = srt[s, j - 1]
            srt[s, t] = v
        ring[s, slot] = v
        count[s] = c + 1
