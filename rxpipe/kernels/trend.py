"""Trend reversals: a moving-average crossover confirmed by slope, and a CUSUM on returns."""

from __future__ import annotations

import numpy as np

from rxpipe.kernels.jit import kernel
from rxpipe.kernels.slots import ring_next, ring_slot


@kernel(inline="always")
def crossover_step(side, hist, count, s, f, sl, min_gap):
    """+1 when ``f`` (fast) moves above ``sl`` (slow) by at least ``min_gap`` (relative) while
    ``sl`` rises over the symbol's last ``hist.shape[1]`` ticks; -1 for the mirror image; else 0.

    ``side[s]`` is the side last confirmed (hysteresis: gaps under ``min_gap`` change nothing),
    and the first confirmed side of a symbol is not a reversal.
    """
    if not (np.isfinite(f) and np.isfinite(sl)) or sl == 0.0:
        return 0
    lag = hist.shape[1]
    out = 0
    diff = (f - sl) / abs(sl)
    c = count[s]
    slot = ring_slot(c, lag)  # holds the slow average of ``lag`` ticks ago, once full
    now = 1 if diff >= min_gap else (-1 if diff <= -min_gap else 0)
    if now != 0 and now != side[s]:
        if side[s] != 0 and c >= lag and (sl - hist[s, slot]) * now > 0.0:
            out = now
            side[s] = now
        elif side[s] == 0:
            side[s] = now
    hist[s, slot] = sl
    count[s] = ring_next(c, lag)
    return out


@kernel
def crossover(symbol, fast, slow, min_gap, side, hist, count, out):
    """``out[i]``: :func:`crossover_step` of each tick."""
    for i in range(fast.shape[0]):
        out[i] = crossover_step(side, hist, count, symbol[i], fast[i], slow[i], min_gap)


@kernel(inline="always")
def cusum_step(pos, neg, s, v, drift, threshold):
    """Two-sided Page CUSUM step on a standardised return ``v`` (NaN is skipped): +1/-1 when a
    sum passes ``threshold``, after which both sums restart; else 0."""
    if not np.isfinite(v):
        return 0
    pos[s] = max(0.0, pos[s] + v - drift)
    neg[s] = max(0.0, neg[s] - v - drift)
    alarm = 1 if pos[s] > threshold else (-1 if neg[s] > threshold else 0)
    if alarm != 0:
        pos[s] = 0.0
        neg[s] = 0.0
    return alarm


@kernel
def cusum(symbol, z, drift, threshold, pos, neg, out_pos, out_neg, out_alarm):
    """Two-sided Page CUSUM on standardised returns ``z``, per tick: the sums and the alarm."""
    for i in range(z.shape[0]):
        s = symbol[i]
        out_alarm[i] = cusum_step(pos, neg, s, z[i], drift, threshold)
        out_pos[i] = pos[s]
        out_neg[i] = neg[s]
