"""The detector set: split invariance, causality, warm-up, bad inputs, snapshots, real events."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rxpipe.model import TickBatch
from rxpipe.operators.detectors import DetectorConfig, DetectorSet
from rxpipe.signals import ANOMALY_TYPES, METHODS, SignalBatch
from rxpipe.sources.simulator import Simulator

NS = 10**9


@pytest.fixture(scope="module")
def stream() -> tuple[Simulator, TickBatch]:
    sim = Simulator(
        ["BTCUSDT", "ETHUSDT", "SOLUSDT"],
        seed=9,
        step_s=1.0,
        start_ns=1_700_000_000 * NS,
        event_rate_per_hour=1.0,
    )
    return sim, sim.steps(3 * 3600)


def run(det: DetectorSet, b: TickBatch, bounds: list[int]) -> list[SignalBatch]:
    return [det.update(b.take(slice(lo, hi))) for lo, hi in itertools.pairwise(bounds)]


def merged(parts: list[SignalBatch]) -> tuple[dict[str, np.ndarray], list[tuple]]:
    cols = {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns}
    offset, events = 0, []
    for p in parts:
        a = p.anomalies.columns
        events += [
            (int(i) + offset, int(t), int(m), round(float(s), 9))
            for i, t, m, s in zip(a["index"], a["type"], a["method"], a["score"], strict=True)
        ]
        offset += len(p)
    rollups = [
        (p.rollups.columns["symbol"].tolist(), p.rollups.columns["start"].tolist()) for p in parts
    ]
    flat = sorted((s, t) for syms, starts in rollups for s, t in zip(syms, starts, strict=True))
    return cols, sorted(events) + [("rollups", *x) for x in flat]


@settings(max_examples=8, deadline=None)
@given(cuts=st.lists(st.integers(1, 32_399), min_size=1, max_size=12))
def test_any_batch_split_gives_identical_outputs(stream, cuts) -> None:
    _, b = stream
    whole_cols, whole_events = merged(run(DetectorSet(), b, [0, len(b)]))
    cols, events = merged(run(DetectorSet(), b, sorted({0, len(b), *cuts})))
    for k in whole_cols:
        np.testing.assert_array_equal(cols[k], whole_cols[k], err_msg=k)
    assert events == whole_events


def test_appending_ticks_never_changes_earlier_scores(stream) -> None:
    _, b = stream
    full = DetectorSet().update(b)
    prefix = DetectorSet().update(b.take(slice(0, 20_000)))
    for k in prefix.columns:
        np.testing.assert_array_equal(prefix.columns[k], full.columns[k][:20_000], err_msg=k)


def test_no_anomaly_in_warm_up(stream) -> None:
    _, b = stream
    cfg = DetectorConfig(min_periods=50)
    out = DetectorSet(cfg).update(b)
    idx = out.anomalies.columns["index"]
    methods = out.anomalies.columns["method"]
    per_symbol_rank = np.zeros(len(b), np.int64)
    for s in np.unique(b.symbol):
        m = np.flatnonzero(b.symbol == s)
        per_symbol_rank[m] = np.arange(len(m))
    stat = np.isin(methods, [METHODS.index(x) for x in ("zscore", "iqr", "ci")])
    assert (per_symbol_rank[idx[stat]] > 50).all()
    assert len(idx) > 0


def test_zero_volume_and_flat_prices_do_not_poison_the_state() -> None:
    n = 400
    price = np.full(n, 100.0)
    price[200:] = 100.0 + np.arange(200) * 0.01
    vol = np.random.default_rng(1).lognormal(0.0, 0.5, n)
    vol[100:150] = 0.0  # zero volume is valid input (log volume -inf is skipped, not learned)
    b = TickBatch.from_arrays(
        symbol=np.zeros(n), ts=np.arange(n) * NS + NS, price=price, volume=vol
    )
    out = DetectorSet().update(b)
    assert np.isfinite(out["z_logvol"][-50:]).all()
    assert (
        np.isfinite(out["ensemble"]).all()
        and (out["ensemble"] >= 0).all()
        and (out["ensemble"] <= 1).all()
    )


def test_snapshot_restore_continues_identically(stream) -> None:
    _, b = stream
    a = DetectorSet()
    a.update(b.take(slice(0, 15_000)))
    snap = a.snapshot()
    rest = b.take(slice(15_000, None))
    expected = a.update(rest)
    c = DetectorSet()
    c.restore(snap)
    got = c.update(rest)
    for k in expected.columns:
        np.testing.assert_array_equal(got.columns[k], expected.columns[k], err_msg=k)
    assert len(got.anomalies) == len(expected.anomalies)


def test_labelled_price_events_are_found(stream) -> None:
    sim, b = stream
    out = DetectorSet().update(b)
    a = out.anomalies.columns
    found = 0
    price_events = [
        e
        for e in sim.events
        if e.kind in ("price_spike", "crash") and e.start_ts > b.ts[0] + 600 * NS
    ]
    assert price_events
    for e in price_events:
        sid = sim.symbols.id(e.symbol)
        near = (a["symbol"] == sid) & (a["ts"] >= e.start_ts) & (a["ts"] <= e.start_ts + 120 * NS)
        wanted = "price_spike" if e.kind == "price_spike" else "price_drop"
        if np.any(near & (a["type"] == ANOMALY_TYPES.index(wanted))):
            found += 1
    assert found == len(price_events)


def test_anomaly_events_carry_seed_fields(stream) -> None:
    sim, b = stream
    out = DetectorSet().update(b)
    events = out.anomalies.events(sim.symbols)
    assert events
    doc = events[0].to_json()
    assert {
        "symbol",
        "type",
        "severity",
        "current_value",
        "expected_value",
        "deviation",
        "confidence",
        "timestamp",
        "window",
    } <= set(doc)
    assert all(0.0 <= e.confidence <= 1.0 for e in events)
    assert {e.severity for e in events} <= {"low", "medium", "high", "critical"}


def test_signal_columns_list_is_true(stream) -> None:
    from rxpipe.operators.detectors import SIGNAL_COLUMNS

    _, b = stream
    assert set(DetectorSet().update(b.take(slice(0, 100))).columns) == SIGNAL_COLUMNS


def test_the_one_pass_computes_what_the_separate_kernels_compute(stream) -> None:
    """Every column bit for bit, and every anomaly, against the column-at-a-time oracle."""
    from .detector_reference import Reference

    _, b = stream
    det, ref = DetectorSet(), Reference(DetectorConfig())
    for lo, hi in ((0, 7_000), (7_000, 7_001), (7_001, len(b))):
        part = b.take(slice(lo, hi))
        got, want = det.update(part), ref.signals(part)
        assert set(got.columns) == set(want)
        for k in want:
            np.testing.assert_array_equal(got.columns[k], want[k], err_msg=k)
        rows, a = ref.anomalies(part, want), got.anomalies.columns
        assert [(r[0], r[2]) for r in rows] == list(zip(a["index"], a["method"], strict=True))
        for j, r in enumerate(rows):
            if r[1] is None:  # the ensemble: its score
                assert a["score"][j] == r[3]
                continue
            assert (a["type"][j], a["score"][j], a["severity"][j]) == r[1:2] + r[3:5]
            np.testing.assert_allclose(
                [a["confidence"][j], a["lower"][j], a["upper"][j]], r[5:], rtol=1e-12
            )
    assert len(rows) > 10


# The checks (method, type) each optional group owns; left out, they never fire.
GROUP_CHECKS = {
    "quantiles": {("iqr", "price_spike"), ("iqr", "price_drop")},
    "time_window": set(),
    "ci": {("ci", "price_spike"), ("ci", "price_drop")},
    "horizons": set(),
    "moving_averages": {("ewma", "trend_reversal")},
}


@pytest.mark.parametrize("left_out", [*GROUP_CHECKS, "all"])
def test_a_group_left_out_changes_nothing_else(stream, left_out) -> None:
    """Leaving a group out: its columns are NaN, its anomalies gone, everything else the same
    bit for bit (the core and the other groups do not read it)."""
    from rxpipe.kernels.detect import COLUMNS, GROUP_ROWS, OPTIONAL

    _, b = stream
    gone = set(OPTIONAL) if left_out == "all" else {left_out}
    full = DetectorSet().update(b)
    part = DetectorSet(DetectorConfig(methods=tuple(set(OPTIONAL) - gone))).update(b)
    gone_cols = {COLUMNS[r] for g in gone for r in GROUP_ROWS[g]}  # default horizon names
    assert set(part.columns) == set(full.columns)
    for k in full.columns:
        if k in gone_cols:
            assert np.isnan(part.columns[k]).all(), k
        else:
            np.testing.assert_array_equal(part.columns[k], full.columns[k], err_msg=k)

    def events(sb: SignalBatch) -> list[tuple]:
        a = sb.anomalies.columns
        return [
            (int(i), METHODS[m], ANOMALY_TYPES[t], float(s))
            for i, m, t, s in zip(a["index"], a["method"], a["type"], a["score"], strict=True)
        ]

    checks = set().union(*(GROUP_CHECKS[g] for g in gone))
    kept = [e for e in events(full) if (e[1], e[2]) not in checks]
    assert events(part) == kept
    assert len(kept) < len(events(full)) or not checks
    published = set(part.series.values())
    assert not published & gone_cols


def test_an_unknown_group_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="unknown detector methods \\['quantile'\\]; choose from"):
        DetectorSet(DetectorConfig(methods=("quantile",)))
    with pytest.raises(ValueError, match="a tuple of group names, such as \\('ci',\\)"):
        DetectorSet(DetectorConfig(methods="ci"))  # type: ignore[arg-type]
