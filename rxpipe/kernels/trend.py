"""Trend reversals: a moving-average crossover confirmed by slope, and a CUSUM on returns."""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True)
def crossover(symbol, fast, slow, min_gap, side, hist, count, out):
    """``out[i]`` = +1 when ``fast`` moves above ``slow`` by at least ``min_gap`` (relative) while
    ``slow`` rises over the last ``hist.shape[1]`` ticks; -1 for the mirror image; else 0.

    ``side[s]`` is the side last confirmed (hysteresis: gaps under ``min_gap`` change nothing),
    and the first confirmed side of a symbol is not a reversal.
    """
    lag = hist.shape[1]
    for i in range(fast.shape[0]):
        s = symbol[i]
        f, sl = fast[i], slow[i]
        out[i] = 0
        if not (np.isfinite(f) and np.isfinite(sl)) or sl == 0.0:
            continue
        diff = (f - sl) / abs(sl)
        c = count[s]
        now = 1 if diff >= min_gap else (-1 if diff <= -min_gap else 0)
        if now != 0 and now != side[s]:
            if side[s] != 0 and c >= lag and (sl - hist[s, c % lag]) * now > 0.0:
                out[i] = now
                side[s] = now
            elif side[s] == 0:
                side[s] = now
        hist[s, c % lag] = sl
        count[s] = c + 1


@njit(cache=True)
def cusum(symbol, z, drift, threshold, pos, neg, out_pos, out_neg, out_alarm):
    """Two-sided Page CUSUM on standardised returns ``z``: alarm +1/-1 when a sum passes
    ``threshold``, after which both sums restart. NaN inputs are skipped."""
    for i in range(z.shape[0]):
        s = symbol[i]
        v = z[i]
        out_alarm[i] = 0
        if np.isfinite(v):
            pos[s] = max(0.0, pos[s] + v - drift)
            neg[s] = max(0.0, neg[s] - v - drift)
            if pos[s] > threshold:
                out_alarm[i] = 1
                pos[s] = 0.0
                neg[s] = 0.0
            elif neg[s] > threshold:
                out_alarm[i] = -1
                pos[s] = 0.0
                neg[s] = 0.0
        out_pos[i] = pos[s]
        out_neg[i] = neg[s]
