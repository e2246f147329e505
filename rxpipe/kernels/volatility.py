"""Log returns and their EWMA volatility per symbol (RiskMetrics-style)."""

from __future__ import annotations

import math

import numpy as np
from numba import njit


@njit(cache=True)
def ewma_volatility(symbol, price, alpha, min_periods, last_price, var, n, out_ret, out_vol, out_z):
    """Per tick: the log return, the EWMA volatility after it, and the return in units of the
    volatility before it (NaN until ``min_periods`` returns).

    ``var`` starts at the first squared return; then ``var = alpha * r**2 + (1 - alpha) * var``.
    """
    for i in range(price.shape[0]):
        s = symbol[i]
        p = price[i]
        if n[s] < 0 or not (p > 0.0):  # first price of the symbol (n = -1) or a bad one
            out_ret[i] = np.nan
            out_vol[i] = math.sqrt(var[s]) if n[s] > 0 else np.nan
            out_z[i] = np.nan
            if p > 0.0:
                last_price[s] = p
                n[s] = 0
            continue
        r = math.log(p / last_price[s])
        last_price[s] = p
        out_ret[i] = r
        prev = var[s]
        out_z[i] = r / math.sqrt(prev) if n[s] >= min_periods and prev > 0.0 else np.nan
        var[s] = r * r if n[s] == 0 else alpha * r * r + (1.0 - alpha) * prev
        n[s] += 1
        out_vol[i] = math.sqrt(var[s])
