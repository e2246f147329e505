"""Rollups per symbol and time bucket: count, sum, min, max, mean, open, close, VWAP, median,
std, coefficient of variation, p95, p99, price range and volume statistics.

A bucket's row is written when the symbol's first tick of a later bucket arrives (or on
``flush``). Prices of the open bucket are kept, so median and percentiles are exact; each
bucket is sorted once when it closes. When a symbol's bucket outgrows the buffer the kernel
stops and says where, and the caller grows the buffer and calls again, up to ``max_exact``
prices. Past that, memory stays bounded: the buffer is sorted and every other price kept (each
now standing for two), and from then on one tick in two is stored (then one in four, ...): a
deterministic sample, the same whatever the batching, whose quantiles are within a fraction of a
per cent in rank of the exact ones. Count, sum, min, max, mean, std and VWAP stay exact.
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
_ACC = (
    "count",
    "sum",
    "min",
    "max",
    "open",
    "close",
    "pv",
    "v",
    "vmin",
    "vmax",
    "mean",
    "m2",
    "stored",  # prices kept for the quantiles
    "level",  # one tick in 2**level is kept
)
ACC = {name: k for k, name in enumerate(_ACC)}


def state(n_symbols: int, capacity: int = 1024) -> dict[str, np.ndarray]:
    return {
        "bucket": np.full(n_symbols, -1, np.int64),
        "acc": np.zeros((n_symbols, len(_ACC))),
        "prices": np.zeros((n_symbols, capacity)),
    }


@njit(cache=True)
def _quantile_sorted(a, n, q):
    pos = q * (n - 1)
    lo = int(pos)
    hi = min(lo + 1, n - 1)
    return a[lo] + (a[hi] - a[lo]) * (pos - lo)


@njit(cache=True)
def _emit(s, start, acc, prices, out, k):
    n = int(acc[0])
    m = int(acc[12])
    a = np.sort(prices[:m])
    mean = acc[10]
    std = math.sqrt(acc[11] / (n - 1)) if n > 1 else 0.0
    row = out[k]
    row[0] = s
    row[1] = start
    row[2] = n
    row[3] = acc[1]
    row[4] = acc[2]
    row[5] = acc[3]
    row[6] = mean
    row[7] = acc[4]
    row[8] = acc[5]
    row[9] = acc[6] / acc[7] if acc[7] > 0.0 else mean
    row[10] = _quantile_sorted(a, m, 0.5)
    row[11] = std
    row[12] = std / mean if mean != 0.0 else np.nan
    row[13] = _quantile_sorted(a, m, 0.95)
    row[14] = _quantile_sorted(a, m, 0.99)
    row[15] = acc[3] - acc[2]
    row[16] = acc[7]
    row[17] = acc[8]
    row[18] = acc[9]
    row[19] = acc[9] - acc[8]


@njit(cache=True)
def _compact(prices, acc):
    """Halve a full buffer: sort it, keep every other price, store one tick in twice as many."""
    m = int(acc[12])
    prices[:m].sort()
    half = m // 2
    for j in range(half):
        prices[j] = prices[2 * j + 1]
    acc[12] = half
    acc[13] += 1.0


@njit(cache=True)
def rollup(
    symbol, ts, price, volume, interval_ns, start_i, bucket, acc, prices, out, n_out, max_exact
):
    """Process ticks from ``start_i``; rows go to ``out[n_out:]`` (float64, ``len(COLUMNS)`` wide).

    Returns ``(next_i, n_out)``: ``next_i < len(ts)`` means a bucket needs a bigger ``prices``
    (only while ``prices`` holds fewer than ``max_exact``; past it, the bucket is sampled).
    """
    cap = prices.shape[1]
    for i in range(start_i, ts.shape[0]):
        s = symbol[i]
        b = ts[i] // interval_ns
        if bucket[s] != b:
            if bucket[s] >= 0 and acc[s, 0] > 0:
                _emit(s, bucket[s] * interval_ns, acc[s], prices[s], out, n_out)
                n_out += 1
            bucket[s] = b
            acc[s, :] = 0.0
        a = acc[s]
        n = int(a[0])
        if a[12] >= cap:
            if cap < max_exact:
                return i, n_out
            _compact(prices[s], a)
        p = price[i]
        v = volume[i]
        if n == 0:
            a[2] = p
            a[3] = p
            a[4] = p
            a[8] = v
            a[9] = v
        a[0] = n + 1
        a[1] += p
        a[2] = min(a[2], p)
        a[3] = max(a[3], p)
        a[5] = p
        a[6] += p * v
        a[7] += v
        a[8] = min(a[8], v)
        a[9] = max(a[9], v)
        delta = p - a[10]
        a[10] += delta / (n + 1)
        a[11] += delta * (p - a[10])
        if n % (1 << int(a[13])) == 0:
            prices[s, int(a[12])] = p
            a[12] += 1.0
    return ts.shape[0], n_out


@njit(cache=True)
def flush(bucket, acc, prices, interval_ns, out, n_out):
    """Write the open bucket of every symbol and clear it."""
    for s in range(bucket.shape[0]):
        if bucket[s] >= 0 and acc[s, 0] > 0:
            _emit(s, bucket[s] * interval_ns, acc[s], prices[s], out, n_out)
            n_out += 1
            acc[s, :] = 0.0
    return n_out
