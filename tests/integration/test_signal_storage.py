"""Anomalies and rollups written by the pipeline into the real embedded PostgreSQL."""

import numpy as np

from rxpipe.model import SymbolTable
from rxpipe.operators.detectors import DetectorSet
from rxpipe.signals import RollupBatch
from rxpipe.sources.simulator import Simulator
from rxpipe.storage.database import Database
from rxpipe.storage.signals import SignalSink, SignalStore

NS = 10**9


def signals():
    syms = SymbolTable()
    sim = Simulator(
        ["BTCUSDT", "ETHUSDT"],
        seed=4,
        step_s=1.0,
        start_ns=1_700_000_000 * NS,
        symbol_table=syms,
        event_rate_per_hour=2.0,
    )
    det = DetectorSet()
    batches = [det.update(sim.steps(600)) for _ in range(12)]  # two hours, in 12 batches
    return syms, batches, det


def test_anomalies_and_rollups_are_stored_once(db: Database) -> None:
    syms, batches, _ = signals()
    sink = SignalSink(lambda: SignalStore(db.connect(), syms))
    for b in batches:
        sink.put(b)
    assert sink.close(timeout=60)
    n_anomalies = sum(len(b.anomalies) for b in batches)
    n_rollups = sum(len(b.rollups) for b in batches)
    assert n_anomalies > 0 and n_rollups > 0
    assert sink.anomalies_stored == n_anomalies
    with db.connect() as conn:
        rows = conn.execute("SELECT count(*) FROM anomalies").fetchone()
        assert rows == (n_anomalies,)
        by_interval = dict(
            conn.execute("SELECT interval_s, count(*) FROM rollups GROUP BY 1").fetchall()
        )
        ts = np.concatenate([b.ticks.ts for b in batches])
        for interval in (60, 3600):  # every bucket but the open last one, per symbol
            assert by_interval[interval] == 2 * (len(np.unique(ts // (interval * NS))) - 1)
        one = conn.execute(
            "SELECT r.count, r.open, r.close, r.min, r.max, r.median, r.vwap FROM rollups r "
            "JOIN symbols s ON s.id = r.symbol_id WHERE s.name = 'BTCUSDT' AND interval_s = 60 "
            "ORDER BY start_time LIMIT 1"
        ).fetchone()
    first = RollupBatch.concat([b.rollups for b in batches])
    m = (first.interval == 60 * NS) & (first.columns["symbol"] == syms.id("BTCUSDT"))
    k = int(np.argmin(np.where(m, first.columns["start"], np.iinfo(np.int64).max)))
    assert one == (
        first.columns["count"][k],
        first.columns["open"][k],
        first.columns["close"][k],
        first.columns["min"][k],
        first.columns["max"][k],
        first.columns["median"][k],
        first.columns["vwap"][k],
    )
    # the same signals again: anomalies kept once, rollups replaced, not doubled
    again = SignalSink(lambda: SignalStore(db.connect(), syms))
    for b in batches:
        again.put(b)
    assert again.close(timeout=60)
    assert again.anomalies_stored == 0
    with db.connect() as conn:
        assert conn.execute("SELECT count(*) FROM anomalies").fetchone() == (n_anomalies,)
        assert conn.execute("SELECT count(*) FROM rollups").fetchone() == (n_rollups,)
        named = conn.execute(
            "SELECT symbol, type, method, severity FROM anomalies_named LIMIT 1"
        ).fetchone()
    assert named is not None and named[0] in ("BTCUSDT", "ETHUSDT")
