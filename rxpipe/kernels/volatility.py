"""Log returns and their EWMA volatility per symbol (RiskMetrics-style)."""

from __future__ import annotations

import math

import numpy as np

from rxpipe.kernels.jit import kernel


@kernel(inline="always")
def ewma_step(var, s, n_returns, r, alpha, min_periods):
    """The symbol's return number ``n_returns`` (from 0) joins its EWMA variance ``var[s]``.

    Returns the volatility after it and the return in units of the volatility before it (NaN
    for the first ``min_periods`` returns). ``var`` starts at the first squared return; then
    ``var = alpha * r**2 + (1 - alpha) * var``.
    """
    prev = var[s]
    z = r / math.sqrt(prev) if n_returns >= min_periods and prev > 0.0 else np.nan
    var[s] = r * r if n_returns == 0 else alpha * r * r + (1.0 - alpha) * prev
    return math.sqrt(var[s]), z


@kernel
def ewma_volatility(symbol, price, alpha, min_periods, last_price, var, n, out_ret, out_vol, out_z):
    """Per tick: the log return, the EWMA volatility after it, and the return in units of the
    volatility before it (NaN until ``min_periods`` returns).

    ``n[s]`` counts the symbol's returns (-1 before its first price); a price that is not
    positive gives NaN and leaves the state alone.
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
        out_vol[i], out_z[i] = ewma_step(var, s, n[s], r, alpha, min_periods)
        n[s] += 1
