"""The simulator: deterministic, realistic (fat tails, clustering, correlation), events where logged."""

import numpy as np
import pytest

from rxpipe.model import TickBatch
from rxpipe.sources.simulator import DEFAULT_SYMBOLS, SEED_ASSETS, Simulator

NS = 1_000_000_000


@pytest.fixture(scope="module")
def day() -> tuple[Simulator, TickBatch]:
    """Two simulated days at one tick per second per symbol, with frequent events."""
    sim = Simulator(seed=3, step_s=1.0, start_ns=1_700_000_000 * NS, event_rate_per_hour=0.2)
    return sim, sim.steps(2 * 86_400)


def columns(b: TickBatch) -> list[np.ndarray]:
    return [b.symbol, b.ts, b.price, b.volume, b.side, b.seq]


def test_same_seed_same_ticks_whatever_the_pieces() -> None:
    a = Simulator(seed=11, step_s=0.5, start_ns=0)
    b = Simulator(seed=11, step_s=0.5, start_ns=0)
    whole = a.steps(3000)
    pieces = TickBatch.concat([b.steps(n) for n in (1, 511, 512, 1000, 976)])
    for x, y in zip(columns(whole), columns(pieces), strict=True):
        np.testing.assert_array_equal(x, y)
    assert a.events == b.events
    other = Simulator(seed=12, step_s=0.5, start_ns=0).steps(3000)
    assert not np.array_equal(whole.price, other.price)


def test_ten_seed_symbols_at_realistic_prices() -> None:
    sim = Simulator(seed=1, step_s=1.0, start_ns=0, event_rate_per_hour=0)
    b = sim.steps(10)
    assert sorted(sim.names) == sorted(DEFAULT_SYMBOLS) and len(sim.names) == 10
    for name, profile in SEED_ASSETS.items():
        first = b.price[b.symbol == sim.symbols.id(name)][0]
        assert abs(first / profile.price - 1) < 0.01, name
    assert np.all(np.diff(b.ts) > 0) and np.all(b.volume > 0)
    assert set(np.unique(b.side)) <= {-1, 1}


def _returns(sim: Simulator, b: TickBatch, name: str, outside_events: bool = True) -> np.ndarray:
    sid = sim.symbols.id(name)
    m = b.symbol == sid
    ts, r = b.ts[m][1:], np.diff(np.log(b.price[m]))
    if outside_events:
        keep = np.ones(len(r), bool)
        for e in sim.events:
            if e.symbol == name:
                keep &= ~((ts >= e.start_ts - 60 * NS) & (ts <= e.end_ts + 60 * NS))
        r = r[keep]
    return r


def test_returns_are_fat_tailed(day) -> None:
    sim, b = day
    for name in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
        r = _returns(sim, b, name)
        kurtosis = ((r - r.mean()) ** 4).mean() / r.var() ** 2
        assert kurtosis > 5.0, name  # a normal distribution has 3


def test_volatility_clusters(day) -> None:
    sim, b = day
    for name in ("BTCUSDT", "ADAUSDT"):
        r = _returns(sim, b, name)
        a = np.abs(r) - np.abs(r).mean()
        c = r - r.mean()
        acf_abs = [(a[:-lag] * a[lag:]).mean() / a.var() for lag in (1, 10, 100)]
        acf_raw = [(c[:-lag] * c[lag:]).mean() / c.var() for lag in (1, 10, 100)]
        assert min(acf_abs) > 0.03, (name, acf_abs)  # |returns| remember
        assert max(abs(x) for x in acf_raw) < 0.02, (name, acf_raw)  # returns do not


def test_altcoins_move_with_btc(day) -> None:
    sim, b = day
    btc = _returns(sim, b, "BTCUSDT", outside_events=False)

    def rank(x: np.ndarray) -> np.ndarray:
        return np.argsort(np.argsort(x))

    for name in ("ETHUSDT", "SOLUSDT", "ATOMUSDT"):
        alt = _returns(sim, b, name, outside_events=False)
        assert np.corrcoef(rank(btc), rank(alt))[0, 1] > 0.4, name


def test_volume_has_an_intraday_season(day) -> None:
    sim, b = day
    m = b.symbol == sim.symbols.id("BTCUSDT")
    hour = (b.ts[m] // NS % 86_400) // 3600
    by_hour = np.array([np.median(b.volume[m][hour == h]) for h in range(24)])
    assert by_hour[13:17].mean() > 2 * by_hour[1:5].mean()  # busy US afternoon, quiet night


def test_events_are_where_the_log_says(day) -> None:
    sim, b = day
    kinds = {e.kind for e in sim.events}
    assert kinds == {"price_spike", "crash", "volume_burst", "volatility_regime"}
    for e in sim.events:
        sid = sim.symbols.id(e.symbol)
        m = b.symbol == sid
        ts, price, vol = b.ts[m], b.price[m], b.volume[m]
        inside = (ts >= e.start_ts) & (ts < e.end_ts)
        before = (ts >= e.start_ts - 3600 * NS) & (ts < e.start_ts)
        if not inside.any() or before.sum() < 600:
            continue  # at the very start or end of the simulated period
        i0 = np.argmax(inside)
        if e.kind == "price_spike":
            jump = np.log(price[i0] / price[i0 - 1])
            assert abs(jump - e.magnitude) < 0.01, e
        elif e.kind == "crash":
            low = np.log(price[inside].min() / price[i0 - 1])
            assert low < 0.6 * e.magnitude, e  # most of the fall shows
        elif e.kind == "volume_burst":
            assert np.median(vol[inside]) > 3 * np.median(vol[before]), e
        else:
            r_in = np.diff(np.log(price[inside]))
            r_before = np.diff(np.log(price[before]))
            assert np.median(np.abs(r_in)) > 2 * np.median(np.abs(r_before)), e
