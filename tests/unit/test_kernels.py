"""Every kernel against a plain numpy/pandas reference on random data."""

import itertools

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from rxpipe.kernels import horizon, moving, quantiles, rolling, rollup, trend, volatility
from rxpipe.model import TickBatch

SETTINGS = settings(max_examples=60, deadline=None)
finite = st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False)


def series(min_size=1, max_size=300):
    return st.integers(min_size, max_size).flatmap(
        lambda n: st.tuples(
            arrays(np.float64, n, elements=finite), arrays(np.int32, n, elements=st.integers(0, 2))
        )
    )


def per_symbol(x, sym, fn):
    """Apply a pandas reference per symbol, keeping the original order."""
    out = np.full(len(x), np.nan)
    for s in np.unique(sym):
        m = sym == s
        out[m] = fn(pd.Series(x[m])).to_numpy()
    return out


def splits(n, cuts):
    bounds = sorted({0, n, *[c % (n + 1) for c in cuts]})
    return list(itertools.pairwise(bounds))


def window_reference(x, sym, w, minp):
    """Mean and sample std of the previous ``w`` values of each tick's symbol, two-pass numpy."""
    m, sd = np.full(len(x), np.nan), np.full(len(x), np.nan)
    for i in range(len(x)):
        prev = x[:i][sym[:i] == sym[i]][-w:]
        if len(prev) >= minp:
            m[i], sd[i] = prev.mean(), prev.std(ddof=1)
    return m, sd


@SETTINGS
@given(data=series(), w=st.integers(2, 40), cuts=st.lists(st.integers(0, 300), max_size=4))
def test_rolling_count_matches_numpy_and_any_split(data, w, cuts) -> None:
    x, sym = data
    x = x + 45_000.0  # BTC-sized values: no catastrophic cancellation
    minp = min(5, w)
    exp_m, exp_s = window_reference(x, sym, w, max(minp, 2))
    st_ = rolling.count_state(3, w)
    m, sd, z = np.empty(len(x)), np.empty(len(x)), np.empty(len(x))
    for lo, hi in splits(len(x), cuts):
        rolling.rolling_count(
            sym[lo:hi],
            x[lo:hi],
            st_["buf"],
            st_["count"],
            st_["mean"],
            st_["m2"],
            max(minp, 2),
            m[lo:hi],
            sd[lo:hi],
            z[lo:hi],
        )
    ok = ~np.isnan(exp_s)
    np.testing.assert_allclose(m[ok], exp_m[ok], rtol=1e-12)
    np.testing.assert_allclose(sd[ok], exp_s[ok], rtol=1e-6, atol=1e-9)
    assert np.isnan(sd[~ok]).all()
    pandas_mean = per_symbol(
        x, sym, lambda s: s.shift(1).rolling(w, min_periods=max(minp, 2)).mean()
    )
    np.testing.assert_allclose(m[ok], pandas_mean[ok], rtol=1e-12)


def test_the_zscore_operator_takes_symbols_new_to_it_mid_batch() -> None:
    """The kernel stops at the first symbol it has no state for; the operator grows its state
    and goes on from there: the same as a detector that knew every symbol from the start."""
    from rxpipe.operators.zscore import ZScore

    rng = np.random.default_rng(3)
    sym = np.r_[np.zeros(50, np.int32), rng.choice([0, 4, 9], 400).astype(np.int32)]
    b = TickBatch.from_arrays(
        symbol=sym, ts=np.arange(450), price=100 + rng.normal(0, 1, 450), volume=np.ones(450)
    )
    st = rolling.count_state(3, 5)
    out = np.empty((3, 450))
    stop = rolling.rolling_count(sym, b.price, *st.values(), 3, *out)
    assert stop == 50 + int(np.argmax(sym[50:] >= 3))  # the first tick of symbol 4
    grown, known = ZScore(5, min_periods=3), ZScore(5, min_periods=3)
    known.state.ensure(10)
    first, rest = b.take(slice(0, 50)), b.take(slice(50, 450))
    z = np.r_[grown.update(first)["z"], grown.update(rest)["z"]]
    np.testing.assert_array_equal(z, np.r_[known.update(first)["z"], known.update(rest)["z"]])
    want = (
        pd.Series(b.price)
        .groupby(sym)
        .transform(
            lambda s: (
                (s - s.shift(1).rolling(5, min_periods=3).mean())
                / s.shift(1).rolling(5, min_periods=3).std()
            )
        )
    )
    np.testing.assert_allclose(z, want, rtol=1e-9)


def test_rolling_std_is_stable_on_large_prices_over_long_streams() -> None:
    rng = np.random.default_rng(0)
    x = 45_000.0 + np.cumsum(rng.standard_normal(200_000)) * 1e-3
    st_ = rolling.count_state(1, 500)
    m, sd, z = (np.empty(len(x)) for _ in range(3))
    rolling.rolling_count(
        np.zeros(len(x), np.int32), x, st_["buf"], st_["count"], st_["mean"], st_["m2"], 2, m, sd, z
    )
    window = x[-501:-1]
    assert abs(sd[-1] / window.std(ddof=1) - 1) < 1e-7  # naive sums lose every digit here


@SETTINGS
@given(
    data=series(), horizon_ticks=st.integers(1, 30), cuts=st.lists(st.integers(0, 300), max_size=4)
)
def test_rolling_time_matches_brute_force(data, horizon_ticks, cuts) -> None:
    x, sym = data
    ts = np.arange(len(x), dtype=np.int64) * 10 + 1  # a tick every 10 ns
    h = horizon_ticks * 10
    st_ = rolling.time_state(3, 64)
    m, sd, z = (np.full(len(x), np.nan) for _ in range(3))
    for lo, hi in splits(len(x), cuts):
        rolling.rolling_time(
            sym[lo:hi],
            ts[lo:hi],
            x[lo:hi],
            h,
            st_["vals"],
            st_["tss"],
            st_["head"],
            st_["size"],
            st_["mean"],
            st_["m2"],
            st_["ops"],
            2,
            m[lo:hi],
            sd[lo:hi],
            z[lo:hi],
        )
    for i in range(len(x)):
        prev = (sym[:i] == sym[i]) & (ts[:i] > ts[i] - h)
        window = x[:i][prev][-64:]
        if len(window) >= 2:
            assert abs(m[i] - window.mean()) <= 1e-9 * max(1.0, abs(window.mean()))
            assert abs(sd[i] - window.std(ddof=1)) <= 1e-9 * max(1.0, np.abs(window).max())
        else:
            assert np.isnan(m[i])


@SETTINGS
@given(data=series(), w=st.integers(1, 40), cuts=st.lists(st.integers(0, 300), max_size=4))
def test_rolling_quantiles_match_pandas(data, w, cuts) -> None:
    x, sym = data
    x = np.round(x, 1)  # ties on purpose
    qs = np.array([0.25, 0.5, 0.75, 0.95, 0.99])
    st_ = quantiles.state(3, w)
    out = np.empty((len(x), len(qs)))
    for lo, hi in splits(len(x), cuts):
        quantiles.rolling_quantiles(
            sym[lo:hi], x[lo:hi], qs, st_["ring"], st_["sorted"], st_["count"], 1, out[lo:hi]
        )
    for j, q in enumerate(qs):
        exp = per_symbol(x, sym, lambda s, q=q: s.shift(1).rolling(w, min_periods=1).quantile(q))
        np.testing.assert_allclose(out[:, j], exp, rtol=1e-9, atol=1e-9)


@SETTINGS
@given(data=series(2), span=st.integers(2, 50))
def test_ewma_volatility_matches_a_loop(data, span) -> None:
    x, sym = data
    price = np.exp(x / 1e3) * 100.0
    alpha = 2 / (span + 1)
    n = len(price)
    st_ = (np.zeros(3), np.zeros(3), np.full(3, -1, np.int64))
    r, v, z = np.empty(n), np.empty(n), np.empty(n)
    volatility.ewma_volatility(sym, price, alpha, 3, *st_, r, v, z)
    for s in range(3):
        m = np.flatnonzero(sym == s)
        if len(m) < 2:
            continue
        # log of the ratio: a difference of logs loses the digits of a 1e-12 return
        rets = np.log(price[m][1:] / price[m][:-1])
        np.testing.assert_allclose(r[m][1:], rets, rtol=1e-9, atol=1e-15)
        var = rets[0] ** 2
        for k, rt in enumerate(rets[1:], start=1):
            prev = var
            var = alpha * rt * rt + (1 - alpha) * var
            assert abs(v[m][k + 1] - np.sqrt(var)) <= 1e-12 * max(1, np.sqrt(var))
            if k >= 3 and prev > 0:
                assert abs(z[m][k + 1] - rt / np.sqrt(prev)) <= 1e-6 * max(
                    1, abs(rt / np.sqrt(prev))
                )


@SETTINGS
@given(
    steps=st.lists(st.integers(0, 40), min_size=1, max_size=200),
    cuts=st.lists(st.integers(0, 200), max_size=3),
)
def test_change_over_horizon_matches_bucket_closes(steps, cuts) -> None:
    ts = np.cumsum(np.array(steps, np.int64)) + 1000
    x = 100.0 + np.arange(len(ts), dtype=float)
    sym = np.zeros(len(ts), np.int32)
    h, res = 100, 10
    st_ = horizon.state(1, h // res)
    out = np.empty(len(ts))
    for lo, hi in splits(len(ts), cuts):
        horizon.change_pct(
            sym[lo:hi],
            ts[lo:hi],
            x[lo:hi],
            h,
            res,
            st_["closes"],
            st_["cur"],
            st_["first"],
            st_["refs"],
            out[lo:hi],
        )
    for i in range(len(ts)):
        ref_bucket = (ts[i] - h) // res
        before = np.flatnonzero(ts[: i + 1] // res <= ref_bucket)
        if ts[0] // res > ref_bucket or not len(before):
            assert np.isnan(out[i])
        else:
            assert abs(out[i] - 100 * (x[i] / x[before[-1]] - 1)) < 1e-9


@SETTINGS
@given(data=series(), w=st.integers(1, 20), alpha=st.floats(0.01, 1.0))
def test_moving_averages_match_pandas(data, w, alpha) -> None:
    x, sym = data
    n = len(x)
    out = np.empty(n)
    moving.sma(sym, x, np.zeros((3, w)), np.zeros(3, np.int64), np.zeros(3), out)
    np.testing.assert_allclose(
        out, per_symbol(x, sym, lambda s: s.rolling(w).mean()), rtol=1e-9, atol=1e-6
    )
    moving.ema(sym, x, alpha, np.zeros(3), np.zeros(3, np.bool_), out)
    np.testing.assert_allclose(
        out,
        per_symbol(x, sym, lambda s: s.ewm(alpha=alpha, adjust=False).mean()),
        rtol=1e-9,
        atol=1e-9,
    )
    weights = np.arange(1.0, w + 1)
    moving.wma(sym, x, weights, np.zeros((3, w)), np.zeros(3, np.int64), out)
    ref = per_symbol(
        x,
        sym,
        lambda s: s.rolling(w).apply(lambda v: (v * weights).sum() / weights.sum(), raw=True),
    )
    np.testing.assert_allclose(out, ref, rtol=1e-9, atol=1e-9)


def test_crossover_needs_a_real_cross_and_slope() -> None:
    fast = np.array([1.0, 0.9, 0.98, 1.02, 1.05, 1.1, 1.2, 0.9, 0.8])
    slow = np.array([1.0, 1.0, 1.0, 1.0, 1.01, 1.02, 1.03, 1.02, 0.99])
    sym = np.zeros(len(fast), np.int32)
    out = np.empty(len(fast), np.int8)
    trend.crossover(
        sym, fast, slow, 0.01, np.zeros(1, np.int8), np.zeros((1, 2)), np.zeros(1, np.int64), out
    )
    # first confirmed side (below) at 1 is no reversal; at 4 fast is above and slow rose: +1;
    # at 8 fast fell below and slow fell over two ticks: -1
    assert out.tolist() == [0, 0, 0, 0, 1, 0, 0, 0, -1]


@SETTINGS
@given(z=arrays(np.float64, st.integers(1, 200), elements=st.floats(-5, 5)))
def test_cusum_matches_a_loop(z) -> None:
    n = len(z)
    pos, neg, alarm = np.empty(n), np.empty(n), np.empty(n, np.int8)
    trend.cusum(np.zeros(n, np.int32), z, 0.5, 4.0, np.zeros(1), np.zeros(1), pos, neg, alarm)
    p = q = 0.0
    for i, v in enumerate(z):
        p, q = max(0.0, p + v - 0.5), max(0.0, q - v - 0.5)
        a = 1 if p > 4 else (-1 if q > 4 else 0)
        if a:
            p = q = 0.0
        assert (alarm[i], round(pos[i], 9), round(neg[i], 9)) == (a, round(p, 9), round(q, 9))


@SETTINGS
@given(
    steps=st.lists(st.integers(0, 30), min_size=1, max_size=300),
    seed=st.integers(0, 1000),
    cuts=st.lists(st.integers(0, 300), max_size=3),
)
def test_rollups_match_pandas_groupby(steps, seed, cuts) -> None:
    """Two intervals in one pass, any batching, buffers that grow: pandas' numbers, exactly."""
    from rxpipe.operators.rollups import Rollups

    rng = np.random.default_rng(seed)
    ts = np.cumsum(np.array(steps, np.int64))
    n = len(ts)
    sym = rng.integers(0, 2, n).astype(np.int32)
    price = np.round(rng.uniform(1, 100, n), 2)
    vol = np.round(rng.uniform(0, 5, n), 2)
    b = TickBatch.from_arrays(symbol=sym, ts=ts, price=price, volume=vol)
    r = Rollups([60e-9, 180e-9])  # 60 and 180 ns buckets
    parts = [r.update(b.take(slice(lo, hi))) for lo, hi in splits(n, cuts)] + [r.flush()]
    rows = [(p.interval, p.columns) for p in parts if len(p)]
    got = pd.concat(pd.DataFrame({"interval": iv, **cols}) for iv, cols in rows).sort_values(
        ["interval", "symbol", "start"]
    )
    for interval in (60, 180):
        df = pd.DataFrame({"symbol": sym, "start": ts // interval * interval, "p": price, "v": vol})
        g = df.groupby(["symbol", "start"])
        exp = pd.DataFrame(
            {
                "count": g.p.count(),
                "sum": g.p.sum(),
                "min": g.p.min(),
                "max": g.p.max(),
                "mean": g.p.mean(),
                "open": g.p.first(),
                "close": g.p.last(),
                "median": g.p.median(),
                "std": g.p.std().fillna(0.0),
                "p95": g.p.quantile(0.95),
                "p99": g.p.quantile(0.99),
                "volume": g.v.sum(),
                "volume_min": g.v.min(),
                "volume_max": g.v.max(),
            }
        ).reset_index()
        mine = got[got["interval"] == interval].reset_index(drop=True)
        assert len(mine) == len(exp)
        for col in exp.columns:
            np.testing.assert_allclose(
                mine[col].to_numpy(float), exp[col].to_numpy(float), rtol=1e-9, atol=1e-9,
                err_msg=f"{interval} {col}",
            )  # fmt: skip
        vwap = (df.p * df.v).groupby([df.symbol, df.start]).sum() / g.v.sum()
        vwap = vwap.where(g.v.sum() > 0, g.p.mean()).to_numpy()
        np.testing.assert_allclose(mine["vwap"].to_numpy(), vwap, rtol=1e-9)
        np.testing.assert_allclose(mine["range"], mine["max"] - mine["min"])


@SETTINGS
@given(
    x=arrays(np.float64, st.integers(1, 3000), elements=st.sampled_from([0.5, 1.0, 7.25]) | finite),
    qs=st.lists(st.floats(0, 1), min_size=1, max_size=6),
)
def test_order_statistics_are_exact(x, qs) -> None:
    """Ties, constant runs and values piled into one bin (a far outlier) included."""
    if len(x) > 10:
        x[-1] = 1e300
    ranks = np.sort(np.array([int(q * (len(x) - 1)) for q in qs], np.int64))
    out = np.empty(len(ranks))
    hist, buf = rollup.scratch(len(x))
    rollup.order_stats(x.copy(), len(x), ranks, out, hist, buf)
    np.testing.assert_array_equal(out, np.sort(x)[ranks])


@pytest.mark.parametrize("cuts", [[], [7_000, 55_000, 123_456]])
def test_a_busy_bucket_stays_bounded_and_its_quantiles_close(cuts) -> None:
    """A day of 100 ticks/s would keep 8.6 M prices a symbol: past ``max_exact`` the bucket is
    sampled deterministically (the same whatever the batching) and its memory stays fixed."""
    from rxpipe.operators.rollups import MAX_EXACT, Rollups

    rng = np.random.default_rng(4)
    n = 200_000
    price = 100 + np.cumsum(rng.standard_t(3, n)) * 0.01
    b = TickBatch.from_arrays(
        symbol=np.zeros(n), ts=np.arange(n) * 10_000_000, price=price, volume=np.ones(n)
    )
    r = Rollups([86400])
    for lo, hi in splits(n, cuts):
        r.update(b.take(slice(lo, hi)))
    assert r.capacity == MAX_EXACT  # not 200,000
    row = r.flush().columns
    exact = np.sort(price)
    assert row["count"][0] == n and row["max"][0] == exact[-1] and row["min"][0] == exact[0]
    np.testing.assert_allclose(row["mean"][0], price.mean(), rtol=1e-12)
    # the sample is every 2**level-th tick, as few levels as keep it within MAX_EXACT
    level = next(k for k in range(64) if -(-n // 2**k) <= MAX_EXACT)
    sample = price[:: 2**level]
    for col, q in (("median", 0.5), ("p95", 0.95), ("p99", 0.99)):
        np.testing.assert_allclose(row[col][0], np.quantile(sample, q), rtol=1e-12)
        rank = np.searchsorted(exact, row[col][0]) / n
        assert abs(rank - q) < 0.005, (col, rank)
    # the same answer for one batch and for many
    one = Rollups([86400])
    one.update(b)
    assert one.flush().columns["median"][0] == row["median"][0]
