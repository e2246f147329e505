"""Moving averages per symbol: SMA over a tick count, EMA (alpha or span), WMA with custom weights."""

from __future__ import annotations

import numpy as np

from rxpipe.kernels.jit import kernel
from rxpipe.kernels.slots import ring_next, ring_slot


@kernel(inline="always")
def sma_step(buf, count, total, s, v):
    """``v`` joins symbol ``s``'s window; the mean of the last ``window`` values (NaN until full).

    The running sum is re-added exactly once per lap of the ring, so it cannot drift.
    """
    w = buf.shape[1]
    c = count[s]
    slot = ring_slot(c, w)
    total[s] += v - (buf[s, slot] if c >= w else 0.0)
    buf[s, slot] = v
    count[s] = ring_next(c, w)
    if slot == w - 1:
        acc = 0.0
        for j in range(w):
            acc += buf[s, j]
        total[s] = acc
    return total[s] / w if c + 1 >= w else np.nan


@kernel
def sma(symbol, x, buf, count, total, out):
    """Simple moving average of the last ``window`` values including ``x[i]`` (NaN until full)."""
    for i in range(x.shape[0]):
        out[i] = sma_step(buf, count, total, symbol[i], x[i])


@kernel(inline="always")
def ema_step(value, seen, s, v, alpha):
    """``value = alpha * v + (1 - alpha) * value`` for symbol ``s``, seeded by its first ``v``."""
    if seen[s]:
        value[s] = alpha * v + (1.0 - alpha) * value[s]
    else:
        value[s] = v
        seen[s] = True
    return value[s]


@kernel
def ema(symbol, x, alpha, value, seen, out):
    """Exponential moving average, seeded by the first x.

    Same as pandas ``ewm(alpha=alpha, adjust=False).mean()``.
    """
    for i in range(x.shape[0]):
        out[i] = ema_step(value, seen, symbol[i], x[i], alpha)


@kernel(inline="always")
def wma_step(buf, count, s, v, weights, wsum):
    """``v`` joins symbol ``s``'s last ``len(weights)`` values; their weighted mean
    (``weights[-1]`` is the newest's; NaN until full). ``wsum`` is ``weights.sum()``."""
    w = weights.shape[0]
    c = count[s]
    slot = ring_slot(c, w)
    buf[s, slot] = v
    count[s] = ring_next(c, w)
    if c + 1 < w:
        return np.nan
    # the oldest value is in the slot after the newest; weights[w-1] pairs with the newest
    acc = 0.0
    for j in range(w - 1 - slot):
        acc += weights[j] * buf[s, slot + 1 + j]
    for j in range(slot + 1):
        acc += weights[w - 1 - slot + j] * buf[s, j]
    return acc / wsum


@kernel
def wma(symbol, x, weights, buf, count, out):
    """Weighted moving average of the last ``len(weights)`` values; ``weights[-1]`` is the newest's."""
    wsum = 0.0
    for j in range(weights.shape[0]):
        wsum += weights[j]
    for i in range(x.shape[0]):
        out[i] = wma_step(buf, count, symbol[i], x[i], weights, wsum)
