"""Sliding-window order statistics: rxpipe's design against the alternatives, and a floor.

The full detector set keeps two windows of 100 values sorted per symbol (the quartiles of
returns, the median/p95/p99 of volume), and they are its largest cost. This bench times, in
turns on the same simulated returns and volumes (10 symbols interleaved, 4,096-tick batches),
four ways to keep a window sorted, each checked equal to rxpipe's kernel:

- ``counting pass + memmove`` (rxpipe's ``kernels/quantiles.py``): one branch-free vectorised
  pass finds the places of the leaving and the arriving value, one ``memmove`` shifts between;
- ``binary searches + memmove``: the two places by binary search instead of the pass;
- ``binary search + insertion walk``: the leaving value's place by binary search, then the
  arriving value walks to its place, moving values one at a time;
- ``branch-free merge``: the new sorted row built in a scratch row by one blended pass, copied
  back (no data-dependent branch at all).

It also times the cost of only writing the pass's 38 columns (a value a tick in each row, no
arithmetic): what the fused pass cannot go below however its arithmetic is done.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.data import simulated
from rxpipe.kernels import quantiles as q_k
from rxpipe.kernels.jit import kernel
from rxpipe.kernels.shift import shift
from rxpipe.kernels.slots import ring_next, ring_slot
from rxpipe.operators.detectors import _rows

WINDOW = 100
QS = np.array([0.5, 0.95, 0.99])


@kernel(inline="always")
def _lower_bound(row, n, x):
    """First place in sorted ``row[:n]`` whose value is not below ``x``."""
    lo, count = 0, n
    while count > 0:
        step = count >> 1
        if row[lo + step] < x:
            lo += step + 1
            count -= step + 1
        else:
            count = step
    return lo


@kernel(inline="always")
def _full_binary(row, old, v, w, scratch):
    """A full window: ``old`` leaves, ``v`` arrives (binary searches for both places)."""
    k, t = _lower_bound(row, w, old), _lower_bound(row, w, v)
    if t > k:
        t -= 1
        shift(row, k, k + 1, t - k)
    elif t < k:
        shift(row, t + 1, t, k - t)
    row[t] = v


@kernel(inline="always")
def _full_walk(row, old, v, w, scratch):
    """... ``old``'s place by binary search, then ``v`` walks from there to its own."""
    j = _lower_bound(row, w, old)
    if v > old:
        while j + 1 < w and row[j + 1] < v:
            row[j] = row[j + 1]
            j += 1
    else:
        while j > 0 and row[j - 1] > v:
            row[j] = row[j - 1]
            j -= 1
    row[j] = v


@kernel(inline="always")
def _full_merge(row, old, v, w, scratch):
    """... the new row blended into ``scratch`` in one pass and copied back; ``row`` holds the
    window in ``[1, w]``, with a spare value each side."""
    k, u = 0, 0
    for j in range(1, w + 1):
        k += row[j] < old
        u += row[j] < v
    t = u - 1 if u > k else u
    for j in range(w):
        r = row[j + 2] if (j >= k) & (j < t) else row[j + 1]
        r = row[j] if (j > t) & (j <= k) else r
        scratch[j] = v if j == t else r
    for j in range(w):
        row[j + 1] = scratch[j]


@kernel(inline="always")
def _quantile(row, base, n, q):
    pos = q * (n - 1)
    lo = int(pos)
    hi = lo + 1 if lo + 1 < n else lo
    return row[base + lo] + (row[base + hi] - row[base + lo]) * (pos - lo)


def _kernel(full: Any, base: int) -> Any:
    """Quantiles ``QS`` of the window before each tick, then the tick joins it (as rxpipe's
    ``rolling_quantiles`` with ``min_periods`` 30): ``full`` moves the values of a full window,
    a filling one takes a binary search and a shift; one compiled kernel per design."""

    @kernel
    def run(symbol, x, ring, srt, count, scratch, out):
        w = ring.shape[1]
        for i in range(x.shape[0]):
            s, v = symbol[i], x[i]
            c = count[s]
            n = min(c, w)
            for j in range(3):
                out[i, j] = _quantile(srt[s], base, n, QS[j]) if n >= 30 else np.nan
            if not np.isfinite(v):
                continue
            slot = ring_slot(c, w)
            if c >= w:
                full(srt[s], ring[s, slot], v, w, scratch)
            else:
                row = srt[s]
                t = base + _lower_bound(row[base:], c, v)
                shift(row, t + 1, t, c + base - t)
                row[t] = v
            ring[s, slot] = v
            count[s] = ring_next(c, w)

    return run


@kernel
def _write_rows(price, out):
    for i in range(price.shape[0]):
        x = price[i]
        for k in range(out.shape[0]):
            out[k, i] = x * k


def _design(full: Any, base: int) -> Callable[..., Any]:
    """``base`` 1: the sorted rows keep a spare value each side (the merge reads both)."""
    run = _kernel(full, base)

    def make() -> Any:
        ring, srt = np.zeros((10, WINDOW)), np.zeros((10, WINDOW + 2 * base))
        count, scratch = np.zeros(10, np.int64), np.zeros(WINDOW)

        def step(sym: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
            run(sym, x, ring, srt, count, scratch, out)

        return step

    return make


def _rxpipe() -> Any:
    st = q_k.state(10, WINDOW)

    def step(sym: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
        q_k.rolling_quantiles(sym, x, QS, st["ring"], st["sorted"], st["count"], 30, out)

    return step


DESIGNS = {
    "counting pass + memmove (rxpipe)": _rxpipe,
    "binary searches + memmove": _design(_full_binary, 0),
    "binary search + insertion walk": _design(_full_walk, 0),
    "branch-free merge": _design(_full_merge, 1),
}


def run(n_ticks: int = 2_000_000, rounds: int = 7) -> dict[str, Any]:
    b, _ = simulated(n_ticks)
    returns = np.full(len(b), np.nan)
    for s in np.unique(b.symbol):  # log returns per symbol, as the detectors see them
        at = np.flatnonzero(b.symbol == s)
        returns[at[1:]] = np.diff(np.log(b.price[at]))
    cuts = range(0, len(b), 4096)
    result: dict[str, Any] = {"benchmark": "quantiles", "n_ticks": len(b), "window": WINDOW}
    for field, x in (("returns", returns), ("volume", b.volume)):

        def over_batches(
            make: Any, keep: list[np.ndarray] | None = None, x: np.ndarray = x
        ) -> float:
            step, out = make(), np.empty((4096, 3))
            t0 = time.perf_counter()
            for lo in cuts:
                part = slice(lo, lo + 4096)
                k = len(x[part])
                step(b.symbol[part], x[part], out[:k])
                if keep is not None:
                    keep.append(out[:k].copy())
            return time.perf_counter() - t0

        outputs: dict[str, list[np.ndarray]] = {}
        for name, make in DESIGNS.items():  # also compiles each
            over_batches(make, outputs.setdefault(name, []))
            same = all(
                np.array_equal(a, c, equal_nan=True)
                for a, c in zip(
                    outputs[name], outputs["counting pass + memmove (rxpipe)"], strict=True
                )
            )
            if not same:
                raise SystemExit(f"design {name!r} gives other quantiles than rxpipe's kernel")
        best = dict.fromkeys(DESIGNS, float("inf"))
        order, shuffle = list(DESIGNS), random.Random(2)
        for _ in range(rounds):
            shuffle.shuffle(order)
            for name in order:
                best[name] = min(best[name], over_batches(DESIGNS[name]))
        ns = {name: round(1e9 * sec / len(b), 1) for name, sec in best.items()}
        result[field] = {"ns_per_tick": ns}
        for name, v in ns.items():
            print(f"  {field:<8} {name:<40} {v:>8.1f} ns/tick")
    out, price = _rows(38, 4096), b.price[:4096]
    _write_rows(price, out)
    floor = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(250):
            _write_rows(price, out)
        floor = min(floor, time.perf_counter() - t0)
    result["writing 38 columns, ns per tick"] = round(1e9 * floor / (250 * 4096), 1)
    print(
        f"  {'writing the pass 38 columns, nothing else':<49} {result['writing 38 columns, ns per tick']:>8.1f} ns/tick"
    )
    return result
