"""The last ticks of each symbol in a ring per symbol (for "the latest N ticks" reads)."""

from __future__ import annotations

from numba import njit


@njit(cache=True)
def append(
    symbol,
    ts,
    price,
    volume,
    side,
    seq,
    source,
    r_ts,
    r_price,
    r_volume,
    r_side,
    r_seq,
    r_source,
    head,
):
    """Write each tick into its symbol's ring at ``head[s] % capacity``; ``head`` counts."""
    capacity = r_ts.shape[1]
    for i in range(symbol.shape[0]):
        s = symbol[i]
        k = head[s] % capacity
        r_ts[s, k] = ts[i]
        r_price[s, k] = price[i]
        r_volume[s, k] = volume[i]
        r_side[s, k] = side[i]
        r_seq[s, k] = seq[i]
        r_source[s, k] = source[i]
        head[s] += 1
