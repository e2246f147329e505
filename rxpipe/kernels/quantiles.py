"""Rolling quantiles per symbol over a tick-count window, from an incrementally sorted window.

Each symbol keeps its window twice: in arrival order (a ring, to know what leaves) and sorted.
The places of the leaving and the arriving value in the sorted window are found by counting the
values below each (one branch-free pass the compiler vectorises: faster than a binary search's
unpredictable branches at these sizes), and the values between the two places move by one with a
``memmove``: a tick costs one vectorised pass and one move of ``|rank(new) - rank(old)|`` values,
no sort. Quantiles interpolate linearly between order statistics, as numpy's and pandas' default.
"""

from __future__ import annotations

import numpy as np

from rxpipe.kernels.jit import kernel
from rxpipe.kernels.shift import shift
from rxpipe.kernels.slots import ring_next, ring_slot


def state(n_symbols: int, window: int) -> dict[str, np.ndarray]:
    return {
        "ring": np.zeros((n_symbols, window)),
        "sorted": np.zeros((n_symbols, window)),
        "count": np.zeros(n_symbols, np.int64),
    }


@kernel(inline="always")
def _ranks(row, n, a, b):
    """How many of ``row[:n]`` are below ``a``, and how many below ``b`` (first places in a sorted
    row)."""
    below_a = 0
    below_b = 0
    for j in range(n):
        x = row[j]
        below_a += x < a
        below_b += x < b
    return below_a, below_b


@kernel(inline="always")
def quantile_at(srt, count, s, q):
    """Quantile ``q`` of symbol ``s``'s window (which must hold at least one value)."""
    w = srt.shape[1]
    n = min(count[s], w)
    pos = q * (n - 1)
    lo = int(pos)
    hi = lo + 1 if lo + 1 < n else lo
    return srt[s, lo] + (srt[s, hi] - srt[s, lo]) * (pos - lo)


@kernel(inline="always")
def push(ring, srt, count, s, v):
    """``v`` joins symbol ``s``'s window, and the oldest value leaves a full one (finite ``v`` only)."""
    w = ring.shape[1]
    c = count[s]
    slot = ring_slot(c, w)
    row = srt[s]
    if c >= w:
        k, t = _ranks(row, w, ring[s, slot], v)  # the leaving value's place, the new one's
        if t > k:  # the values between move down into the hole
            t -= 1
            shift(row, k, k + 1, t - k)
        elif t < k:
            shift(row, t + 1, t, k - t)
    else:
        t = _ranks(row, c, v, v)[0]
        shift(row, t + 1, t, c - t)
    row[t] = v
    ring[s, slot] = v
    count[s] = ring_next(c, w)


@kernel
def rolling_quantiles(symbol, x, qs, ring, srt, count, min_periods, out):
    """``out[i, j]`` = quantile ``qs[j]`` of the ``window`` values before ``x[i]`` (NaN in warm-up)."""
    w = ring.shape[1]
    nq = qs.shape[0]
    for i in range(x.shape[0]):
        s = symbol[i]
        n = min(count[s], w)
        warm = n >= min_periods and n >= 1
        for j in range(nq):
            out[i, j] = quantile_at(srt, count, s, qs[j]) if warm else np.nan
        if np.isfinite(x[i]):
            push(ring, srt, count, s, x[i])
