"""Episodes: the first tick of each run of consecutive hits of one symbol."""

from __future__ import annotations

from rxpipe.kernels.jit import kernel


@kernel
def episode_starts(symbol, hit, active, out):
    """``out[i]`` is True where ``hit[i]`` and the symbol's previous tick was not a hit.

    ``active[s]`` carries whether the symbol's last tick was a hit across batches.
    """
    for i in range(hit.shape[0]):
        s = symbol[i]
        out[i] = hit[i] and not active[s]
        active[s] = hit[i]


@kernel
def previous_per_symbol(symbol, x, last, out):
    """``out[i]`` = the symbol's previous ``x`` (``last[s]`` across batches; NaN at first)."""
    for i in range(x.shape[0]):
        s = symbol[i]
        out[i] = last[s]
        last[s] = x[i]
