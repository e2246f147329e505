"""The ensemble score of one plain series (NAB's ``timestamp,value``): values may be zero or
negative, so the methods look at the value, its first difference and its recent level (the
mean of the last few values) instead of log returns, each as a rolling z-score."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from rxpipe.kernels.ensemble import ensemble
from rxpipe.kernels.rolling import count_state, rolling_count


@dataclass(frozen=True)
class SeriesConfig:
    """One set of defaults for every series; no labels, no per-series tuning."""

    window: int = 150
    min_periods: int = 30
    level_ticks: int = 12  # the level method compares the mean of the last 12 values
    level_weight: float = 0.5
    ref_ticks: int = 1000
    recent_ticks: int = 100
    flat_deviation: float = 20.0  # any change after a perfectly flat window counts this much


def _abs_z(x: np.ndarray, cfg: SeriesConfig) -> np.ndarray:
    n = len(x)
    st = count_state(1, cfg.window)
    m, sd, z = np.empty(n), np.empty(n), np.empty(n)
    rolling_count(
        np.zeros(n, np.int32),
        x,
        st["buf"],
        st["count"],
        st["mean"],
        st["m2"],
        cfg.min_periods,
        m,
        sd,
        z,
    )
    flat = (sd == 0.0) & (np.abs(x - m) > 0.0)
    return np.where(flat, cfg.flat_deviation, np.abs(z))


def _trailing_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean of the last ``k`` values (NaN for the first ``k - 1``): causal."""
    out = np.full(len(x), np.nan)
    if len(x) >= k:
        c = np.cumsum(np.r_[0.0, x])
        out[k - 1 :] = (c[k:] - c[:-k]) / k
    return out


def score_series(values: np.ndarray, config: SeriesConfig | None = None) -> np.ndarray:
    """Causal anomaly score in [0, 1] per value (score ``i`` uses values ``<= i`` only).

    >>> x = np.r_[np.sin(np.arange(600) / 10.0), 8.0, np.sin(np.arange(601, 700) / 10.0)]
    >>> s = score_series(x)
    >>> int(np.argmax(s)), bool(s[600] > 0.9)
    (600, True)
    """
    cfg = config if config is not None else SeriesConfig()
    x = np.asarray(values, np.float64)
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
        np.zeros((1, dev.shape[1])),
        np.zeros(1),
        np.zeros(1, np.int64),
        out,
    )
    return out
