"""The full detector set over tick batches: every kernel, the anomalies, the ensemble score.

One pass of :func:`rxpipe.kernels.detect.detect` computes every signal column and finds the
anomaly hits; :func:`rxpipe.kernels.anomalies.anomaly_rows` describes the hits; the rollups
close their buckets.

>>> from rxpipe.sources.simulator import Simulator
>>> sim = Simulator(seed=1, step_s=1.0, start_ns=0)
>>> det = DetectorSet()
>>> out = det.update(sim.steps(500))
>>> len(out) == 5000, "z_ret" in out.columns, 0.0 <= float(out["ensemble"].max()) <= 1.0
(True, True, True)
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import stats as sps

from rxpipe.kernels import detect as det_k
from rxpipe.kernels import horizon as hz_k
from rxpipe.kernels.anomalies import anomaly_rows
from rxpipe.model import TickBatch
from rxpipe.operators.rollups import Rollups
from rxpipe.operators.severity import SeverityScale
from rxpipe.operators.state import SymbolState
from rxpipe.signals import ANOMALY_COLUMNS, ANOMALY_TYPES, METHODS, AnomalyBatch, SignalBatch

H = 3_600_000_000_000  # one hour in ns

# The signal columns a DetectorSet produces (rules may name them; a test keeps this list true).
SIGNAL_COLUMNS = frozenset(det_k.COLUMNS)


@dataclass
class DetectorConfig:
    """Every parameter of the detector set; the defaults are one set for every symbol."""

    window: int = 100  # ticks, for z-scores, quantiles and the CI
    min_periods: int = 30  # no anomaly before a window has this many samples
    time_window_s: float = 300.0  # the time-window z-score of the price
    time_capacity: int = 65_536  # values per symbol the time window can hold
    z_threshold: float = 4.0  # |z| of a return or log-volume that is an anomaly
    iqr_k: float = (
        3.0  # Tukey fences: Q1 - k*IQR, Q3 + k*IQR (the seed's 1.5 flags too much on ticks)
    )
    ci_level: float = 0.99  # 0.90, 0.95 or 0.99
    ci_window: int = 30  # a small window: Student t
    ewma_span: int = 100  # EWMA volatility of log returns
    vol_short_span: int = 20
    vol_long_span: int = 2000  # the regime the short volatility is compared with
    vol_ratio_threshold: float = 3.0  # short/long volatility that is a regime change
    horizons_s: tuple[float, ...] = (3600.0, 4 * 3600.0, 24 * 3600.0)
    horizon_buckets: int = hz_k.BUCKETS
    sma_window: int = 50
    ema_span: int = 20
    wma_weights: tuple[float, ...] = tuple(float(w) for w in range(1, 11))
    fast_span: int = 12
    slow_span: int = 26
    slope_lag: int = 10
    min_gap: float = 0.0005
    cusum_drift: float = 0.5
    cusum_threshold: float = 10.0
    ensemble_threshold: float = 0.9
    ensemble_ref_ticks: int = 1000
    ensemble_recent_ticks: int = 100
    ensemble_damp: float = 0.5
    rollup_intervals_s: tuple[float, ...] = (60, 300, 900, 3600, 4 * 3600, 86400)
    severity: SeverityScale = field(default_factory=SeverityScale)
    # The optional signal groups to compute (all by default): "quantiles", "time_window",
    # "ci", "horizons", "moving_averages". The core (returns, EWMA volatility, the z-scores,
    # CUSUM, the ensemble) always runs; a group left out costs nothing, its columns are NaN
    # and its methods report no anomalies. Leave out what nobody reads to go faster.
    methods: tuple[str, ...] = det_k.OPTIONAL


def _alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


def _label(seconds: float) -> str:
    return f"{int(seconds // 3600)}h" if seconds % 3600 == 0 else f"{int(seconds)}s"


class DetectorSet:
    """All detectors over one stream; ``update(batch) -> SignalBatch``, state per symbol."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        c = self.config = config if config is not None else DetectorConfig()
        if len(c.horizons_s) != det_k.PRICE_HORIZONS:
            raise ValueError(
                f"horizons_s needs {det_k.PRICE_HORIZONS} horizons, got {c.horizons_s!r}"
            )
        if isinstance(c.methods, str):  # methods="ci" would read as five one-letter names
            raise ValueError(f"methods is a tuple of group names, such as ({c.methods!r},)")
        unknown = sorted(set(c.methods) - set(det_k.OPTIONAL))
        if unknown:
            raise ValueError(
                f"unknown detector methods {unknown}; choose from {', '.join(det_k.OPTIONAL)}"
            )
        # a horizon is a whole number of resolution buckets (within a few ns of the setting)
        res = np.array([round(h * 1e9) for h in (*c.horizons_s, H / 1e9)]) // c.horizon_buckets
        weights = np.asarray(c.wma_weights, np.float64)
        self._params = det_k.Params(
            groups=sum(1 << det_k.OPTIONAL.index(m) for m in set(c.methods)),
            min_periods=c.min_periods,
            alpha=_alpha(c.ewma_span),
            alpha_short=_alpha(c.vol_short_span),
            alpha_long=_alpha(c.vol_long_span),
            time_ns=int(c.time_window_s * 1e9),
            # Student t critical values indexed by the window's size n (df = n - 1)
            t_table=sps.t.ppf(
                0.5 + c.ci_level / 2.0, np.maximum(np.arange(c.ci_window + 1) - 1, 1)
            ),
            horizon_res_ns=res.astype(np.int64),
            horizon_lag=np.full(len(res), c.horizon_buckets, np.int64),
            ema_alpha=_alpha(c.ema_span),
            fast_alpha=_alpha(c.fast_span),
            slow_alpha=_alpha(c.slow_span),
            wma_weights=weights,
            wma_sum=float(weights.sum()),
            min_gap=c.min_gap,
            cusum_drift=c.cusum_drift,
            cusum_threshold=c.cusum_threshold,
            ens_ref_decay=1.0 - 1.0 / c.ensemble_ref_ticks,
            ens_recent_decay=1.0 - 1.0 / c.ensemble_recent_ticks,
            ens_damp=c.ensemble_damp,
            z_threshold=c.z_threshold,
            iqr_k=c.iqr_k,
            vol_ratio_threshold=c.vol_ratio_threshold,
            ensemble_threshold=c.ensemble_threshold,
            window=c.window,
            ci_window=c.ci_window,
            ewma_span=c.ewma_span,
            slow_span=c.slow_span,
            ens_ref_ticks=c.ensemble_ref_ticks,
            severity=np.array([c.severity.medium, c.severity.high, c.severity.critical]),
        )
        self._names = list(det_k.COLUMNS)
        for k, h in enumerate(c.horizons_s):
            self._names[det_k.CHANGE + k] = f"change_{_label(h)}"
        self.series = _series(c, self._names)
        self._check_type = np.array(
            [ANOMALY_TYPES.index(t) if t else -1 for _, t in det_k.CHECKS], np.int8
        )
        self._check_method = np.array([METHODS.index(m) for m, _ in det_k.CHECKS], np.int8)
        self.state = _state(c, len(res))
        self._kernel_state: det_k.State | None = None  # the arrays as the pass takes them
        self.rollups = Rollups(c.rollup_intervals_s)

    # -- the verb ---------------------------------------------------------------------------

    def update(self, batch: TickBatch) -> SignalBatch:
        n = len(batch)
        top = int(batch.symbol.max()) if n else -1
        if top >= self.state.n_symbols:  # a new symbol: the state grows, the tuple is rebuilt
            self.state.ensure(top + 1)
            self._kernel_state = None
        if self._kernel_state is None:
            self._kernel_state = det_k.State(**self.state.arrays)
        st = self._kernel_state
        out = _rows(len(det_k.COLUMNS), n)
        hit_index = np.empty(len(det_k.CHECKS) * n, np.int64)
        hit_check = np.empty(len(det_k.CHECKS) * n, np.int8)
        n_hits = det_k.detect(
            batch.symbol, batch.ts, batch.price, batch.volume, self._params, st, out,
            hit_index, hit_check,
        )  # fmt: skip
        anomalies = self._anomalies(batch, out, hit_index[:n_hits], hit_check[:n_hits])
        cols = dict(zip(self._names, out, strict=True))
        return SignalBatch(batch, cols, anomalies, self.rollups.update(batch), self.series)

    def snapshot(self) -> dict[str, Any]:
        return {"state": self.state.snapshot(), "rollups": self.rollups.snapshot()}

    def restore(self, snap: dict[str, Any]) -> None:
        snap = copy.deepcopy(snap)
        self.state.restore(snap["state"])
        self._kernel_state = None
        self.rollups.restore(snap["rollups"])

    def _anomalies(
        self, b: TickBatch, out: np.ndarray, hit_index: np.ndarray, hit_check: np.ndarray
    ) -> AnomalyBatch:
        if not len(hit_index):
            return AnomalyBatch.empty()
        cols = tuple(np.empty(len(hit_index), dt) for dt in ANOMALY_COLUMNS.values())
        anomaly_rows(
            hit_index, hit_check, self._check_type, self._check_method,
            b.symbol, b.ts, b.price, b.volume, out, self._params, cols,
        )  # fmt: skip
        return AnomalyBatch(dict(zip(ANOMALY_COLUMNS, cols, strict=True)))


def _series(c: DetectorConfig, names: list[str]) -> dict[str, str]:
    """The columns that are rule-language series, computed by the same step functions as the
    rules' own (``SignalBatch.series``): the moving averages, and the price and volume changes
    over whole-second horizons when the horizons have as many resolution buckets as the rules'
    (then both find the same reference bucket). Groups left out publish nothing."""
    from rxpipe.rules.parser import parse
    from rxpipe.rules.shared import canonical

    found = {}
    if "moving_averages" in c.methods:
        found[f"sma(price, {c.sma_window})"] = names[det_k.SMA]
        found[f"ema(price, {c.ema_span})"] = names[det_k.EMA]
        found[f"ema(price, {c.slow_span})"] = names[det_k.MA_SLOW]
        found[f"ema(price, {c.fast_span})"] = names[det_k.MA_FAST]
    horizons = [("price", h) for h in c.horizons_s] + [("volume", H / 1e9)]
    for k, (field_name, h) in enumerate(horizons if "horizons" in c.methods else []):
        if c.horizon_buckets == hz_k.BUCKETS and float(h).is_integer():
            found[f"change_pct({field_name}, {int(h)}s)"] = names[det_k.CHANGE + k]
    return {canonical(parse(text)): column for text, column in found.items()}


def _rows(k: int, n: int) -> np.ndarray:
    """``k`` rows of ``n`` floats whose starts are not a multiple of 4 KiB apart.

    The pass writes every row at each tick; rows exactly 4 KiB * m apart (a 4,096-tick batch)
    all fall in one set of the 8-way L1 cache and evict each other: measured 2x slower.
    """
    stride = (n // 512 + 1) * 512 + 8  # 64 bytes past a multiple of 4 KiB
    return np.empty((k, stride))[:, :n]


def _state(c: DetectorConfig, n_horizons: int) -> SymbolState:
    """Every per-symbol array of the pass (see ``rxpipe.kernels.detect.State``)."""
    w, f8, i8 = c.window, np.float64, np.int64

    def window(size: int) -> dict[str, Any]:
        return {"buf": (0.0, (size,)), "count": (0, (), i8), "mean": (0.0, ()), "m2": (0.0, ())}

    spec: dict[str, Any] = {
        "last_price": (0.0, ()),
        "n_ret": (-1, (), i8),
        "var": (0.0, ()),
        "var_short": (0.0, ()),
        "var_long": (0.0, ()),
        **{f"{k}_{f}": v for k, size in (("zr", w), ("zp", w), ("zv", w), ("ci", c.ci_window))
           for f, v in window(size).items()},
        "t_vals": (0.0, (c.time_capacity,)),
        "t_tss": (0, (c.time_capacity,), i8),
        "t_head": (0, (), i8),
        "t_size": (0, (), i8),
        "t_mean": (0.0, ()),
        "t_m2": (0.0, ()),
        "t_ops": (0, (), i8),
        **{f"{k}_{f}": v for k in ("qr", "qv")
           for f, v in (("ring", (0.0, (w,))), ("sorted", (0.0, (w,))), ("count", (0, (), i8)))},
        "hz_closes": (np.nan, (n_horizons, hz_k.ring_size(c.horizon_buckets)), f8),
        "hz_cur": (-1, (n_horizons,), i8),
        "hz_first": (-1, (n_horizons,), i8),
        "hz_ref": (np.nan, (n_horizons,), f8),
        "hz_b": (0, (n_horizons,), i8),
        "hz_lo": (-(2**62), (n_horizons,), i8),  # long ago: the first tick computes its bucket
        "sma_buf": (0.0, (c.sma_window,)),
        "sma_count": (0, (), i8),
        "sma_total": (0.0, ()),
        **{f"{k}_{f}": v for k in ("ema", "fast", "slow")
           for f, v in (("val", (0.0, ())), ("seen", (False, (), np.bool_)))},
        "wma_buf": (0.0, (len(c.wma_weights),)),
        "wma_count": (0, (), i8),
        "x_side": (0, (), np.int8),
        "x_hist": (0.0, (c.slope_lag,)),
        "x_count": (0, (), i8),
        "cu_pos": (0.0, ()),
        "cu_neg": (0.0, ()),
        "en_ref": (0.0, (3,)),
        "en_recent": (0.0, ()),
        "en_seen": (0, (), i8),
        "active": (False, (det_k.EPISODIC,), np.bool_),
    }  # fmt: skip
    assert set(spec) == set(det_k.State._fields)
    return SymbolState(**spec)
