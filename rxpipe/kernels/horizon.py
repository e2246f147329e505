"""Price (or volume) change over a time horizon (1h, 4h, 24h) per symbol, in O(1) per tick.

The reference is the last value seen at or before the end of the resolution bucket
``horizon // res`` buckets before the tick's: the bucket that holds ``t - horizon`` when the
bucket size ``res`` divides the horizon (15 s for 1h with ``BUCKETS`` = 240; otherwise the
horizon is a few ns shorter, its remainder by ``res``). Memory per symbol is fixed whatever the
tick rate. A symbol's reference is found at the first tick of each of its buckets and kept for
the others (``refs``).
"""

from __future__ import annotations

import numpy as np

from rxpipe.kernels.jit import kernel

BUCKETS = 240  # resolution buckets per horizon, for the detectors and the rules alike


def ring_size(buckets: int) -> int:
    """Closes a symbol keeps for a horizon of ``buckets``: a power of two above ``buckets + 1``
    (indexed by a mask, not a division)."""
    return 1 << (buckets + 1).bit_length()


def state(n_symbols: int, buckets: int) -> dict[str, np.ndarray]:
    return {
        "closes": np.full((n_symbols, ring_size(buckets)), np.nan),
        "cur": np.full(n_symbols, -1, np.int64),  # current bucket number
        "first": np.full(n_symbols, -1, np.int64),  # first bucket seen
        "refs": np.full(n_symbols, np.nan),  # the reference of the current bucket
    }


@kernel(inline="always")
def change_step(closes, cur, first, refs, s, b, lag, x):
    """``100 * (x / x_ref - 1)`` for symbol ``s``'s tick in resolution bucket ``b``, where
    ``x_ref`` is the last value at or before the end of bucket ``b - lag`` (NaN until the symbol
    has that much history); ``x`` becomes the close of bucket ``b``."""
    ring = closes.shape[1]  # a power of two: see ring_size
    mask = ring - 1
    c = cur[s]
    if b == c:  # the symbol's current bucket: its reference was found at the bucket's first tick
        closes[s, b & mask] = x
        ref = refs[s]
    else:
        if c < 0:
            first[s] = b
        elif b > c:  # carry the last close into the buckets with no tick
            last = closes[s, c & mask]
            k = c + 1
            stop = min(b, c + ring)
            while k < stop:
                closes[s, k & mask] = last
                k += 1
        ref_b = b - lag
        ref = np.nan if ref_b < first[s] or lag >= ring else closes[s, ref_b & mask]
        if b > c:  # a new current bucket (a late tick, b < c, changes nothing kept)
            cur[s] = b
            closes[s, b & mask] = x
            refs[s] = ref
    return 100.0 * (x / ref - 1.0) if ref != 0.0 else np.nan


@kernel
def change_pct(symbol, ts, x, horizon_ns, res_ns, closes, cur, first, refs, out):
    """``out[i]`` = 100 * (x[i] / x(t - horizon) - 1); NaN until the symbol has that much history."""
    lag = horizon_ns // res_ns
    for i in range(x.shape[0]):
        t, s = ts[i], symbol[i]
        c = cur[s]
        lo = c * res_ns
        # the tick's bucket, by division only when it is not the symbol's current one
        b = c if c >= 0 and lo <= t < lo + res_ns else t // res_ns
        out[i] = change_step(closes, cur, first, refs, s, b, lag, x[i])
