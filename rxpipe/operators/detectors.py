"""The full detector set over tick batches: every kernel, the anomalies, the ensemble score.

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

from rxpipe.kernels import ensemble as ens_k
from rxpipe.kernels import horizon as hz_k
from rxpipe.kernels import moving as ma_k
from rxpipe.kernels import quantiles as q_k
from rxpipe.kernels import rolling as roll_k
from rxpipe.kernels import trend as tr_k
from rxpipe.kernels import volatility as vol_k
from rxpipe.kernels.episodes import episode_starts
from rxpipe.model import TickBatch
from rxpipe.operators.rollups import Rollups
from rxpipe.operators.severity import SeverityScale, confidence
from rxpipe.operators.state import SymbolState
from rxpipe.signals import ANOMALY_TYPES, METHODS, AnomalyBatch, SignalBatch

H = 3_600_000_000_000  # one hour in ns
_T = {name: k for k, name in enumerate(ANOMALY_TYPES)}
_M = {name: k for k, name in enumerate(METHODS)}


# The signal columns a DetectorSet produces (rules may name them; a test keeps this list true).
SIGNAL_COLUMNS = frozenset(
    {
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
        "change_1h",
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
    }
)


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
    horizon_buckets: int = 240
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


def _alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


class DetectorSet:
    """All detectors over one stream; ``update(batch) -> SignalBatch``, state per symbol."""

    def __init__(self, config: DetectorConfig | None = None) -> None:
        c = self.config = config if config is not None else DetectorConfig()
        w = c.window
        # Student t critical values indexed by the window's size n (df = n - 1)
        self._t_table = sps.t.ppf(
            0.5 + c.ci_level / 2.0, np.maximum(np.arange(c.ci_window + 1) - 1, 1)
        )
        self.state = SymbolState(
            zr_buf=(0.0, (w,)),
            zr_count=(0, (), np.int64),
            zr_mean=(0.0, ()),
            zr_m2=(0.0, ()),
            zp_buf=(0.0, (w,)),
            zp_count=(0, (), np.int64),
            zp_mean=(0.0, ()),
            zp_m2=(0.0, ()),
            zv_buf=(0.0, (w,)),
            zv_count=(0, (), np.int64),
            zv_mean=(0.0, ()),
            zv_m2=(0.0, ()),
            ci_buf=(0.0, (c.ci_window,)),
            ci_count=(0, (), np.int64),
            ci_mean=(0.0, ()),
            ci_m2=(0.0, ()),
            t_vals=(0.0, (c.time_capacity,)),
            t_tss=(0, (c.time_capacity,), np.int64),
            t_head=(0, (), np.int64),
            t_size=(0, (), np.int64),
            t_mean=(0.0, ()),
            t_m2=(0.0, ()),
            t_ops=(0, (), np.int64),
            qr_ring=(0.0, (w,)),
            qr_sorted=(0.0, (w,)),
            qr_count=(0, (), np.int64),
            qv_ring=(0.0, (w,)),
            qv_sorted=(0.0, (w,)),
            qv_count=(0, (), np.int64),
            v_last=(0.0, ()),
            v_var=(0.0, ()),
            v_n=(-1, (), np.int64),
            vs_last=(0.0, ()),
            vs_var=(0.0, ()),
            vs_n=(-1, (), np.int64),
            vl_last=(0.0, ()),
            vl_var=(0.0, ()),
            vl_n=(-1, (), np.int64),
            sma_buf=(0.0, (c.sma_window,)),
            sma_count=(0, (), np.int64),
            sma_total=(0.0, ()),
            ema_val=(0.0, ()),
            ema_seen=(False, (), np.bool_),
            fast_val=(0.0, ()),
            fast_seen=(False, (), np.bool_),
            slow_val=(0.0, ()),
            slow_seen=(False, (), np.bool_),
            wma_buf=(0.0, (len(c.wma_weights),)),
            wma_count=(0, (), np.int64),
            x_side=(0, (), np.int8),
            x_hist=(0.0, (c.slope_lag,)),
            x_count=(0, (), np.int64),
            cu_pos=(0.0, ()),
            cu_neg=(0.0, ()),
            en_ref=(0.0, (3,)),
            en_recent=(0.0, ()),
            en_seen=(0, (), np.int64),
            active=(False, (9,), np.bool_),
        )
        self._horizons = [
            (
                h,
                SymbolState(
                    closes=(np.nan, (c.horizon_buckets + 2,)),
                    cur=(-1, (), np.int64),
                    first=(-1, (), np.int64),
                ),
            )
            for h in c.horizons_s
        ]
        self._vol_horizon = SymbolState(
            closes=(np.nan, (c.horizon_buckets + 2,)),
            cur=(-1, (), np.int64),
            first=(-1, (), np.int64),
        )
        self.rollups = Rollups(c.rollup_intervals_s)
        self._qs = np.array([0.25, 0.5, 0.75, 0.95, 0.99])

    # -- the verb ---------------------------------------------------------------------------

    def update(self, batch: TickBatch) -> SignalBatch:
        n = len(batch)
        if n:
            self.state.ensure(int(batch.symbol.max()) + 1)
            for _, st in self._horizons:
                st.ensure(self.state.n_symbols)
            self._vol_horizon.ensure(self.state.n_symbols)
        cols = self._signals(batch)
        anomalies = self._anomalies(batch, cols)
        rollups = self.rollups.update(batch)
        return SignalBatch(batch, cols, anomalies, rollups)

    def snapshot(self) -> dict[str, Any]:
        return {
            "state": self.state.snapshot(),
            "horizons": [st.snapshot() for _, st in self._horizons],
            "vol_horizon": self._vol_horizon.snapshot(),
            "rollups": self.rollups.snapshot(),
        }

    def restore(self, snap: dict[str, Any]) -> None:
        snap = copy.deepcopy(snap)
        self.state.restore(snap["state"])
        for (_, st), s in zip(self._horizons, snap["horizons"], strict=True):
            st.restore(s)
        self._vol_horizon.restore(snap["vol_horizon"])
        self.rollups.restore(snap["rollups"])

    # -- signals ----------------------------------------------------------------------------

    def _signals(self, b: TickBatch) -> dict[str, np.ndarray]:
        with np.errstate(
            divide="ignore", invalid="ignore"
        ):  # zero volume or volatility: NaN/inf, handled
            return self._compute(b)

    def _compute(self, b: TickBatch) -> dict[str, np.ndarray]:
        c, s = self.config, self.state
        n = len(b)
        sym, ts, price, volume = b.symbol, b.ts, b.price, b.volume
        out: dict[str, np.ndarray] = {}

        def new() -> np.ndarray:
            return np.empty(n)

        ret, vol, ewz = new(), new(), new()
        vol_k.ewma_volatility(
            sym,
            price,
            _alpha(c.ewma_span),
            c.min_periods,
            s["v_last"],
            s["v_var"],
            s["v_n"],
            ret,
            vol,
            ewz,
        )
        vol_short, ret2, ewz2 = new(), new(), new()
        vol_k.ewma_volatility(
            sym,
            price,
            _alpha(c.vol_short_span),
            1,
            s["vs_last"],
            s["vs_var"],
            s["vs_n"],
            ret2,
            vol_short,
            ewz2,
        )
        vol_long, ret3, ewz3 = new(), new(), new()
        vol_k.ewma_volatility(
            sym,
            price,
            _alpha(c.vol_long_span),
            1,
            s["vl_last"],
            s["vl_var"],
            s["vl_n"],
            ret3,
            vol_long,
            ewz3,
        )
        out.update(ret=ret, ewma_vol=vol, ewma_z=ewz, vol_ratio=vol_short / vol_long)

        for prefix, x in (("ret", ret), ("price", price), ("logvol", np.log(volume))):
            key = {"ret": "zr", "price": "zp", "logvol": "zv"}[prefix]
            m, sd, z = new(), new(), new()
            roll_k.rolling_count(
                sym,
                x,
                s[f"{key}_buf"],
                s[f"{key}_count"],
                s[f"{key}_mean"],
                s[f"{key}_m2"],
                c.min_periods,
                m,
                sd,
                z,
            )
            out[f"{prefix}_mean"], out[f"{prefix}_std"], out[f"z_{prefix}"] = m, sd, z

        m, sd, z = new(), new(), new()
        roll_k.rolling_time(
            sym,
            ts,
            price,
            int(c.time_window_s * 1e9),
            s["t_vals"],
            s["t_tss"],
            s["t_head"],
            s["t_size"],
            s["t_mean"],
            s["t_m2"],
            s["t_ops"],
            c.min_periods,
            m,
            sd,
            z,
        )
        out["z_price_time"] = z

        q = np.empty((n, len(self._qs)))
        q_k.rolling_quantiles(
            sym, ret, self._qs, s["qr_ring"], s["qr_sorted"], s["qr_count"], c.min_periods, q
        )
        out.update(ret_q1=q[:, 0], ret_median=q[:, 1], ret_q3=q[:, 2])
        qv = np.empty((n, len(self._qs)))
        q_k.rolling_quantiles(
            sym, volume, self._qs, s["qv_ring"], s["qv_sorted"], s["qv_count"], c.min_periods, qv
        )
        out.update(
            volume_median=qv[:, 1],
            volume_p95=qv[:, 3],
            volume_p99=qv[:, 4],
            volume_ratio=volume / qv[:, 1],
        )

        # Confidence interval of the mean return over the last ci_window ticks (Student t):
        # an interval wholly above or below zero is a significant drift (a ramp or a crash).
        m, sd, z = new(), new(), new()
        roll_k.rolling_count(
            sym, ret, s["ci_buf"], s["ci_count"], s["ci_mean"], s["ci_m2"], c.min_periods, m, sd, z
        )
        nwin = np.minimum(s["ci_count"][sym], c.ci_window)
        half = self._t_table[np.clip(nwin, 0, c.ci_window)] * sd / np.sqrt(np.maximum(nwin, 1))
        out.update(drift_mean=m, drift_lower=m - half, drift_upper=m + half)

        for h, st in self._horizons:
            ch = new()
            hz_k.change_pct(
                sym,
                ts,
                price,
                int(h * 1e9),
                int(h * 1e9 / c.horizon_buckets),
                st["closes"],
                st["cur"],
                st["first"],
                ch,
            )
            out[f"change_{_label(h)}"] = ch
        vch = new()
        st = self._vol_horizon
        hz_k.change_pct(
            sym, ts, volume, H, H // c.horizon_buckets, st["closes"], st["cur"], st["first"], vch
        )
        out["volume_change_1h"] = vch

        sma, ema, wma, fast, slow = new(), new(), new(), new(), new()
        ma_k.sma(sym, price, s["sma_buf"], s["sma_count"], s["sma_total"], sma)
        ma_k.ema(sym, price, _alpha(c.ema_span), s["ema_val"], s["ema_seen"], ema)
        ma_k.wma(sym, price, np.asarray(c.wma_weights), s["wma_buf"], s["wma_count"], wma)
        ma_k.ema(sym, price, _alpha(c.fast_span), s["fast_val"], s["fast_seen"], fast)
        ma_k.ema(sym, price, _alpha(c.slow_span), s["slow_val"], s["slow_seen"], slow)
        cross = np.empty(n, np.int8)
        tr_k.crossover(sym, fast, slow, c.min_gap, s["x_side"], s["x_hist"], s["x_count"], cross)
        cpos, cneg, calarm = new(), new(), np.empty(n, np.int8)
        tr_k.cusum(
            sym,
            out["z_ret"],
            c.cusum_drift,
            c.cusum_threshold,
            s["cu_pos"],
            s["cu_neg"],
            cpos,
            cneg,
            calarm,
        )
        out.update(
            sma=sma,
            ema=ema,
            wma=wma,
            ma_fast=fast,
            ma_slow=slow,
            crossover=cross.astype(np.float64),
            cusum_pos=cpos,
            cusum_neg=cneg,
            cusum_alarm=calarm.astype(np.float64),
        )

        dev = np.column_stack([out["z_ret"], out["z_logvol"], np.log(out["vol_ratio"])])
        score = new()
        ens_k.ensemble(
            sym,
            dev,
            1.0 - 1.0 / c.ensemble_ref_ticks,
            1.0 - 1.0 / c.ensemble_recent_ticks,
            c.min_periods,
            c.ensemble_damp,
            s["en_ref"],
            s["en_recent"],
            s["en_seen"],
            score,
        )
        out["ensemble"] = score
        return out

    # -- anomalies --------------------------------------------------------------------------

    def _anomalies(self, b: TickBatch, cols: dict[str, np.ndarray]) -> AnomalyBatch:
        """Anomaly events: one per episode (run of hits) per symbol and detector."""
        c = self.config
        z_ret, z_vol, ret = cols["z_ret"], cols["z_logvol"], cols["ret"]
        q1, q3 = cols["ret_q1"], cols["ret_q3"]
        iqr = q3 - q1
        with np.errstate(invalid="ignore"):
            checks = [
                (z_ret >= c.z_threshold, "price_spike", "zscore"),
                (z_ret <= -c.z_threshold, "price_drop", "zscore"),
                (ret > q3 + c.iqr_k * iqr, "price_spike", "iqr"),
                (ret < q1 - c.iqr_k * iqr, "price_drop", "iqr"),
                (cols["drift_lower"] > 0.0, "price_spike", "ci"),
                (cols["drift_upper"] < 0.0, "price_drop", "ci"),
                (z_vol >= c.z_threshold, "volume_spike", "zscore"),
                (z_vol <= -c.z_threshold, "volume_drop", "zscore"),
                (cols["vol_ratio"] >= c.vol_ratio_threshold, "volatility", "ewma"),
            ]
        parts = []
        active = self.state["active"]
        for slot, (hit, kind, method) in enumerate(checks):
            if hit.any() or active[:, slot].any():
                starts = np.empty(len(hit), np.bool_)
                episode_starts(b.symbol, hit, active[:, slot], starts)  # moves `active` on
                idx = np.flatnonzero(starts)
                if len(idx):
                    parts.append(self._detail(b, cols, idx, kind, method))
        for col, method in (("crossover", "ewma"), ("cusum_alarm", "cusum")):
            idx = np.flatnonzero(cols[col] != 0)
            if len(idx):
                parts.append(self._detail(b, cols, idx, "trend_reversal", method))
        idx = np.flatnonzero(cols["ensemble"] >= c.ensemble_threshold)
        if len(idx):
            parts.append(self._detail(b, cols, idx, "", "ensemble"))
        return AnomalyBatch.concat(parts)

    def _detail(
        self, b: TickBatch, cols: dict[str, np.ndarray], idx: np.ndarray, kind: str, method: str
    ) -> AnomalyBatch:
        """Score, expectation and band of the anomalies at ``idx`` (few rows: cheap)."""
        c = self.config
        price, volume = b.price[idx], b.volume[idx]
        ret = np.nan_to_num(cols["ret"][idx])
        prev = price * np.exp(-ret)
        window = c.window
        if method == "zscore" and kind.startswith("price"):
            dev = cols["z_ret"][idx]
            mu, sd = cols["ret_mean"][idx], cols["ret_std"][idx]
            expected, lower, upper = (
                prev * np.exp(mu),
                prev * np.exp(mu - c.z_threshold * sd),
                prev * np.exp(mu + c.z_threshold * sd),
            )
        elif method == "zscore":
            dev = cols["z_logvol"][idx]
            mu, sd = cols["logvol_mean"][idx], cols["logvol_std"][idx]
            expected, lower, upper = (
                np.exp(mu),
                np.exp(mu - c.z_threshold * sd),
                np.exp(mu + c.z_threshold * sd),
            )
            price = volume
        elif method == "iqr":
            q1, q3 = cols["ret_q1"][idx], cols["ret_q3"][idx]
            iqr = np.where(q3 > q1, q3 - q1, np.nan)
            dev = np.where(ret > q3, (ret - q3) / iqr, (ret - q1) / iqr)
            expected = prev * np.exp(cols["ret_median"][idx])
            lower, upper = prev * np.exp(q1 - c.iqr_k * iqr), prev * np.exp(q3 + c.iqr_k * iqr)
        elif method == "ci":
            lo, hi = cols["drift_lower"][idx], cols["drift_upper"][idx]
            mid, half = (lo + hi) / 2.0, (hi - lo) / 2.0
            dev = mid / np.where(half > 0, half, np.nan) * self._t_table[-1]
            n = c.ci_window
            expected, lower, upper = prev, prev * np.exp(n * lo), prev * np.exp(n * hi)
            window = n
        elif method == "ewma" and kind == "volatility":
            dev = cols["vol_ratio"][idx]
            price, expected = cols["ewma_vol"][idx] * dev, cols["ewma_vol"][idx]
            lower, upper = np.zeros(len(idx)), expected * c.vol_ratio_threshold
            window = c.ewma_span
        elif method in ("ewma", "cusum"):
            sign = np.sign(cols["crossover" if method == "ewma" else "cusum_alarm"][idx])
            dev = sign * c.severity.high  # a confirmed reversal is a high-severity event
            expected = cols["ma_slow"][idx]
            lower = upper = expected
            window = c.slow_span
        else:  # ensemble: the strongest method names the type
            score = cols["ensemble"][idx]
            zr, zv = np.nan_to_num(cols["z_ret"][idx]), np.nan_to_num(cols["z_logvol"][idx])
            lvr = np.log(np.nan_to_num(cols["vol_ratio"][idx], nan=1.0))
            strongest = np.argmax(np.abs(np.column_stack([zr, zv, lvr])), axis=1)
            types = np.select(
                [strongest == 0, strongest == 1],
                [
                    np.where(zr >= 0, _T["price_spike"], _T["price_drop"]),
                    np.where(zv >= 0, _T["volume_spike"], _T["volume_drop"]),
                ],
                _T["volatility"],
            )
            sev = np.where(score >= 0.99, 3, np.where(score >= 0.95, 2, 1)).astype(np.int8)
            return AnomalyBatch.build(
                index=idx,
                symbol=b.symbol[idx],
                ts=b.ts[idx],
                type=types,
                method=_M["ensemble"],
                score=score,
                severity=sev,
                confidence=score,
                observed=price,
                expected=prev,
                lower=prev,
                upper=prev,
                window=c.ensemble_ref_ticks,
            )
        d = np.nan_to_num(dev)
        return AnomalyBatch.build(
            index=idx,
            symbol=b.symbol[idx],
            ts=b.ts[idx],
            type=_T[kind],
            method=_M[method],
            score=d,
            severity=c.severity.grade(d),
            confidence=confidence(d),
            observed=price,
            expected=expected,
            lower=lower,
            upper=upper,
            window=window,
        )


def _label(seconds: float) -> str:
    return f"{int(seconds // 3600)}h" if seconds % 3600 == 0 else f"{int(seconds)}s"
