"""The ensemble score of one plain series (NAB's ``timestamp,value``): values may be zero or
negative, so the methods look at the value, its first difference and its recent level (the
mean of the last few values) instead of log returns, each as a rolling z-score.

Each z-score is the larger of two: against the window's mean and standard deviation, and
against its median and interquartile range (``IQR / 1.349``, the standard deviation of a
normal with that IQR). The robust one is not blinded by an earlier spike still in the window,
which inflates the standard deviation: a second spike as large as the first stands out again.
On NAB this lifts the standard score from 56.7 to 60.8 at the same defaults, and it does better
at most of the window/reference settings around them (``make nab`` compares them)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rxpipe.kernels import quantiles as q_k
from rxpipe.kernels.ensemble import ensemble
from rxpipe.kernels.rolling import count_state, rolling_count


@dataclass(frozen=True)
class SeriesConfig:
    """One set of defaults for every series; no labels, no per-series tuning."""

    window: int = 150
    min_periods: int = 30
    level_ticks: int = 6  # the level method compares the mean of the last 6 values
    level_weight: float = 0.5
    ref_ticks: int = 1000
    recent_ticks: int = 100
    damp: float = 0.5  # a score not above the recent scores is multiplied by this
    season_s: float = 86_400.0  # with timestamps: compare with the value one day before ...
    season_min_rho: float = 0.85  # ... where the series has tracked that value this closely so far
    season_min_pairs: int = 288
    flat_deviation: float = 20.0  # any change after a perfectly flat window counts this much
    robust: bool = True  # also z against the median and IQR, and keep the larger


def _abs_z(x: np.ndarray, cfg: SeriesConfig) -> np.ndarray:
    """``|z|`` of each value against the window before it: the larger of the classic and the
    robust (median and IQR) one. A change after a perfectly flat window counts
    ``flat_deviation``; NaN until the window has ``min_periods`` values."""
    n = len(x)
    sym = np.zeros(n, np.int32)
    st = count_state(1, cfg.window)
    m, sd, z = np.empty(n), np.empty(n), np.empty(n)
    rolling_count(sym, x, st["buf"], st["count"], st["mean"], st["m2"], cfg.min_periods, m, sd, z)
    flat = (sd == 0.0) & (np.abs(x - m) > 0.0)
    classic = np.where(flat, cfg.flat_deviation, np.abs(z))
    if not cfg.robust:
        return classic
    qs = q_k.state(1, cfg.window)
    q = np.empty((n, 3))
    q_k.rolling_quantiles(
        sym, x, np.array([0.25, 0.5, 0.75]), qs["ring"], qs["sorted"], qs["count"],
        cfg.min_periods, q,
    )  # fmt: skip
    away = np.abs(x - q[:, 1])
    scale = (q[:, 2] - q[:, 0]) / 1.349
    with np.errstate(divide="ignore", invalid="ignore"):
        robust = np.where(scale > 0, away / scale, np.where(away > 0, cfg.flat_deviation, 0.0))
    return np.fmax(classic, np.where(np.isnan(q[:, 1]), np.nan, robust))


def _trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values (NaN for the first ``k - 1``): causal."""
    out = np.full(len(x), np.nan)
    if len(x) >= k:
        c = np.cumsum(np.r_[0.0, x])
        out[k - 1 :] = (c[k:] - c[:-k]) / k
    return out


def seasonal_residual(
    x: np.ndarray, ts: np.ndarray, cfg: SeriesConfig
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` minus its value one season earlier, where the series has been seasonal so far.

    Returns the residual (``x`` itself where not seasonal) and the mask of seasonal points.
    Seasonal means: the correlation of the value with its value one season before, over every
    pair seen up to this point, is at least ``season_min_rho`` (causal: cumulative sums).
    """
    idx = np.searchsorted(ts, ts - int(cfg.season_s * 1e9), side="right") - 1
    ok = idx >= 0
    lag = np.where(ok, x[np.maximum(idx, 0)], np.nan)
    a, b, w = np.where(ok, x, 0.0), np.where(ok, lag, 0.0), ok.astype(np.float64)
    n = np.maximum(np.cumsum(w), 1.0)
    ma, mb = np.cumsum(a) / n, np.cumsum(b) / n
    cov = np.cumsum(a * b) / n - ma * mb
    var = (np.cumsum(a * a) / n - ma**2) * (np.cumsum(b * b) / n - mb**2)
    with np.errstate(invalid="ignore", divide="ignore"):
        rho = np.where(var > 0, cov / np.sqrt(np.abs(var)), 0.0)
    seasonal = ok & (np.cumsum(w) >= cfg.season_min_pairs) & (rho >= cfg.season_min_rho)
    return np.where(seasonal, x - lag, x), seasonal


def score_series(
    values: np.ndarray, timestamps: np.ndarray | None = None, config: SeriesConfig | None = None
) -> np.ndarray:
    """Causal anomaly score in [0, 1] per value (score ``i`` uses values ``<= i`` only).

    With ``timestamps`` (ns), a series that repeats daily is scored on its difference from the
    day before, where it has been repeating (the daily shape itself is not news).

    >>> x = np.r_[np.sin(np.arange(600) / 10.0), 8.0, np.sin(np.arange(601, 700) / 10.0)]
    >>> s = score_series(x)
    >>> int(np.argmax(s)), bool(s[600] > 0.9)
    (600, True)
    """
    cfg = config if config is not None else SeriesConfig()
    x = np.asarray(values, np.float64)
    plain = _score(x, cfg)
    if timestamps is None or len(x) == 0:
        return plain
    residual, seasonal = seasonal_residual(x, np.asarray(timestamps, np.int64), cfg)
    if not seasonal.any():
        return plain
    return np.where(seasonal, _score(residual, cfg), plain)


def _score(x: np.ndarray, cfg: SeriesConfig) -> np.ndarray:
    n = len(x)
    diff = np.r_[np.nan, np.diff(x)]
    level = _trailing_mean(x, cfg.level_ticks)
    dev = np.column_stack(
        [_abs_z(x, cfg), _abs_z(diff, cfg), cfg.level_weight * _abs_z(level, cfg)]
    )
    out = np.empty(n)
    ensemble(
        np.zeros(n, np.int32),
        dev,
        1.0 - 1.0 / cfg.ref_ticks,
        1.0 - 1.0 / cfg.recent_ticks,
        cfg.min_periods,
        cfg.damp,
        np.zeros((1, dev.shape[1])),
        np.zeros(1),
        np.zeros(1, np.int64),
        out,
    )
    return out
