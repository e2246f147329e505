"""Crossings: where one series moves above or below another, per symbol, across batches."""

from __future__ import annotations

from rxpipe.kernels.jit import kernel


@kernel
def crossings(symbol, a, b, last, out):
    """``out[i]``: where ``a - b`` crossed zero at tick ``i``: +1 upwards (the symbol's previous
    difference was <= 0 and this one is > 0), -1 downwards (>= 0, then < 0), else 0. ``last[s]``
    carries the symbol's previous difference across batches (NaN at first: no crossing on a
    first tick, nor next to a NaN)."""
    for i in range(a.shape[0]):
        s = symbol[i]
        d = a[i] - b[i]
        p = last[s]
        out[i] = 1 if p <= 0.0 and d > 0.0 else (-1 if p >= 0.0 and d < 0.0 else 0)
        last[s] = d
