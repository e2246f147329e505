"""The whole detector set in one pass over a batch: every signal column and the anomaly hits.

Each tick visits its symbol's state once and goes through every method in turn: returns and
EWMA volatility, rolling z-scores over a tick count and a time window, rolling quantiles, the
confidence interval of the drift, changes over horizons, moving averages, crossover, CUSUM and
the ensemble, then the anomaly tests. The arithmetic of each method is the step function of its
own kernel module (``rolling.count_step``, ``quantiles.push``, ...), so this pass computes
exactly what the separate kernels compute (tested bit for bit), without reading the batch once
per method or writing the columns nobody keeps. The groups in :data:`OPTIONAL` (quantiles, the
time window, the CI, the horizons, the moving averages) run only when ``Params.groups`` asks.

Outputs go to ``out[column, tick]`` (rows named by :data:`COLUMNS`); anomaly *hits* (the first
tick of an episode, a crossover, a CUSUM alarm, an ensemble score over its threshold) go to
``hit_index`` / ``hit_check``, in tick order and, within a tick, in :data:`CHECKS` order.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rxpipe.kernels import ensemble as ens_k
from rxpipe.kernels import horizon as hz_k
from rxpipe.kernels import moving as ma_k
from rxpipe.kernels import quantiles as q_k
from rxpipe.kernels import rolling as roll_k
from rxpipe.kernels import trend as tr_k
from rxpipe.kernels.jit import kernel
from rxpipe.kernels.volatility import ewma_step

COLUMNS = (
    "ret",
    "ewma_vol",
    "ewma_z",
    "vol_ratio",
    "ret_mean",
    "ret_std",
    "z_ret",
    "price_mean",
    "price_std",
    "z_price",
    "logvol_mean",
    "logvol_std",
    "z_logvol",
    "z_price_time",
    "ret_q1",
    "ret_median",
    "ret_q3",
    "volume_median",
    "volume_p95",
    "volume_p99",
    "volume_ratio",
    "drift_mean",
    "drift_lower",
    "drift_upper",
    "change_1h",  # the price horizons, then the volume's (names follow the configured horizons)
    "change_4h",
    "change_24h",
    "volume_change_1h",
    "sma",
    "ema",
    "wma",
    "ma_fast",
    "ma_slow",
    "crossover",
    "cusum_pos",
    "cusum_neg",
    "cusum_alarm",
    "ensemble",
)
(RET, EWMA_VOL, EWMA_Z, VOL_RATIO, RET_MEAN, RET_STD, Z_RET, PRICE_MEAN, PRICE_STD, Z_PRICE) = (
    range(10)
)
(LOGVOL_MEAN, LOGVOL_STD, Z_LOGVOL, Z_PRICE_TIME, RET_Q1, RET_MEDIAN, RET_Q3) = range(10, 17)
(VOLUME_MEDIAN, VOLUME_P95, VOLUME_P99, VOLUME_RATIO, DRIFT_MEAN, DRIFT_LOWER) = range(17, 23)
(DRIFT_UPPER, CHANGE, SMA, EMA, WMA, MA_FAST, MA_SLOW, CROSSOVER) = (23, 24, 28, 29, 30, 31, 32, 33)
(CUSUM_POS, CUSUM_NEG, CUSUM_ALARM, ENSEMBLE) = range(34, 38)
PRICE_HORIZONS = 3  # change_1h, change_4h, change_24h; then one volume horizon

# The optional groups of signals (bits of ``Params.groups``) and their rows of ``out``. The
# core (returns and EWMA volatilities, the three tick-count z-scores, CUSUM, the ensemble)
# always runs; a group left out costs nothing, its rows are NaN and its tests never pass.
OPTIONAL = ("quantiles", "time_window", "ci", "horizons", "moving_averages")
QUANTILES, TIME_WINDOW, CI, HORIZONS, MOVING_AVERAGES = (1 << k for k in range(len(OPTIONAL)))
GROUP_ROWS = {
    "quantiles": range(RET_Q1, VOLUME_RATIO + 1),
    "time_window": range(Z_PRICE_TIME, Z_PRICE_TIME + 1),
    "ci": range(DRIFT_MEAN, DRIFT_UPPER + 1),
    "horizons": range(CHANGE, SMA),
    "moving_averages": range(SMA, CROSSOVER + 1),
}

# The anomaly tests, in the order hits of one tick are reported (method, then type).
CHECKS = (
    ("zscore", "price_spike"),
    ("zscore", "price_drop"),
    ("zscore", "volume_spike"),
    ("zscore", "volume_drop"),
    ("iqr", "price_spike"),
    ("iqr", "price_drop"),
    ("ci", "price_spike"),
    ("ci", "price_drop"),
    ("ewma", "volatility"),
    ("ewma", "trend_reversal"),  # a confirmed moving-average crossover
    ("cusum", "trend_reversal"),
    ("ensemble", ""),  # the type is the strongest method's
)
EPISODIC = 9  # the first nine report the first tick of a run of hits (an episode)
QR = (0.25, 0.5, 0.75)  # return quantiles: Q1, median, Q3
QV = (0.5, 0.95, 0.99)  # volume quantiles: median, p95, p99


class Params(NamedTuple):
    """The detector set's parameters as the kernel takes them (see ``DetectorConfig``)."""

    groups: int  # the optional groups to compute: bits QUANTILES, TIME_WINDOW, ...
    min_periods: int
    alpha: float  # EWMA volatility
    alpha_short: float
    alpha_long: float
    time_ns: int  # the time window of z_price_time
    t_table: np.ndarray  # Student t critical values by window size
    horizon_res_ns: np.ndarray  # bucket sizes of the price horizons, then the volume horizon's
    horizon_lag: np.ndarray  # each horizon in buckets (a horizon is a whole number of buckets)
    ema_alpha: float
    fast_alpha: float
    slow_alpha: float
    wma_weights: np.ndarray
    wma_sum: float
    min_gap: float
    cusum_drift: float
    cusum_threshold: float
    ens_ref_decay: float
    ens_recent_decay: float
    ens_damp: float
    z_threshold: float
    iqr_k: float
    vol_ratio_threshold: float
    ensemble_threshold: float
    window: int  # what the anomalies of each method report as their window
    ci_window: int
    ewma_span: int
    slow_span: int
    ens_ref_ticks: int
    severity: np.ndarray  # deviations for medium, high, critical


class State(NamedTuple):
    """Per-symbol state arrays (first axis: symbol id), updated in place."""

    last_price: np.ndarray
    n_ret: np.ndarray  # returns seen (-1 before the first price)
    var: np.ndarray
    var_short: np.ndarray
    var_long: np.ndarray
    zr_buf: np.ndarray
    zr_count: np.ndarray
    zr_mean: np.ndarray
    zr_m2: np.ndarray
    zp_buf: np.ndarray
    zp_count: np.ndarray
    zp_mean: np.ndarray
    zp_m2: np.ndarray
    zv_buf: np.ndarray
    zv_count: np.ndarray
    zv_mean: np.ndarray
    zv_m2: np.ndarray
    ci_buf: np.ndarray
    ci_count: np.ndarray
    ci_mean: np.ndarray
    ci_m2: np.ndarray
    t_vals: np.ndarray
    t_tss: np.ndarray
    t_head: np.ndarray
    t_size: np.ndarray
    t_mean: np.ndarray
    t_m2: np.ndarray
    t_ops: np.ndarray
    qr_ring: np.ndarray
    qr_sorted: np.ndarray
    qr_count: np.ndarray
    qv_ring: np.ndarray
    qv_sorted: np.ndarray
    qv_count: np.ndarray
    hz_closes: np.ndarray  # (symbol, horizon, bucket)
    hz_cur: np.ndarray  # (symbol, horizon)
    hz_first: np.ndarray
    hz_ref: np.ndarray  # (symbol, horizon): the reference of the current bucket
    hz_b: np.ndarray  # (symbol, horizon): the bucket of the symbol's last tick ...
    hz_lo: np.ndarray  # ... and where it starts, in ns
    sma_buf: np.ndarray
    sma_count: np.ndarray
    sma_total: np.ndarray
    ema_val: np.ndarray
    ema_seen: np.ndarray
    fast_val: np.ndarray
    fast_seen: np.ndarray
    slow_val: np.ndarray
    slow_seen: np.ndarray
    wma_buf: np.ndarray
    wma_count: np.ndarray
    x_side: np.ndarray
    x_hist: np.ndarray
    x_count: np.ndarray
    cu_pos: np.ndarray
    cu_neg: np.ndarray
    en_ref: np.ndarray  # (symbol, method)
    en_recent: np.ndarray
    en_seen: np.ndarray
    active: np.ndarray  # (symbol, EPISODIC): the symbol's last tick hit that test


@kernel(error_model="numpy")
def detect(symbol, ts, price, volume, p, st, out, hit_index, hit_check):
    """Every signal of every tick into ``out``; returns how many hits went to ``hit_*``.

    ``hit_index`` and ``hit_check`` need room for ``len(CHECKS)`` hits a tick in the worst case.
    Helpers get the arrays they use, never ``st`` or ``p`` whole: numba copies a tuple that
    size at every call (measured: ~10 ns a call).
    """
    minp = p.min_periods
    groups = p.groups
    n_hz = p.horizon_res_ns.shape[0]
    closes = st.hz_closes.reshape(-1, st.hz_closes.shape[2])  # row s * n_hz + k
    cur = st.hz_cur.reshape(-1)
    first = st.hz_first.reshape(-1)
    refs = st.hz_ref.reshape(-1)
    hz_b, hz_lo = st.hz_b, st.hz_lo
    n_hits = 0
    for i in range(price.shape[0]):
        s, t, px, v = symbol[i], ts[i], price[i], volume[i]
        _returns(
            st.last_price, st.n_ret, st.var, st.var_short, st.var_long, s, px,
            p.alpha, p.alpha_short, p.alpha_long, minp, out, i,
        )  # fmt: skip
        r = out[RET, i]
        out[RET_MEAN, i], out[RET_STD, i], out[Z_RET, i] = roll_k.count_step(
            st.zr_buf, st.zr_count, st.zr_mean, st.zr_m2, s, r, minp
        )
        out[PRICE_MEAN, i], out[PRICE_STD, i], out[Z_PRICE, i] = roll_k.count_step(
            st.zp_buf, st.zp_count, st.zp_mean, st.zp_m2, s, px, minp
        )
        out[LOGVOL_MEAN, i], out[LOGVOL_STD, i], out[Z_LOGVOL, i] = roll_k.count_step(
            st.zv_buf, st.zv_count, st.zv_mean, st.zv_m2, s, np.log(v), minp
        )
        if groups & TIME_WINDOW:
            out[Z_PRICE_TIME, i] = roll_k.time_step(
                st.t_vals, st.t_tss, st.t_head, st.t_size, st.t_mean, st.t_m2, st.t_ops,
                s, t, px, p.time_ns, minp,
            )[2]  # fmt: skip
        else:
            out[Z_PRICE_TIME, i] = np.nan
        if groups & QUANTILES:
            _quantiles(st.qr_ring, st.qr_sorted, st.qr_count, s, r, minp, QR, out, RET_Q1, i)
            _quantiles(st.qv_ring, st.qv_sorted, st.qv_count, s, v, minp, QV, out, VOLUME_MEDIAN, i)
            out[VOLUME_RATIO, i] = v / out[VOLUME_MEDIAN, i]
        else:
            _missing(out, RET_Q1, VOLUME_RATIO + 1, i)
        if groups & CI:
            _drift(st.ci_buf, st.ci_count, st.ci_mean, st.ci_m2, s, r, minp, p.t_table, out, i)
        else:
            _missing(out, DRIFT_MEAN, DRIFT_UPPER + 1, i)
        if groups & HORIZONS:
            for k in range(n_hz):
                # the tick's resolution bucket, by division only when it leaves the last one
                if t < hz_lo[s, k] or t >= hz_lo[s, k] + p.horizon_res_ns[k]:
                    hz_b[s, k] = t // p.horizon_res_ns[k]
                    hz_lo[s, k] = hz_b[s, k] * p.horizon_res_ns[k]
                out[CHANGE + k, i] = hz_k.change_step(
                    closes, cur, first, refs, s * n_hz + k, hz_b[s, k], p.horizon_lag[k],
                    px if k < PRICE_HORIZONS else v,
                )  # fmt: skip
        else:
            _missing(out, CHANGE, CHANGE + n_hz, i)
        if groups & MOVING_AVERAGES:
            out[SMA, i] = ma_k.sma_step(st.sma_buf, st.sma_count, st.sma_total, s, px)
            out[EMA, i] = ma_k.ema_step(st.ema_val, st.ema_seen, s, px, p.ema_alpha)
            out[WMA, i] = ma_k.wma_step(st.wma_buf, st.wma_count, s, px, p.wma_weights, p.wma_sum)
            fast = ma_k.ema_step(st.fast_val, st.fast_seen, s, px, p.fast_alpha)
            slow = ma_k.ema_step(st.slow_val, st.slow_seen, s, px, p.slow_alpha)
            out[MA_FAST, i], out[MA_SLOW, i] = fast, slow
            out[CROSSOVER, i] = tr_k.crossover_step(
                st.x_side, st.x_hist, st.x_count, s, fast, slow, p.min_gap
            )
        else:
            _missing(out, SMA, CROSSOVER + 1, i)
        z_ret = out[Z_RET, i]
        out[CUSUM_ALARM, i] = tr_k.cusum_step(
            st.cu_pos, st.cu_neg, s, z_ret, p.cusum_drift, p.cusum_threshold
        )
        out[CUSUM_POS, i], out[CUSUM_NEG, i] = st.cu_pos[s], st.cu_neg[s]
        decay = p.ens_ref_decay
        best = ens_k.method_step(st.en_ref, s, 0, z_ret, decay, 0.0)
        best = ens_k.method_step(st.en_ref, s, 1, out[Z_LOGVOL, i], decay, best)
        best = ens_k.method_step(st.en_ref, s, 2, np.log(out[VOL_RATIO, i]), decay, best)
        out[ENSEMBLE, i] = ens_k.score_step(
            st.en_recent, st.en_seen, s, best, minp, p.ens_damp, p.ens_recent_decay
        )
        n_hits = _hits(
            st.active, s, out, i, p.z_threshold, p.iqr_k, p.vol_ratio_threshold,
            p.ensemble_threshold, hit_index, hit_check, n_hits,
        )  # fmt: skip
    return n_hits


@kernel(error_model="numpy", inline="always")
def _returns(last_price, n_ret, var, var_short, var_long, s, px, a, a_short, a_long, minp, out, i):
    """The log return and the three EWMA volatilities (the detector's, short and long)."""
    n = n_ret[s]
    if n < 0 or not (px > 0.0):  # first price of the symbol or a bad one
        out[RET, i] = np.nan
        out[EWMA_Z, i] = np.nan
        out[EWMA_VOL, i] = math.sqrt(var[s]) if n > 0 else np.nan
        short = math.sqrt(var_short[s]) if n > 0 else np.nan
        long = math.sqrt(var_long[s]) if n > 0 else np.nan
        out[VOL_RATIO, i] = short / long
        if px > 0.0:
            last_price[s] = px
            n_ret[s] = 0
        return
    r = math.log(px / last_price[s])
    last_price[s] = px
    out[RET, i] = r
    out[EWMA_VOL, i], out[EWMA_Z, i] = ewma_step(var, s, n, r, a, minp)
    short = ewma_step(var_short, s, n, r, a_short, 1)[0]
    long = ewma_step(var_long, s, n, r, a_long, 1)[0]
    out[VOL_RATIO, i] = short / long
    n_ret[s] = n + 1


@kernel(inline="always")
def _missing(out, lo, hi, i):
    """Rows ``lo`` to ``hi - 1`` of tick ``i`` are not computed (a group left out)."""
    for row in range(lo, hi):
        out[row, i] = np.nan


@kernel(error_model="numpy", inline="always")
def _quantiles(ring, srt, count, s, x, minp, qs, out, row, i):
    """Quantiles ``qs`` (three) of the window before this tick into ``out[row:row + 3, i]``;
    then a finite ``x`` joins the window."""
    warm = min(count[s], ring.shape[1]) >= minp
    for j in range(3):
        out[row + j, i] = q_k.quantile_at(srt, count, s, qs[j]) if warm else np.nan
    if np.isfinite(x):
        q_k.push(ring, srt, count, s, x)


@kernel(error_model="numpy", inline="always")
def _drift(buf, count, mean, m2, s, r, minp, t_table, out, i):
    """The Student t confidence interval of the mean return over the last ``ci_window`` ticks."""
    n = min(count[s], buf.shape[1])
    m, sd, _ = roll_k.count_step(buf, count, mean, m2, s, r, minp)
    half = t_table[n] * sd / math.sqrt(max(n, 1))
    out[DRIFT_MEAN, i], out[DRIFT_LOWER, i], out[DRIFT_UPPER, i] = m, m - half, m + half


@kernel(error_model="numpy", inline="always")
def _hits(active, s, out, i, zt, iqr_k, vol_ratio_threshold, ens_threshold, index, check, n):
    """The anomaly tests of tick ``i``: episodes start where a test passes after a tick that
    did not pass it; crossovers, CUSUM alarms and high ensemble scores count every time."""
    z_ret, z_vol, r = out[Z_RET, i], out[Z_LOGVOL, i], out[RET, i]
    q1, q3 = out[RET_Q1, i], out[RET_Q3, i]
    iqr = q3 - q1
    passed = (
        z_ret >= zt,
        z_ret <= -zt,
        z_vol >= zt,
        z_vol <= -zt,
        r > q3 + iqr_k * iqr,
        r < q1 - iqr_k * iqr,
        out[DRIFT_LOWER, i] > 0.0,
        out[DRIFT_UPPER, i] < 0.0,
        out[VOL_RATIO, i] >= vol_ratio_threshold,
        abs(out[CROSSOVER, i]) > 0.0,  # NaN when the averages are left out: no reversal
        out[CUSUM_ALARM, i] != 0.0,
        out[ENSEMBLE, i] >= ens_threshold,
    )
    for k in range(len(passed)):
        hit = passed[k]
        if k < EPISODIC:
            starts = hit and not active[s, k]
            active[s, k] = hit
            hit = starts
        if hit:
            index[n] = i
            check[n] = k
            n += 1
    return n
