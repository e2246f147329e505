"""Rollups per symbol and time bucket, for several intervals in one pass: count, sum, min, max,
mean, open, close, VWAP, median, std, coefficient of variation, p95, p99, price range and
volume statistics.

A bucket's row is written when the symbol's first tick of a later bucket arrives (or on
``flush``). A tick costs a few additions per interval: the bucket's bounds are kept, so no
division is needed until the bucket changes, and mean and variance come from sums of the
prices' distances to the bucket's open (exact enough: the distances are small). Prices of the
open bucket are kept, so median and percentiles are exact order statistics, found when the
bucket closes by one counting pass over 1,024 value bins and a sort of the few prices in the
bins that hold the wanted ranks (no sort of the bucket). When a bucket outgrows its buffer the
kernel stops and says where, and the caller grows the buffer and calls again, up to
``max_exact`` prices. Past that, memory stays bounded: every other price is kept (each now
standing for two), and from then on one tick in two is stored (then one in four, ...): a
systematic sample of the bucket's ticks, the same whatever the batching, whose quantiles are
within a fraction of a per cent in rank of the exact ones. Count, sum, min, max, mean, std and
VWAP stay exact.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

# Output columns, in order (all float64 except symbol and start, which are int64).
COLUMNS = (
    "symbol",
    "start",
    "count",
    "sum",
    "min",
    "max",
    "mean",
    "open",
    "close",
    "vwap",
    "median",
    "std",
    "cv",
    "p95",
    "p99",
    "range",
    "volume",
    "volume_min",
    "volume_max",
    "volume_range",
)
# The open bucket of a symbol and interval: integers, then sums and extremes.
N, STORED, LEVEL = range(3)  # ticks, prices kept, one tick in 2**LEVEL is kept
OPEN, S1, S2, MIN, MAX, CLOSE, PV, V, VMIN, VMAX = range(10)  # S1, S2: sums of (p - open)**k
NBINS = 1024
QUANTILES = (0.5, 0.95, 0.99)


def state(n_symbols: int, n_intervals: int, capacity: int = 256) -> dict[str, np.ndarray]:
    return {
        "bounds": np.full((n_symbols, n_intervals, 2), -1, np.int64),  # [start, end) of the bucket
        "counts": np.zeros((n_symbols, n_intervals, 3), np.int64),
        "acc": np.zeros((n_symbols, n_intervals, 10)),
        "prices": np.zeros((n_symbols, n_intervals, capacity)),
    }


def scratch(capacity: int) -> tuple[np.ndarray, np.ndarray]:
    """Working space for :func:`rollup` and :func:`flush`: bin counts and a buffer of prices."""
    return np.zeros(NBINS, np.int64), np.zeros(capacity)


@njit(cache=True)
def order_stats(a, m, ranks, out, hist, buf):
    """``out[j]`` = the ``ranks[j]``-th smallest of ``a[:m]`` (0-based, ``ranks`` ascending).

    One pass counts the values in ``NBINS`` equal bins between the least and the largest value;
    the values in the bins that hold the ranks (a few, unless they pile up in one bin) are
    sorted in ``buf``, and the ranks read off there. Binning is monotone, so the result is exact.
    """
    lo, hi = a[0], a[0]
    for j in range(m):
        lo = min(lo, a[j])
        hi = max(hi, a[j])
    if hi == lo:
        out[:] = lo
        return
    scale = NBINS / (hi - lo)
    hist[:] = 0
    for j in range(m):
        hist[min(int((a[j] - lo) * scale), NBINS - 1)] += 1
    # the bin of each rank and the rank within it; wanted bins become -1 - (first place in buf)
    bins = np.empty(len(ranks), np.int64)
    b, below = 0, 0
    for r in range(len(ranks)):
        while below + hist[b] <= ranks[r]:
            below += hist[b]
            b += 1
        bins[r] = b
        out[r] = ranks[r] - below  # rank within the bin, for now
    g = 0
    for r in range(len(ranks)):
        if r == 0 or bins[r] != bins[r - 1]:
            n_bin = hist[bins[r]]
            hist[bins[r]] = -1 - g
            g += n_bin
        out[r] += -1 - hist[bins[r]]
    fill = 0
    for j in range(m):
        if hist[min(int((a[j] - lo) * scale), NBINS - 1)] < 0:
            buf[fill] = a[j]
            fill += 1
    buf[:g].sort()
    for r in range(len(ranks)):
        out[r] = buf[int(out[r])]


@njit(cache=True)
def _emit(s, k, start, counts, acc, prices, out, n_out, hist, buf):
    n, m = counts[s, k, N], counts[s, k, STORED]
    o = acc[s, k, OPEN]
    s1, s2 = acc[s, k, S1], acc[s, k, S2]
    mean = o + s1 / n
    std = math.sqrt(max(s2 - s1 * s1 / n, 0.0) / (n - 1)) if n > 1 else 0.0
    ranks = np.empty(2 * len(QUANTILES), np.int64)
    for j in range(len(QUANTILES)):
        pos = QUANTILES[j] * (m - 1)
        ranks[2 * j] = int(pos)
        ranks[2 * j + 1] = min(int(pos) + 1, m - 1)
    q = np.empty(len(ranks))
    order_stats(prices[s, k], m, ranks, q, hist, buf)
    for j in range(len(QUANTILES)):
        pos = QUANTILES[j] * (m - 1)
        q[j] = q[2 * j] + (q[2 * j + 1] - q[2 * j]) * (pos - int(pos))
    v = acc[s, k, V]
    row = out[n_out]
    row[0] = s
    row[1] = start
    row[2] = n
    row[3] = n * o + s1
    row[4] = acc[s, k, MIN]
    row[5] = acc[s, k, MAX]
    row[6] = mean
    row[7] = o
    row[8] = acc[s, k, CLOSE]
    row[9] = acc[s, k, PV] / v if v > 0.0 else mean
    row[10] = q[0]
    row[11] = std
    row[12] = std / mean if mean != 0.0 else np.nan
    row[13] = q[1]
    row[14] = q[2]
    row[15] = acc[s, k, MAX] - acc[s, k, MIN]
    row[16] = v
    row[17] = acc[s, k, VMIN]
    row[18] = acc[s, k, VMAX]
    row[19] = acc[s, k, VMAX] - acc[s, k, VMIN]


@njit(cache=True)
def _compact(prices, s, k, counts):
    """Halve a full buffer: keep every other price in arrival order and store one tick in twice
    as many from now on. The bucket keeps exactly its ticks ``n`` with ``n % 2**LEVEL == 0``:
    the same sample whatever the batching, found in one pass (no sort: a sort of the 60 buffers
    of ten symbols that fill at the same tick cost a 30 ms pause)."""
    m = counts[s, k, STORED]
    row = prices[s, k]
    half = (m + 1) // 2
    for j in range(half):
        row[j] = row[2 * j]
    counts[s, k, STORED] = half
    counts[s, k, LEVEL] += 1


@njit(cache=True)
def rollup(
    symbol, ts, price, volume, intervals, start_i, bounds, counts, acc, prices,
    out, out_interval, n_out, max_exact, hist, buf,
):  # fmt: skip
    """Process ticks from ``start_i``; closed rows go to ``out[n_out:]`` (``len(COLUMNS)`` wide)
    with their interval (an index into ``intervals``, in ns) in ``out_interval``.

    Returns ``(next_i, n_out)``: ``next_i < len(ts)`` means a bucket needs a bigger ``prices``
    (only while ``prices`` holds fewer than ``max_exact``; past it, the bucket is sampled).
    """
    cap = prices.shape[2]
    n_iv = intervals.shape[0]
    for i in range(start_i, ts.shape[0]):
        s, t = symbol[i], ts[i]
        grow = False
        for k in range(n_iv):
            if t < bounds[s, k, 0] or t >= bounds[s, k, 1]:  # the first tick of a new bucket
                if counts[s, k, N] > 0:
                    _emit(s, k, bounds[s, k, 0], counts, acc, prices, out, n_out, hist, buf)
                    out_interval[n_out] = k
                    n_out += 1
                bounds[s, k, 0] = t // intervals[k] * intervals[k]
                bounds[s, k, 1] = bounds[s, k, 0] + intervals[k]
                counts[s, k, :] = 0
            if counts[s, k, STORED] >= cap:
                if cap < max_exact:
                    grow = True
                else:
                    _compact(prices, s, k, counts)
        if grow:
            return i, n_out
        p, v = price[i], volume[i]
        for k in range(n_iv):
            n = counts[s, k, N]
            if n == 0:
                acc[s, k, OPEN] = acc[s, k, MIN] = acc[s, k, MAX] = p
                acc[s, k, VMIN] = acc[s, k, VMAX] = v
                acc[s, k, S1] = acc[s, k, S2] = acc[s, k, PV] = acc[s, k, V] = 0.0
            d = p - acc[s, k, OPEN]
            acc[s, k, S1] += d
            acc[s, k, S2] += d * d
            acc[s, k, MIN] = min(acc[s, k, MIN], p)
            acc[s, k, MAX] = max(acc[s, k, MAX], p)
            acc[s, k, CLOSE] = p
            acc[s, k, PV] += p * v
            acc[s, k, V] += v
            acc[s, k, VMIN] = min(acc[s, k, VMIN], v)
            acc[s, k, VMAX] = max(acc[s, k, VMAX], v)
            counts[s, k, N] = n + 1
            if n & ((1 << counts[s, k, LEVEL]) - 1) == 0:
                prices[s, k, counts[s, k, STORED]] = p
                counts[s, k, STORED] += 1
    return ts.shape[0], n_out


@njit(cache=True)
def flush(bounds, counts, acc, prices, out, out_interval, n_out, hist, buf):
    """Write the open bucket of every symbol and interval, and clear it."""
    for s in range(bounds.shape[0]):
        for k in range(bounds.shape[1]):
            if counts[s, k, N] > 0:
                _emit(s, k, bounds[s, k, 0], counts, acc, prices, out, n_out, hist, buf)
                out_interval[n_out] = k
                n_out += 1
                counts[s, k, :] = 0
                bounds[s, k, :] = -1
    return n_out
