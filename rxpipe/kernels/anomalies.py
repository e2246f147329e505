"""Anomaly rows from the detector pass's hits: score, severity, confidence, expectation, band.

Runs over the hits only (a few per batch), reading the signal columns the pass wrote.
"""

from __future__ import annotations

import math

import numpy as np

from rxpipe.kernels import detect as d
from rxpipe.kernels.jit import kernel

# ANOMALY_TYPES order (rxpipe.signals), for the ensemble's strongest-method type
PRICE_SPIKE, PRICE_DROP, VOLUME_SPIKE, VOLUME_DROP, VOLATILITY = range(5)
_MAX = np.finfo(np.float64).max


@kernel
def _finite(x, nan=0.0):
    """numpy's ``nan_to_num``: NaN becomes ``nan``, infinities the largest floats."""
    if np.isnan(x):
        return nan
    return min(max(x, -_MAX), _MAX)


@kernel
def grade(deviation, severity):
    """0 low, 1 medium, 2 high, 3 critical, by ``|deviation|`` against the three thresholds."""
    a = abs(deviation)
    return (a >= severity[0]) + (a >= severity[1]) + (a >= severity[2])


@kernel(error_model="numpy")
def anomaly_rows(
    hit_index, hit_check, check_type, check_method, symbol, ts, price, volume, cols, p, out
):
    """One row a hit into ``out`` (a dict-like tuple of the AnomalyBatch columns, in order:
    index, symbol, ts, type, method, score, severity, confidence, observed, expected, lower,
    upper, window)."""
    (o_index, o_symbol, o_ts, o_type, o_method, o_score, o_sev, o_conf, o_obs, o_exp, o_lo, o_hi, o_win) = out  # fmt: skip
    zt = p.z_threshold
    for h in range(hit_index.shape[0]):
        i, k = hit_index[h], hit_check[h]
        px = price[i]
        prev = px * math.exp(-_finite(cols[d.RET, i]))
        observed, window = px, p.window
        if k <= 1:  # zscore of the return
            dev = cols[d.Z_RET, i]
            mu, sd = cols[d.RET_MEAN, i], cols[d.RET_STD, i]
            expected = prev * math.exp(mu)
            lower, upper = prev * math.exp(mu - zt * sd), prev * math.exp(mu + zt * sd)
        elif k <= 3:  # zscore of the log volume
            dev = cols[d.Z_LOGVOL, i]
            mu, sd = cols[d.LOGVOL_MEAN, i], cols[d.LOGVOL_STD, i]
            expected = math.exp(mu)
            lower, upper = math.exp(mu - zt * sd), math.exp(mu + zt * sd)
            observed = volume[i]
        elif k <= 5:  # iqr
            r = _finite(cols[d.RET, i])
            q1, q3 = cols[d.RET_Q1, i], cols[d.RET_Q3, i]
            iqr = q3 - q1 if q3 > q1 else np.nan
            dev = (r - q3) / iqr if r > q3 else (r - q1) / iqr
            expected = prev * math.exp(cols[d.RET_MEDIAN, i])
            lower = prev * math.exp(q1 - p.iqr_k * iqr)
            upper = prev * math.exp(q3 + p.iqr_k * iqr)
        elif k <= 7:  # ci: the drift's interval in units of its half-width
            lo, hi = cols[d.DRIFT_LOWER, i], cols[d.DRIFT_UPPER, i]
            half = (hi - lo) / 2.0
            dev = (lo + hi) / 2.0 / (half if half > 0 else np.nan) * p.t_table[-1]
            expected = prev
            lower, upper = prev * math.exp(p.ci_window * lo), prev * math.exp(p.ci_window * hi)
            window = p.ci_window
        elif k == 8:  # volatility regime: short over long EWMA volatility
            dev = cols[d.VOL_RATIO, i]
            expected = cols[d.EWMA_VOL, i]
            observed = expected * dev
            lower, upper = 0.0, expected * p.vol_ratio_threshold
            window = p.ewma_span
        elif k <= 10:  # a confirmed reversal is a high-severity event
            sign = np.sign(cols[d.CROSSOVER if k == 9 else d.CUSUM_ALARM, i])
            dev = sign * p.severity[1]
            expected = lower = upper = cols[d.MA_SLOW, i]
            window = p.slow_span
        else:
            dev = np.nan
            expected = lower = upper = prev
        o_index[h], o_symbol[h], o_ts[h] = i, symbol[i], ts[i]
        o_method[h] = check_method[k]
        o_obs[h], o_exp[h], o_lo[h], o_hi[h] = observed, expected, lower, upper
        if k == len(d.CHECKS) - 1:
            _ensemble_row(cols, i, h, o_type, o_score, o_sev, o_conf, o_win, p)
            continue
        dv = _finite(dev)
        o_type[h] = check_type[k]
        o_score[h] = dv
        o_sev[h] = grade(dv, p.severity)
        o_conf[h] = math.erf(abs(dv) / math.sqrt(2.0))
        o_win[h] = window


@kernel
def _ensemble_row(cols, i, h, o_type, o_score, o_sev, o_conf, o_win, p):
    """The ensemble's row: the strongest method names the type; the score grades it."""
    score = cols[d.ENSEMBLE, i]
    zr, zv = _finite(cols[d.Z_RET, i]), _finite(cols[d.Z_LOGVOL, i])
    lvr = np.log(_finite(cols[d.VOL_RATIO, i], 1.0))
    if abs(zr) >= abs(zv) and abs(zr) >= abs(lvr):
        o_type[h] = PRICE_SPIKE if zr >= 0 else PRICE_DROP
    elif abs(zv) >= abs(lvr):
        o_type[h] = VOLUME_SPIKE if zv >= 0 else VOLUME_DROP
    else:
        o_type[h] = VOLATILITY
    o_score[h] = score
    o_sev[h] = 3 if score >= 0.99 else (2 if score >= 0.95 else 1)
    o_conf[h] = score
    o_win[h] = p.ens_ref_ticks
