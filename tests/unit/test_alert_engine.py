"""The alert state machine: pending/for, flapping, resolve, silence, inhibition, repeat interval."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxpipe.errors import InputError
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.rules.defaults import seed_rules
from rxpipe.rules.engine import AlertEngine, Silence, fingerprint
from rxpipe.rules.model import Rule, load_rules
from rxpipe.signals import SignalBatch

NS = 10**9


def ticks(prices, symbols=None, start_s=0, step_s=1) -> SignalBatch:
    n = len(prices)
    ts = (start_s + np.arange(n) * step_s + 1) * NS
    return SignalBatch(
        TickBatch.from_arrays(
            symbol=symbols if symbols is not None else np.zeros(n),
            ts=ts,
            price=prices,
            volume=np.ones(n),
        ),
        {},
    )


def states(events):
    return [(e.symbol, e.state, e.at // NS) for e in events]


SYMS = SymbolTable(["BTCUSDT", "ETHUSDT"])


def test_for_duration_keeps_an_alert_pending_until_it_has_held() -> None:
    rule = Rule(name="high", condition="price > 100", **{"for": "3s"})
    engine = AlertEngine([rule], SYMS)
    ev = engine.update(ticks([101, 101, 101, 101, 101, 99]))
    assert states(ev) == [
        ("BTCUSDT", "pending", 1),
        ("BTCUSDT", "firing", 4),
        ("BTCUSDT", "resolved", 6),
    ]
    assert ev[1].started_at == 4 * NS and ev[2].started_at == 4 * NS and ev[1].value == 101


def test_flapping_shorter_than_for_never_fires() -> None:
    rule = Rule(name="high", condition="price > 100", **{"for": "5s"})
    engine = AlertEngine([rule], SYMS)
    ev = engine.update(ticks([101, 101, 99, 101, 101, 101, 99, 101]))
    assert [e.state for e in ev] == ["pending", "inactive", "pending", "inactive", "pending"]
    assert not any(e.notify for e in ev)


def test_keep_firing_for_turns_a_burst_into_one_alert() -> None:
    rule = Rule(name="spiky", condition="price > 100", keep_firing_for="3s")
    engine = AlertEngine([rule], SYMS)
    # true at 1, false at 2, true at 3, then false from 4 on: quiet for 3 s at t=6
    ev = engine.update(ticks([101, 99, 101, 99, 99, 99, 99, 99]))
    assert states(ev) == [("BTCUSDT", "firing", 1), ("BTCUSDT", "resolved", 6)]
    # the same, split over batches, gives the same alerts
    split = AlertEngine([rule], SYMS)
    got = []
    for lo in range(0, 8, 3):
        prices = [101, 99, 101, 99, 99, 99, 99, 99][lo : lo + 3]
        got += split.update(ticks(prices, start_s=lo))
    assert states(got) == states(ev)


@settings(max_examples=150, deadline=None)
@given(
    above=st.lists(st.booleans(), min_size=1, max_size=40),
    cuts=st.lists(st.integers(1, 40), max_size=8),
    for_s=st.integers(0, 3),
    keep_s=st.integers(0, 4),
)
def test_any_split_into_batches_gives_the_same_alerts(above, cuts, for_s, keep_s) -> None:
    # batches without a true tick, with alerts firing through keep_firing_for, pending or due
    # to resolve: the state machine's shortcut for quiet batches must change nothing
    rule = Rule(
        name="high", condition="price > 100", **{"for": f"{for_s}s"}, keep_firing_for=f"{keep_s}s"
    )
    prices = [101.0 if a else 99.0 for a in above]
    whole = states(AlertEngine([rule], SYMS).update(ticks(prices)))
    split, got, lo = AlertEngine([rule], SYMS), [], 0
    for size in [*cuts, len(prices)]:
        got += split.update(ticks(prices[lo : lo + size], start_s=lo))
        lo += size
        if lo >= len(prices):
            break
    assert states(got) == whole


def test_shared_series_give_the_same_alerts_and_are_dropped_when_unused() -> None:
    a = Rule(id="a", name="a", condition="crosses_above(ema(price, 3), ema(price, 5))")
    b = Rule(id="b", name="b", condition="ema(price, 3) > 100 and ema( price , 5 ) > 1")
    both, a_alone, b_alone = (
        AlertEngine([a, b], SYMS),
        AlertEngine([a], SYMS),
        AlertEngine([b], SYMS),
    )
    assert len(both.shared) == 3  # ema(price, 3), ema(price, 5) and the crossing: once each
    rng = np.random.default_rng(3)
    for k in range(4):
        batch = ticks(100 + rng.normal(0, 3, 50).cumsum(), start_s=50 * k)
        got = both.update(batch)
        assert states(e for e in got if e.rule_id == "a") == states(a_alone.update(batch))
        assert states(e for e in got if e.rule_id == "b") == states(b_alone.update(batch))
    assert any(e.rule_id == "a" for e in both.update(ticks([90, 120, 80, 130], start_s=500)))
    both.set_rules([b])
    assert len(both.shared) == 2  # the crossing went with rule a


def test_state_survives_batch_boundaries_and_symbols_are_separate() -> None:
    engine = AlertEngine([Rule(name="high", condition="price > 100", **{"for": "3s"})], SYMS)
    a = engine.update(ticks([101, 50, 101], symbols=[0, 1, 0]))  # BTC true from t=1
    b = engine.update(ticks([101, 200, 200, 10], symbols=[0, 1, 1, 0], start_s=3))
    assert states(a) == [("BTCUSDT", "pending", 1)]
    # BTC has held 3 s at t=4, in the next batch; ETH's own clock starts at t=5
    assert states(b) == [
        ("BTCUSDT", "firing", 4),
        ("ETHUSDT", "pending", 5),
        ("BTCUSDT", "resolved", 7),
    ]


def test_silence_mutes_matching_alerts_in_its_time_range() -> None:
    engine = AlertEngine([Rule(name="high", condition="price > 100")], SYMS)
    engine.silences.append(Silence("s1", {"symbol": "BTCUSDT"}, starts_at=0, ends_at=3 * NS))
    ev = engine.update(ticks([101, 99, 101, 99]))
    assert [(e.state, e.silenced, e.notify) for e in ev] == [
        ("firing", True, False),
        ("resolved", True, False),
        ("firing", False, True),
        ("resolved", False, True),
    ]


def test_a_critical_alert_inhibits_lower_ones_of_its_symbol() -> None:
    crit = Rule(id="crit", name="crash", condition="price < 50", severity="critical")
    low = Rule(id="low", name="below 80", condition="price < 80", severity="medium")
    engine = AlertEngine([crit, low], SYMS)
    ev = engine.update(ticks([40, 40, 70, 60], symbols=[0, 1, 0, 0]))
    by = {(e.rule_id, e.symbol, e.at // NS): e for e in ev}
    assert by[("crit", "BTCUSDT", 1)].notify and not by[("crit", "BTCUSDT", 1)].inhibited
    assert by[("low", "BTCUSDT", 1)].inhibited and not by[("low", "BTCUSDT", 1)].notify
    assert by[("crit", "BTCUSDT", 3)].state == "resolved"


def test_repeat_interval_and_acknowledgement() -> None:
    engine = AlertEngine([Rule(name="high", condition="price > 100", repeat_interval="10s")], SYMS)
    first = engine.update(ticks([101] * 5))
    assert [(e.state, e.repeat) for e in first] == [("firing", False)]
    later = engine.update(ticks([101] * 5, start_s=12))
    assert [(e.state, e.repeat, e.at // NS) for e in later] == [("firing", True, 17)]
    engine.acknowledge(later[0].fingerprint)
    assert engine.update(ticks([101] * 3, start_s=30)) == []
    assert [e.state for e in engine.update(ticks([99], start_s=40))] == ["resolved"]


def test_hot_reload_keeps_unchanged_rules_and_resets_changed_ones() -> None:
    r1 = Rule(id="a", name="a", condition="price > 100")
    engine = AlertEngine([r1], SYMS)
    engine.update(ticks([101]))
    engine.set_rules([r1, Rule(id="b", name="b", condition="price > 200")])
    events = engine.update(ticks([101, 250], start_s=2))
    assert [(e.rule_id, e.state) for e in events] == [
        ("b", "firing")
    ]  # "a" kept firing: no new event
    assert {rid for rid, _, _ in engine.firing()} == {"a", "b"}
    engine.set_rules([Rule(id="a", name="a", condition="price > 105")])
    assert engine.firing() == []


def test_fingerprint_is_per_rule_symbol_and_labels() -> None:
    assert fingerprint("r", "BTC", {"a": "1"}) == fingerprint("r", "BTC", {"a": "1"})
    assert (
        len(
            {
                fingerprint("r", "BTC", {}),
                fingerprint("r", "ETH", {}),
                fingerprint("r", "BTC", {"a": "1"}),
                fingerprint("q", "BTC", {}),
            }
        )
        == 4
    )


def test_annotations_use_the_values_that_fired_and_nothing_else() -> None:
    rule = Rule(
        name="high",
        condition="price > 100",
        annotations={"summary": "{symbol} at {value:.1f}", "bad": "{value.__class__}"},
    )
    ev = AlertEngine([rule], SYMS).update(ticks([123.45]))
    assert ev[0].annotations == {"summary": "BTCUSDT at 123.5", "bad": "{value.__class__}"}


def test_seed_rules_and_their_spellings() -> None:
    rules = seed_rules()
    assert len(rules) == 15 and len({r.id for r in rules}) == 15
    eth = next(r for r in rules if r.name == "ETH Support Break")
    assert eth.symbols == ["ETHUSDT"] and eth.severity == "critical"
    r = Rule.model_validate(
        {
            "Name": "x",
            "Condition": "price_change_4h",
            "Threshold": 15,
            "Severity": "warning",
            "Symbol": "SOLUSDT",
        }
    )
    assert r.effective_condition() == "price_change_4h > 15.0" and r.severity == "medium"


def test_rule_files_one_or_many_and_their_errors(tmp_path) -> None:
    one = tmp_path / "one.yaml"
    one.write_text("name: breakout\ncondition: price > 50000\nsymbols: [BTCUSDT]\nfor: 30s\n")
    many = tmp_path / "many.yaml"
    many.write_text(
        "- {name: a, condition: price > 1}\n- {name: b, condition: volume > 2, severity: high}\n"
    )
    assert [r.for_s for r in load_rules(one)] == [30.0]
    assert [r.name for r in load_rules(many)] == ["a", "b"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {name: a, condition: price >}\n")
    with pytest.raises(InputError, match=r"rule 1 \(a\): .*condition.*line 1, column 8"):
        load_rules(bad)
    bad.write_text("- {name: a, condition: price > 1, severity: dire}\n")
    with pytest.raises(InputError, match="severity is one of"):
        load_rules(bad)


def test_the_simulators_labelled_events_fire_the_seed_rules() -> None:
    from rxpipe.operators.detectors import DetectorSet
    from rxpipe.sources.simulator import Simulator

    syms = SymbolTable()
    sim = Simulator(
        ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        seed=5,
        step_s=1.0,
        start_ns=1_700_000_000 * NS,
        symbol_table=syms,
        event_rate_per_hour=1.0,
    )
    det, engine = DetectorSet(), AlertEngine(seed_rules(), syms)
    events = []
    for _ in range(4 * 3600 // 600):
        events += engine.update(det.update(sim.steps(600)))
    labelled = [
        e
        for e in sim.events
        if e.kind in ("price_spike", "crash", "volume_burst")
        and e.start_ts > sim.start_ns + 900 * NS
        and e.start_ts < sim.start_ns + 4 * 3600 * NS - 600 * NS
    ]
    assert labelled
    # an alert keeps firing for a while after its last true tick (keep_firing_for), so an event
    # counts as found when an alert of its symbol fires, or is firing, in its first 5 minutes
    firing: dict[tuple[str, str], int] = {}
    spans: list[tuple[str, int, int]] = []
    for a in events:
        key = (a.rule_id, a.symbol)
        if a.state == "firing" and not a.repeat:
            firing[key] = a.at
        elif a.state == "resolved" and key in firing:
            spans.append((a.symbol, firing.pop(key), a.at))
    spans += [(sym, t, 2**62) for (_, sym), t in firing.items()]
    for ev in labelled:
        window = (ev.start_ts, ev.start_ts + 300 * NS)
        near = [s for s in spans if s[0] == ev.symbol and s[1] <= window[1] and s[2] >= window[0]]
        assert near, f"no seed rule fired for {ev}"


def test_a_symbol_that_first_appears_mid_stream_is_watched() -> None:
    """A rule for every symbol watches one interned after the stream began (an exchange or a
    replay that brings a new pair), not only those known at the first batch."""
    syms = SymbolTable(["BTCUSDT"])
    engine = AlertEngine([Rule(name="high", condition="price > 100")], syms)
    engine.update(ticks([101.0]))
    late = syms.intern("SOLUSDT")  # id 1, below the engine's state size (8)
    fired = engine.update(ticks([101.0], symbols=[late], start_s=5))
    assert states(fired) == [("SOLUSDT", "firing", 6)]


def _walk_every_tick(symbol, ts, finite, fired, applies, for_ns, keep_ns, state, since, last):
    """The state machine as its definition reads, one tick at a time, nothing skipped."""
    out = []
    for r in range(fired.shape[0]):
        for i in range(len(symbol)):
            s = symbol[i]
            if not applies[r, s]:
                continue
            if fired[r, i] and finite[i]:
                last[r, s] = ts[i]
                if state[r, s] == 0:
                    since[r, s] = ts[i]
                    state[r, s] = 2 if for_ns[r] <= 0 else 1
                    out.append((r, i, 2 if for_ns[r] <= 0 else 1))
                elif state[r, s] == 1 and ts[i] - since[r, s] >= for_ns[r]:
                    state[r, s] = 2
                    out.append((r, i, 2))
            elif state[r, s] == 2 and ts[i] - last[r, s] < keep_ns[r]:
                continue
            elif state[r, s] != 0:
                out.append((r, i, 3 if state[r, s] == 2 else 4))
                state[r, s] = 0
    return out


@settings(max_examples=200, deadline=None)
@given(
    n_batches=st.integers(1, 6),
    density=st.sampled_from([0.0, 0.01, 0.1, 0.5]),
    for_s=st.lists(st.integers(0, 3), min_size=3, max_size=3),
    keep_s=st.lists(st.sampled_from([0, 1, 5, 1000]), min_size=3, max_size=3),
    seed=st.integers(0, 2**16),
)
def test_the_kernel_skips_only_ticks_that_change_nothing(
    n_batches, density, for_s, keep_s, seed
) -> None:
    """The kernel walks only the symbols and ticks that can change an alert (and only the true
    ticks when nothing pends or is due and no alert can resolve within the batch): the same
    transitions as a walk over every tick, batch after batch, with sparse and dense conditions,
    unwatched symbols and ticks without a price."""
    from rxpipe.kernels.alerts import transitions

    rng = np.random.default_rng(seed)
    n_rules, n_sym = 3, 4
    applies = rng.random((n_rules, n_sym)) < 0.8
    for_ns = np.array(for_s, np.int64) * NS
    keep_ns = np.array(keep_s, np.int64) * NS
    mine = [np.zeros((n_rules, n_sym), dt) for dt in (np.int8, np.int64, np.int64)]
    ref = [a.copy() for a in mine]
    t = 0
    for _ in range(n_batches):
        n = int(rng.integers(1, 60))
        symbol = rng.integers(0, n_sym, n).astype(np.int32)
        ts = t + np.cumsum(rng.integers(0, 2, n)) * NS // 2
        t = int(ts[-1]) + NS
        finite = rng.random(n) > 0.05
        fired = rng.random((n_rules, n)) < density
        outs = (np.empty(fired.size, np.int32), np.empty(fired.size, np.int64))
        kind = np.empty(fired.size, np.int8)
        k = transitions(
            symbol, ts, finite, fired, applies, for_ns, keep_ns, *mine, *outs, kind,
            np.zeros(n_sym, bool), np.empty(n, np.int64),
        )  # fmt: skip
        got = sorted(
            zip(outs[0][:k].tolist(), outs[1][:k].tolist(), kind[:k].tolist(), strict=True)
        )
        want = _walk_every_tick(symbol, ts, finite, fired, applies, for_ns, keep_ns, *ref)
        assert got == sorted(want)
        for a, b in zip(mine, ref, strict=True):
            np.testing.assert_array_equal(a, b)
