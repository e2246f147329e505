"""Rules, alerts and silences in the real embedded PostgreSQL."""

import time

import numpy as np

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.rules.defaults import seed_rules
from rxpipe.rules.engine import AlertEngine, Silence
from rxpipe.rules.model import Rule
from rxpipe.signals import SignalBatch
from rxpipe.storage.database import Database
from rxpipe.storage.rules import AlertStore, RuleStore

NS = 10**9


def test_rules_crud_seed_and_version(db: Database) -> None:
    with db.connect() as conn:
        store = RuleStore(conn)
        assert store.seed(seed_rules()) == 15
        assert store.seed(seed_rules()) == 0  # only the first time
        v1 = store.version()
        rule = Rule(
            id="mine", name="mine", condition="price > 1", labels={"desk": "a"}, **{"for": "30s"}
        )
        store.save(rule)
        assert store.get("mine") == rule and store.version() != v1
        assert len(store.list()) == 16
        assert store.delete("mine") and store.get("mine") is None and not store.delete("mine")


def test_alert_history_and_current_state(db: Database) -> None:
    syms = SymbolTable(["BTCUSDT"])
    engine = AlertEngine([Rule(id="r", name="high", condition="price > 100")], syms)
    engine.silences.append(Silence("s", {"symbol": "BTCUSDT"}, 10 * NS, 20 * NS))
    b = TickBatch.from_arrays(
        symbol=np.zeros(4),
        ts=np.array([1, 2, 3, 4]) * NS,
        price=[101.0, 99, 101, 102],
        volume=np.ones(4),
    )
    events = engine.update(SignalBatch(b, {}))
    with db.connect() as conn:
        alerts = AlertStore(conn)
        assert alerts.record(events) == 3
        assert alerts.record(events) == 3  # recording again keeps one history row per change
        history = conn.execute(
            "SELECT state, extract(epoch FROM at)::int FROM alert_events ORDER BY at"
        ).fetchall()
        assert history == [("firing", 1), ("resolved", 2), ("firing", 3)]
        row = conn.execute("SELECT state, symbol, value, acknowledged FROM alerts").fetchall()
        assert row == [("firing", "BTCUSDT", 101.0, False)]
        assert alerts.acknowledge(events[-1].fingerprint)
        alerts.add_silence(engine.silences[0])
        assert alerts.silences() == engine.silences


def test_alert_sink_hot_reloads_rules_and_records_alerts(db: Database) -> None:
    from rxpipe.storage.alerts_sink import AlertSink

    syms = SymbolTable(["BTCUSDT"])
    sink = AlertSink(AlertEngine([], syms), db.connect, reload_s=0.1)
    try:
        b = TickBatch.from_arrays(
            symbol=np.zeros(3),
            ts=np.array([1, 2, 3]) * NS,
            price=[99.0, 101, 102],
            volume=np.ones(3),
        )
        sink.put(SignalBatch(b, {}))
        assert sink.flush(10) and sink.events == 0  # no rules yet
        with db.connect() as conn:
            RuleStore(conn).save(Rule(id="live", name="live", condition="price > 100"))
        deadline = time.monotonic() + 10
        while not sink.engine.rules and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [r.id for r in sink.engine.rules] == ["live"]  # picked up without a restart
        b2 = TickBatch.from_arrays(
            symbol=np.zeros(2), ts=np.array([4, 5]) * NS, price=[101.0, 99], volume=np.ones(2)
        )
        sink.put(SignalBatch(b2, {}))
        assert sink.flush(10)
        with db.connect() as conn:
            got = conn.execute("SELECT rule_id, state FROM alert_events ORDER BY at").fetchall()
        assert got == [("live", "firing"), ("live", "resolved")]
    finally:
        assert sink.close(10)


def test_alert_sink_picks_up_silences_and_acknowledgements_from_the_database(
    db: Database,
) -> None:
    from rxpipe.storage.alerts_sink import AlertSink

    syms = SymbolTable(["BTCUSDT"])
    with db.connect() as conn:
        RuleStore(conn).save(Rule(id="hot", name="hot", condition="price > 100"))
    sink = AlertSink(AlertEngine([], syms), db.connect, reload_s=0.1)
    try:
        deadline = time.monotonic() + 10
        while not sink.engine.rules and time.monotonic() < deadline:
            time.sleep(0.05)
        b = TickBatch.from_arrays(symbol=[0], ts=[NS], price=[101.0], volume=[1.0])
        sink.put(SignalBatch(b, {}))
        assert sink.flush(10)
        with db.connect() as conn:  # another process acknowledges it and adds a silence
            (fp,) = conn.execute("SELECT fingerprint FROM alerts").fetchone()
            assert AlertStore(conn).acknowledge(fp)
            AlertStore(conn).add_silence(Silence("quiet", {"symbol": "BTCUSDT"}, 0, 10**20))
        while (not sink.engine.silences or fp not in sink.engine.acknowledged) and (
            time.monotonic() < deadline
        ):
            time.sleep(0.05)
        assert [s.id for s in sink.engine.silences] == ["quiet"]  # no rule changed meanwhile
        assert fp in sink.engine.acknowledged
    finally:
        assert sink.close(10)
