"""Moving averages per symbol: SMA over a tick count, EMA (alpha or span), WMA with custom weights."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def sma(symbol, x, buf, count, total, out):
    """Simple moving average of the last ``window`` values including ``x[i]`` (NaN until full).

    The running sum is re-added exactly once per lap of the ring, so it cannot drift.
    """
    w = buf.shape[1]
    for i in range(x.shape[0]):
        s = symbol[i]
        c = count[s]
        slot = c % w
        v = x[i]
        total[s] += v - (buf[s, slot] if c >= w else 0.0)
        buf[s, slot] = v
        count[s] = c + 1
        if slot == w - 1:
            acc = 0.0
            for j in range(w):
                acc += buf[s, j]
            total[s] = acc
        out[i] = total[s] / w if c + 1 >= w else np.nan


@njit(cache=True)
def ema(symbol, x, alpha, value, seen, out):
    """Exponential moving average, ``value = alpha * x + (1 - alpha) * value``, seeded by the first x.

    Same as pandas ``ewm(alpha=alpha, adjust=False).mean()``.
    """
    for i in range(x.shape[0]):
        s = symbol[i]
        v = x[i]
        if seen[s]:
            value[s] = alpha * v + (1.0 - alpha) * value[s]
        else:
            value[s] = v
            seen[s] = True
        out[i] = value[s]


@njit(cache=True)
def wma(symbol, x, weights, buf, count, out):
    """Weighted moving average of the last ``len(weights)`` values; ``weights[-1]`` is the newest's."""
    w = weights.shape[0]
    wsum = 0.0
    for j in range(w):
        wsum += weights[j]
    for i in range(x.shape[0]):
        s = symbol[i]
        c = count[s]
        buf[s, c % w] = x[i]
        count[s] = c + 1
        if c + 1 < w:
            out[i] = np.nan
            continue
        acc = 0.0
        for j in range(w):  # weights[w-1] pairs with the newest value
            acc += weights[j] * buf[s, (c + 1 + j) % w]
        out[i] = acc / wsum
