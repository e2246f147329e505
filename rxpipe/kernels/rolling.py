"""Rolling mean, standard deviation and z-score per symbol, over a tick count or a time window.

Outputs for tick ``i`` describe the window of ticks *before* it (strictly causal), so a spike
is measured against what came before and cannot inflate its own deviation. Sliding Welford
updates keep the sums stable on BTC-sized prices; the window is re-summed exactly once every
window length, so rounding cannot drift. Standard deviations are sample ones (ddof=1).
"""

from __future__ import annotations

import math

import numpy as np

from rxpipe.kernels.jit import kernel
from rxpipe.kernels.slots import ring_next, ring_slot


def count_state(n_symbols: int, window: int) -> dict[str, np.ndarray]:
    return {
        "buf": np.zeros((n_symbols, window)),
        "count": np.zeros(n_symbols, np.int64),
        "mean": np.zeros(n_symbols),
        "m2": np.zeros(n_symbols),
    }


@kernel
def _resum(row, n):
    mean = 0.0
    for j in range(n):
        mean += row[j]
    mean /= n
    m2 = 0.0
    for j in range(n):
        d = row[j] - mean
        m2 += d * d
    return mean, m2


@kernel(inline="always")
def _stats(mean, m2, n, v, min_periods):
    """Mean, sample std and z-score of ``v`` against ``n`` values summed as ``mean``, ``m2``
    (NaN below ``min_periods`` values or 2; z NaN for a zero std)."""
    if n < min_periods or n < 2:
        return np.nan, np.nan, np.nan
    sd = math.sqrt(max(m2, 0.0) / (n - 1))
    return mean, sd, (v - mean) / sd if sd > 0.0 else np.nan


@kernel(inline="always")
def count_step(buf, count, mean, m2, s, v, min_periods):
    """One tick of :func:`rolling_count`: ``(mean, std, z)`` of ``v`` against symbol ``s``'s
    window before it, then ``v`` joins the window (a non-finite ``v`` does not). ``count[s]``
    counts values until the window is full, then wraps in ``[w, 2w)`` (see ``slots``)."""
    w = buf.shape[1]
    c = count[s]
    mu, sd, z = _stats(mean[s], m2[s], c if c < w else w, v, min_periods)
    if not np.isfinite(v):
        return mu, sd, z
    slot = ring_slot(c, w)
    if c < w:
        delta = v - mean[s]
        mean[s] += delta / (c + 1)
        m2[s] += delta * (v - mean[s])
    else:
        old = buf[s, slot]
        new_mean = mean[s] + (v - old) / w
        before = m2[s]
        m2[s] += (v - old) * (v - new_mean + old - mean[s])
        mean[s] = new_mean
        if m2[s] < 1e-3 * before:  # a large value left: the difference lost digits
            buf[s, slot] = v
            mean[s], m2[s] = _resum(buf[s], w)
    buf[s, slot] = v
    count[s] = ring_next(c, w)
    if slot == w - 1:  # a full lap of the ring: re-sum exactly
        mean[s], m2[s] = _resum(buf[s], w)
    return mu, sd, z


@kernel
def rolling_count(symbol, x, buf, count, mean, m2, min_periods, out_mean, out_std, out_z, start=0):
    """Mean, std and z-score of each ``x[i]`` against the previous ``window`` values of its symbol.

    NaN until ``min_periods`` values are in the window; z is NaN when the std is zero.
    Non-finite ``x`` are skipped (outputs NaN, state unchanged). Starts at tick ``start`` and
    returns where it stopped: ``len(x)``, or the first tick whose symbol has no state yet (the
    caller grows the state and calls again from there, instead of finding the batch's highest
    symbol id first).
    """
    n_symbols = buf.shape[0]
    for i in range(start, x.shape[0]):
        s = symbol[i]
        if s >= n_symbols:
            return i
        out_mean[i], out_std[i], out_z[i] = count_step(buf, count, mean, m2, s, x[i], min_periods)
    return x.shape[0]


def time_state(n_symbols: int, capacity: int) -> dict[str, np.ndarray]:
    """State for :func:`rolling_time`; ``capacity`` (values a symbol's window holds) is a power
    of two, so the ring is indexed by a mask rather than a division."""
    if capacity < 1 or capacity & (capacity - 1):
        raise ValueError(f"the time window's capacity must be a power of two, not {capacity}")
    return {
        "vals": np.zeros((n_symbols, capacity)),
        "tss": np.zeros((n_symbols, capacity), np.int64),
        "head": np.zeros(n_symbols, np.int64),  # index of the oldest value (monotone counter)
        "size": np.zeros(n_symbols, np.int64),
        "mean": np.zeros(n_symbols),
        "m2": np.zeros(n_symbols),
        "ops": np.zeros(n_symbols, np.int64),
    }


@kernel
def _resum_ring(vals, head, size):
    mask = vals.shape[0] - 1
    mean = 0.0
    for j in range(size):
        mean += vals[(head + j) & mask]
    mean /= max(size, 1)
    m2 = 0.0
    for j in range(size):
        d = vals[(head + j) & mask] - mean
        m2 += d * d
    return mean, m2


@kernel(inline="always")
def time_step(vals, tss, head, size, mean, m2, ops, s, t, v, horizon_ns, min_periods):
    """One tick of :func:`rolling_time` at time ``t``: ``(mean, std, z)`` of ``v`` against the
    values of symbol ``s`` in the last ``horizon_ns`` before it, then ``v`` joins them."""
    cap = vals.shape[1]  # a power of two
    mask = cap - 1
    # expire values older than the horizon, and make room
    while size[s] > 0 and (tss[s, head[s] & mask] <= t - horizon_ns or size[s] >= cap):
        old = vals[s, head[s] & mask]
        head[s] += 1
        size[s] -= 1
        if size[s] == 0:
            mean[s] = 0.0
            m2[s] = 0.0
        else:
            delta = old - mean[s]
            before = m2[s]
            mean[s] -= delta / size[s]
            m2[s] -= delta * (old - mean[s])
            if m2[s] < 1e-3 * before:  # a large value left: the difference lost digits
                mean[s], m2[s] = _resum_ring(vals[s], head[s] & mask, size[s])
        ops[s] += 1
    n = size[s]
    mu, sd, z = _stats(mean[s], m2[s], n, v, min_periods)
    if not np.isfinite(v):
        return mu, sd, z
    slot = (head[s] + n) & mask
    vals[s, slot] = v
    tss[s, slot] = t
    size[s] = n + 1
    delta = v - mean[s]
    mean[s] += delta / (n + 1)
    m2[s] += delta * (v - mean[s])
    ops[s] += 1
    if ops[s] >= cap:
        mean[s], m2[s] = _resum_ring(vals[s], head[s] & mask, size[s])
        ops[s] = 0
    return mu, sd, z


@kernel
def rolling_time(
    symbol,
    ts,
    x,
    horizon_ns,
    vals,
    tss,
    head,
    size,
    mean,
    m2,
    ops,
    min_periods,
    out_mean,
    out_std,
    out_z,
):
    """As :func:`rolling_count`, over the values of the last ``horizon_ns`` nanoseconds.

    The window holds at most ``capacity`` values per symbol; beyond that the oldest go first.
    """
    for i in range(x.shape[0]):
        out_mean[i], out_std[i], out_z[i] = time_step(
            vals, tss, head, size, mean, m2, ops, symbol[i], ts[i], x[i], horizon_ns, min_periods
        )
