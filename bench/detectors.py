"""Detector speed against peers on the same generated data, in one process, plus detection
quality on the simulator's labelled events.

Peers: a bare numba z-score kernel, rxpipe's z-score operator through Rx, pandas
groupby-rolling, and river per tick (a rolling mean/variance z-score and HalfSpaceTrees; river
runs on a slice of the data, its rate is per tick so it does not depend on the slice).
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

import numpy as np
import pandas as pd
import reactivex as rx

from bench.data import simulated
from rxpipe.kernels import horizon as hz_k
from rxpipe.kernels import moving as ma_k
from rxpipe.kernels import quantiles as q_k
from rxpipe.kernels import rolling as roll_k
from rxpipe.kernels import volatility as vol_k
from rxpipe.kernels.detect import OPTIONAL
from rxpipe.kernels.rolling import count_state, rolling_count
from rxpipe.model import TickBatch
from rxpipe.operators import DetectorConfig, DetectorSet, zscore
from rxpipe.operators.rollups import Rollups
from rxpipe.signals import ANOMALY_TYPES, METHODS
from rxpipe.sources.simulator import Simulator

WINDOW = 100
NS = 10**9


def _timed(fn: Any, runs: int = 3) -> float:
    fn()  # warm-up: compile, caches
    return statistics.median(_once(fn) for _ in range(runs))


def _interleaved(fns: dict[str, Any], runs: int = 9) -> dict[str, float]:
    """Median seconds of each function, run in turns (this machine's speed drifts by tens of
    per cent over seconds: a comparison measured in turns is fair, one after the other is not)."""
    for fn in fns.values():
        fn()
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(runs):
        for k, fn in fns.items():
            times[k].append(_once(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def _once(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def _batches(b: TickBatch, size: int) -> list[TickBatch]:
    return [b.take(slice(lo, lo + size)) for lo in range(0, len(b), size)]


def speed(n_ticks: int) -> list[dict[str, Any]]:
    b, _ = simulated(n_ticks)
    n = len(b)
    rows: list[dict[str, Any]] = []

    def add(name: str, seconds: float, ticks: int = n, **extra: Any) -> None:
        rows.append(
            {
                "name": name,
                "ticks": ticks,
                "seconds": round(seconds, 4),
                "ticks_per_s": round(ticks / seconds),
                **extra,
            }
        )
        print(f"  {name:<58} {ticks / seconds:>14,.0f} ticks/s")

    batches = _batches(b, 4096)

    def bare() -> None:
        """The kernel alone over the same 4,096-tick batches, outputs preallocated once."""
        st = count_state(10, WINDOW)
        m, s, z = np.empty(4096), np.empty(4096), np.empty(4096)
        for p in batches:
            k = len(p)
            rolling_count(
                p.symbol,
                p.price,
                st["buf"],
                st["count"],
                st["mean"],
                st["m2"],
                30,
                m[:k],
                s[:k],
                z[:k],
            )

    def bare_one_call() -> None:
        st = count_state(10, WINDOW)
        m, s, z = np.empty(n), np.empty(n), np.empty(n)
        rolling_count(b.symbol, b.price, st["buf"], st["count"], st["mean"], st["m2"], 30, m, s, z)

    def operator() -> None:
        rx.from_iterable(batches).pipe(zscore(WINDOW)).subscribe(lambda _: None)

    z = _interleaved({"one": bare_one_call, "bare": bare, "operator": operator})
    add("numba z-score kernel, bare, one call over all ticks", z["one"])
    add("numba z-score kernel, bare, 4,096-tick batches", z["bare"])
    add(
        "rxpipe z-score operator through Rx (4,096-tick batches)",
        z["operator"],
        of_bare_kernel=round(z["bare"] / z["operator"], 3),
    )

    def _run_all(parts: list[TickBatch], rollups: bool = True) -> None:
        det = DetectorSet()
        if not rollups:
            det.rollups = Rollups([])
        for p in parts:
            det.update(p)

    add(
        "full detector set, 1M-tick batches", _timed(lambda: _run_all(_batches(b, 1 << 20)), runs=3)
    )
    add("full detector set, 4,096-tick batches", _timed(lambda: _run_all(batches), runs=3))

    det = DetectorSet()
    lat = []
    for p in batches[:400]:
        t0 = time.perf_counter()
        det.update(p)
        lat.append(time.perf_counter() - t0)
    rows.append(
        {
            "name": "full detector set latency per 4,096-tick batch",
            "p50_ms": round(1e3 * float(np.percentile(lat, 50)), 3),
            "p99_ms": round(1e3 * float(np.percentile(lat, 99)), 3),
            "per_tick_us_p50": round(1e6 * float(np.percentile(lat, 50)) / 4096, 3),
        }
    )
    print(
        f"  full set latency: batch p50 {rows[-1]['p50_ms']} ms, p99 {rows[-1]['p99_ms']} ms, "
        f"{rows[-1]['per_tick_us_p50']} us/tick"
    )
    rows.append({"name": "where the time goes", "ns_per_tick": parts(batches, _run_all)})
    rows += groups(batches)

    df = pd.DataFrame({"symbol": b.symbol, "price": b.price})

    def pandas_z() -> None:
        g = df.groupby("symbol")["price"]
        prev = g.shift(1)
        roll = prev.groupby(df["symbol"]).rolling(WINDOW, min_periods=30)
        mean = roll.mean().reset_index(level=0, drop=True).sort_index()
        std = roll.std().reset_index(level=0, drop=True).sort_index()
        _ = (df["price"] - mean) / std

    add("pandas groupby-rolling z-score", _timed(pandas_z, runs=1))
    rows += _river(b)
    return rows


def parts(batches: list[TickBatch], run_all: Any) -> dict[str, float]:
    """ns a tick of each method's own kernel over the same batches, times the uses the fused
    pass makes of it, next to the whole pass, the rollups and the full set."""
    n = sum(len(p) for p in batches)
    k = len(batches[0])
    qs = np.array([0.25, 0.5, 0.75])

    def each(fn: Any) -> Any:
        return lambda: [fn(p, np.empty(k), np.empty(k), np.empty(k)) for p in batches]

    def fresh(make: Any, fn: Any) -> Any:
        def go() -> None:
            st = make()
            for p in batches:
                fn(st, p, np.empty(len(p)), np.empty(len(p)), np.empty(len(p)))

        return go

    c = DetectorSet().config
    methods = {  # name: (how many times the pass runs it, the kernel over every batch)
        "returns and EWMA volatility": (1, fresh(
            lambda: (np.zeros(10), np.zeros(10), np.full(10, -1, np.int64)),
            lambda st, p, r, v, z: vol_k.ewma_volatility(p.symbol, p.price, 0.02, 30, *st, r, v, z),
        )),
        "rolling mean, std and z (one window)": (4, fresh(
            lambda: count_state(10, WINDOW),
            lambda st, p, m, s, z: rolling_count(
                p.symbol, p.price, st["buf"], st["count"], st["mean"], st["m2"], 30, m, s, z),
        )),
        "time-window z-score": (1, fresh(
            lambda: roll_k.time_state(10, c.time_capacity),
            lambda st, p, m, s, z: roll_k.rolling_time(
                p.symbol, p.ts, p.price, 300 * NS, st["vals"], st["tss"], st["head"], st["size"],
                st["mean"], st["m2"], st["ops"], 30, m, s, z),
        )),
        "rolling quantiles (three, one window)": (2, fresh(
            lambda: q_k.state(10, WINDOW),
            lambda st, p, m, s, z: q_k.rolling_quantiles(
                p.symbol, p.volume, qs, st["ring"], st["sorted"], st["count"], 30,
                np.empty((len(p), 3))),
        )),
        "change over a horizon (one)": (4, fresh(
            lambda: hz_k.state(10, 240),
            lambda st, p, m, s, z: hz_k.change_pct(
                p.symbol, p.ts, p.price, 3600 * NS, 15 * NS, st["closes"], st["cur"],
                st["first"], st["refs"], m),
        )),
        "SMA, EMA and WMA": (1, fresh(
            lambda: (np.zeros((10, 50)), np.zeros(10, np.int64), np.zeros(10), np.zeros(10),
                     np.zeros(10, np.bool_), np.zeros((10, 10)), np.zeros(10, np.int64)),
            lambda st, p, m, s, z: (
                ma_k.sma(p.symbol, p.price, st[0], st[1], st[2], m),
                ma_k.ema(p.symbol, p.price, 0.1, st[3], st[4], s),
                ma_k.wma(p.symbol, p.price, np.arange(1.0, 11.0), st[5], st[6], z)),
        )),
        "rollups (six intervals)": (1, lambda: [r.update(p) for r in [Rollups()] for p in batches]),
    }  # fmt: skip
    timed = _interleaved(
        {
            **{name: fn for name, (_, fn) in methods.items()},
            "the fused pass (every signal and anomaly test)": lambda: run_all(batches, False),
            "the full set (the pass and the rollups)": lambda: run_all(batches),
        },
        runs=5,
    )
    out = {}
    for name, sec in timed.items():
        uses = methods[name][0] if name in methods else 1
        out[name] = round(1e9 * sec / n * uses, 1)
        times = f" x{uses}" if uses > 1 else ""
        print(f"  {name + times:<58} {out[name]:>10.1f} ns/tick")
    return out


def groups(batches: list[TickBatch], rounds: int = 7) -> list[dict[str, Any]]:
    """The detector pass (no rollups) with every optional group, with each left out, and with
    none (the core alone; ``DetectorConfig.methods``): the fastest of ``rounds`` runs each, in a
    shuffled order every round (this machine's slow phases last seconds and would otherwise
    land on whichever variant comes first). A group's cost is every group's time minus the
    time without it: it shares the loop with the others, so this is its cost inside the pass."""
    n = sum(len(p) for p in batches)

    def without(left_out: set[str]) -> Any:
        config = DetectorConfig(methods=tuple(m for m in OPTIONAL if m not in left_out))

        def go() -> None:
            det = DetectorSet(config)
            det.rollups = Rollups([])
            for p in batches:
                det.update(p)

        return go

    variants = {"every group": set(), **{g: {g} for g in OPTIONAL}, "the core alone": set(OPTIONAL)}
    fns = {k: without(v) for k, v in variants.items()}
    for fn in fns.values():
        fn()
    best = dict.fromkeys(fns, float("inf"))
    order = list(fns)
    shuffle = random.Random(1)
    for _ in range(rounds):
        shuffle.shuffle(order)
        for k in order:
            best[k] = min(best[k], _once(fns[k]))
    ns = {k: 1e9 * sec / n for k, sec in best.items()}
    cost = {g: round(ns["every group"] - ns[g], 1) for g in OPTIONAL}
    for g, c in cost.items():
        print(f"  {'group ' + g + ' costs the pass':<58} {c:>10.1f} ns/tick")
    core = best["the core alone"]
    print(f"  {'the pass, every group (no rollups)':<58} {ns['every group']:>10.1f} ns/tick")
    print(f"  {'the core alone (no optional group, no rollups)':<58} {n / core:>14,.0f} ticks/s")
    return [
        {
            "name": "optional groups: the pass without each (fastest of rounds, shuffled)",
            "rounds": rounds,
            "pass_ns_per_tick": {k: round(v, 1) for k, v in ns.items()},
            "group_ns_per_tick": cost,
        },
        {
            "name": "core detectors only (no optional group, no rollups), 4,096-tick batches",
            "ticks": n,
            "seconds": round(core, 4),
            "ticks_per_s": round(n / core),
        },
    ]


def _river(b: TickBatch) -> list[dict[str, Any]]:
    from river import anomaly, stats, utils

    out = []
    m = 200_000
    sym, price = b.symbol[:m].tolist(), b.price[:m].tolist()

    def rolling_z() -> None:
        means = {s: utils.Rolling(stats.Mean(), WINDOW) for s in range(10)}
        vars_ = {s: utils.Rolling(stats.Var(), WINDOW) for s in range(10)}
        for s, p in zip(sym, price, strict=True):
            sd = vars_[s].get() ** 0.5
            _ = (p - means[s].get()) / sd if sd else 0.0
            means[s].update(p)
            vars_[s].update(p)

    sec = _once(rolling_z)
    out.append(
        {
            "name": "river rolling mean/var z-score, per tick",
            "ticks": m,
            "seconds": round(sec, 3),
            "ticks_per_s": round(m / sec),
        }
    )
    print(f"  {out[-1]['name']:<58} {m / sec:>14,.0f} ticks/s")
    k = 20_000
    x = [{"price": p} for p in price[:k]]

    def hst() -> None:
        model = anomaly.HalfSpaceTrees(seed=1)
        for row in x:
            model.score_one(row)
            model.learn_one(row)

    sec = _once(hst)
    out.append(
        {
            "name": "river HalfSpaceTrees, per tick",
            "ticks": k,
            "seconds": round(sec, 3),
            "ticks_per_s": round(k / sec),
        }
    )
    print(f"  {out[-1]['name']:<58} {k / sec:>14,.0f} ticks/s")
    return out


EXPECTED = {
    "price_spike": "price_spike",
    "crash": "price_drop",
    "volume_burst": "volume_spike",
    "volatility_regime": "volatility",
}


def quality(hours: float = 72.0) -> dict[str, Any]:
    """Recall on the simulator's labelled events and false alarms per symbol-hour, by method."""
    sim = Simulator(seed=21, step_s=1.0, start_ns=1_700_000_000 * NS, event_rate_per_hour=0.25)
    det = DetectorSet()
    parts = [det.update(sim.steps(4096)) for _ in range(int(hours * 3600 / 4096))]
    a = {
        k: np.concatenate([p.anomalies.columns[k] for p in parts])
        for k in parts[0].anomalies.columns
    }
    span_h = (int(parts[-1].ticks.ts[-1]) - sim.start_ns) / 3.6e12
    warm = sim.start_ns + 600 * NS
    events = [e for e in sim.events if warm < e.start_ts < parts[-1].ticks.ts[-1] - 600 * NS]
    result: dict[str, Any] = {
        "simulated_hours": round(span_h, 1),
        "symbols": len(sim.names),
        "events": len(events),
        "by_method": {},
    }
    sym_ids = {n: sim.symbols.id(n) for n in sim.names}
    in_event = np.zeros(len(a["ts"]), bool)
    for e in events:
        in_event |= (
            (a["symbol"] == sym_ids[e.symbol])
            & (a["ts"] >= e.start_ts - 60 * NS)
            & (a["ts"] <= max(e.end_ts, e.start_ts + 300 * NS) + 300 * NS)
        )
    late = a["ts"] > warm
    for method in METHODS:
        mm = (a["method"] == METHODS.index(method)) & late
        hits = 0
        for e in events:
            near = (
                mm
                & (a["symbol"] == sym_ids[e.symbol])
                & (a["ts"] >= e.start_ts)
                & (a["ts"] <= max(e.end_ts, e.start_ts + 300 * NS))
            )
            typed = (
                near
                if method in ("ensemble", "cusum")  # these name no price or volume type
                else near & (a["type"] == ANOMALY_TYPES.index(EXPECTED[e.kind]))
            )
            hits += bool(typed.any())
        false_alarms = int((mm & ~in_event).sum())
        result["by_method"][method] = {
            "recall": round(hits / max(len(events), 1), 3),
            "false_alarms_per_symbol_hour": round(false_alarms / (span_h * len(sim.names)), 3),
        }
        print(
            f"  {method:<10} recall {hits / max(len(events), 1):6.1%}   "
            f"false alarms {false_alarms / (span_h * len(sim.names)):8.3f} per symbol-hour"
        )
    return result


def run(n_ticks: int = 5_000_000) -> dict[str, Any]:
    return {
        "benchmark": "detectors",
        "n_ticks": n_ticks,
        "symbols": 10,
        "window": WINDOW,
        "speed": speed(n_ticks),
        "quality": quality(),
    }
