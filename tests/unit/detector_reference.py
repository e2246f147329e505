"""The detector set computed the slow way, one column at a time, by the separate batch kernels
(each tested against pandas or numpy in test_kernels.py): the oracle the fused pass must match.
"""

from __future__ import annotations

import numpy as np
from scipy import stats as sps
from scipy.special import erf

from rxpipe.kernels import ensemble as ens_k
from rxpipe.kernels import horizon as hz_k
from rxpipe.kernels import moving as ma_k
from rxpipe.kernels import quantiles as q_k
from rxpipe.kernels import rolling as roll_k
from rxpipe.kernels import trend as tr_k
from rxpipe.kernels import volatility as vol_k
from rxpipe.model import TickBatch
from rxpipe.operators.detectors import DetectorConfig
from rxpipe.signals import ANOMALY_TYPES, METHODS

H = 3_600_000_000_000


def _alpha(span: int) -> float:
    return 2.0 / (span + 1.0)


def _zeros(n_sym: int, *shape: int, dtype=np.float64, fill=0) -> np.ndarray:
    return np.full((n_sym, *shape), fill, dtype)


class Reference:
    """``signals(batch)`` and ``anomalies(batch, cols)`` over a stream, state per column."""

    def __init__(self, c: DetectorConfig, n_sym: int = 16) -> None:
        self.c, k = c, n_sym
        self.t_table = sps.t.ppf(
            0.5 + c.ci_level / 2.0, np.maximum(np.arange(c.ci_window + 1) - 1, 1)
        )
        self.ewma = {
            span: (_zeros(k), _zeros(k), _zeros(k, dtype=np.int64, fill=-1))
            for span in (c.ewma_span, c.vol_short_span, c.vol_long_span)
        }
        self.windows = {
            key: roll_k.count_state(k, c.ci_window if key == "ci" else c.window)
            for key in ("ret", "price", "logvol", "ci")
        }
        self.time = roll_k.time_state(k, c.time_capacity)
        self.quant = {key: q_k.state(k, c.window) for key in ("ret", "volume")}
        self.horizons = [hz_k.state(k, c.horizon_buckets) for _ in range(4)]
        self.sma = (_zeros(k, c.sma_window), _zeros(k, dtype=np.int64), _zeros(k))
        self.emas = {a: (_zeros(k), _zeros(k, dtype=np.bool_)) for a in ("ema", "fast", "slow")}
        self.wma = (_zeros(k, len(c.wma_weights)), _zeros(k, dtype=np.int64))
        self.cross = (_zeros(k, dtype=np.int8), _zeros(k, c.slope_lag), _zeros(k, dtype=np.int64))
        self.cusum = (_zeros(k), _zeros(k))
        self.ens = (_zeros(k, 3), _zeros(k), _zeros(k, dtype=np.int64))
        self.active = _zeros(k, 9, dtype=np.bool_)

    def signals(self, b: TickBatch) -> dict[str, np.ndarray]:
        c, n, sym = self.c, len(b), b.symbol
        out: dict[str, np.ndarray] = {}
        vols = {}
        for span, st in self.ewma.items():
            ret, vol, z = np.empty(n), np.empty(n), np.empty(n)
            minp = c.min_periods if span == c.ewma_span else 1
            vol_k.ewma_volatility(sym, b.price, _alpha(span), minp, *st, ret, vol, z)
            vols[span] = (ret, vol, z)
        ret, vol, ewz = vols[c.ewma_span]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = vols[c.vol_short_span][1] / vols[c.vol_long_span][1]
            logvol = np.log(b.volume)
        out.update(ret=ret, ewma_vol=vol, ewma_z=ewz, vol_ratio=ratio)
        for key, x in (("ret", ret), ("price", b.price), ("logvol", logvol)):
            m, sd, z = np.empty(n), np.empty(n), np.empty(n)
            st = self.windows[key]
            roll_k.rolling_count(
                sym, x, st["buf"], st["count"], st["mean"], st["m2"], c.min_periods, m, sd, z
            )
            out[f"{key}_mean"], out[f"{key}_std"], out[f"z_{key}"] = m, sd, z
        m, sd, z = np.empty(n), np.empty(n), np.empty(n)
        t = self.time
        roll_k.rolling_time(
            sym, b.ts, b.price, int(c.time_window_s * 1e9), t["vals"], t["tss"], t["head"],
            t["size"], t["mean"], t["m2"], t["ops"], c.min_periods, m, sd, z,
        )  # fmt: skip
        out["z_price_time"] = z
        for key, x, names in (
            ("ret", ret, ("ret_q1", "ret_median", "ret_q3")),
            ("volume", b.volume, ("volume_median", "volume_p95", "volume_p99")),
        ):
            qs = np.array([0.25, 0.5, 0.75] if key == "ret" else [0.5, 0.95, 0.99])
            q = np.empty((n, 3))
            st = self.quant[key]
            q_k.rolling_quantiles(
                sym, x, qs, st["ring"], st["sorted"], st["count"], c.min_periods, q
            )
            out.update(zip(names, q.T, strict=True))
        with np.errstate(divide="ignore", invalid="ignore"):
            out["volume_ratio"] = b.volume / out["volume_median"]
        self._drift(b, ret, out)
        self._changes(b, out)
        self._averages(b, out)
        self._ensemble(b, out)
        return out

    def _drift(self, b: TickBatch, ret: np.ndarray, out: dict[str, np.ndarray]) -> None:
        c, n, st = self.c, len(b), self.windows["ci"]
        nwin = np.empty(n, np.int64)
        m, sd, z = np.empty(n), np.empty(n), np.empty(n)
        for i in range(n):  # the window's size before each tick
            nwin[i] = min(st["count"][b.symbol[i]], c.ci_window)
            roll_k.rolling_count(
                b.symbol[i : i + 1], ret[i : i + 1], st["buf"], st["count"], st["mean"],
                st["m2"], c.min_periods, m[i : i + 1], sd[i : i + 1], z[i : i + 1],
            )  # fmt: skip
        half = self.t_table[nwin] * sd / np.sqrt(np.maximum(nwin, 1))
        out.update(drift_mean=m, drift_lower=m - half, drift_upper=m + half)

    def _changes(self, b: TickBatch, out: dict[str, np.ndarray]) -> None:
        c = self.c
        names = [f"change_{int(h // 3600)}h" for h in c.horizons_s] + ["volume_change_1h"]
        seconds = [*c.horizons_s, H / 1e9]
        for k, (name, h) in enumerate(zip(names, seconds, strict=True)):
            res = round(h * 1e9) // c.horizon_buckets
            x = b.price if k < 3 else b.volume
            st, ch = self.horizons[k], np.empty(len(b))
            hz_k.change_pct(
                b.symbol, b.ts, x, res * c.horizon_buckets, res, st["closes"], st["cur"],
                st["first"], st["refs"], ch,
            )  # fmt: skip
            out[name] = ch

    def _averages(self, b: TickBatch, out: dict[str, np.ndarray]) -> None:
        c, n, sym, p = self.c, len(b), b.symbol, b.price
        for name, span in (("ema", c.ema_span), ("fast", c.fast_span), ("slow", c.slow_span)):
            col = np.empty(n)
            ma_k.ema(sym, p, _alpha(span), *self.emas[name], col)
            out["ma_" + name if name != "ema" else "ema"] = col
        out["sma"], out["wma"] = np.empty(n), np.empty(n)
        ma_k.sma(sym, p, *self.sma, out["sma"])
        ma_k.wma(sym, p, np.asarray(c.wma_weights), *self.wma, out["wma"])
        cross = np.empty(n, np.int8)
        tr_k.crossover(sym, out["ma_fast"], out["ma_slow"], c.min_gap, *self.cross, cross)
        out["crossover"] = cross.astype(np.float64)

    def _ensemble(self, b: TickBatch, out: dict[str, np.ndarray]) -> None:
        c, n, sym = self.c, len(b), b.symbol
        pos, neg, alarm = np.empty(n), np.empty(n), np.empty(n, np.int8)
        tr_k.cusum(
            sym, out["z_ret"], c.cusum_drift, c.cusum_threshold, *self.cusum, pos, neg, alarm
        )
        out.update(cusum_pos=pos, cusum_neg=neg, cusum_alarm=alarm.astype(np.float64))
        with np.errstate(divide="ignore", invalid="ignore"):
            dev = np.column_stack([out["z_ret"], out["z_logvol"], np.log(out["vol_ratio"])])
        score = np.empty(n)
        ens_k.ensemble(
            sym, dev, 1.0 - 1.0 / c.ensemble_ref_ticks, 1.0 - 1.0 / c.ensemble_recent_ticks,
            c.min_periods, c.ensemble_damp, *self.ens, score,
        )  # fmt: skip
        out["ensemble"] = score

    def anomalies(self, b: TickBatch, cols: dict[str, np.ndarray]) -> list[tuple]:
        """``(index, type, method, score, severity, expected, lower, upper)`` sorted by index and
        method, for the tests each method runs (the ensemble's type and band aside)."""
        c = self.c
        z_ret, z_vol, ret = cols["z_ret"], cols["z_logvol"], cols["ret"]
        q1, q3 = cols["ret_q1"], cols["ret_q3"]
        with np.errstate(invalid="ignore"):
            checks = [
                (z_ret >= c.z_threshold, "price_spike", "zscore"),
                (z_ret <= -c.z_threshold, "price_drop", "zscore"),
                (z_vol >= c.z_threshold, "volume_spike", "zscore"),
                (z_vol <= -c.z_threshold, "volume_drop", "zscore"),
                (ret > q3 + c.iqr_k * (q3 - q1), "price_spike", "iqr"),
                (ret < q1 - c.iqr_k * (q3 - q1), "price_drop", "iqr"),
                (cols["drift_lower"] > 0.0, "price_spike", "ci"),
                (cols["drift_upper"] < 0.0, "price_drop", "ci"),
                (cols["vol_ratio"] >= c.vol_ratio_threshold, "volatility", "ewma"),
            ]
        rows = []
        for slot, (hit, kind, method) in enumerate(checks):
            for i in np.flatnonzero(hit):  # the first tick of each run of hits of a symbol
                s = b.symbol[i]
                prev = np.flatnonzero(b.symbol[:i] == s)
                was = hit[prev[-1]] if len(prev) else self.active[s, slot]
                if not was:
                    rows.append(self._row(b, cols, i, kind, method))
            for s in np.unique(b.symbol):
                self.active[s, slot] = hit[np.flatnonzero(b.symbol == s)[-1]]
        for col, method in (("crossover", "ewma"), ("cusum_alarm", "cusum")):
            for i in np.flatnonzero(cols[col] != 0):
                rows.append(self._row(b, cols, i, "trend_reversal", method))
        for i in np.flatnonzero(cols["ensemble"] >= c.ensemble_threshold):
            rows.append((i, None, METHODS.index("ensemble"), cols["ensemble"][i]))
        return sorted(rows, key=lambda r: (r[0], r[2]))

    def _row(self, b: TickBatch, cols: dict[str, np.ndarray], i: int, kind: str, method: str):
        c = self.c
        prev = b.price[i] * np.exp(-np.nan_to_num(cols["ret"][i]))
        if method == "zscore" and kind.startswith("price"):
            dev, mu, sd = cols["z_ret"][i], cols["ret_mean"][i], cols["ret_std"][i]
            band = (prev * np.exp(mu - c.z_threshold * sd), prev * np.exp(mu + c.z_threshold * sd))
        elif method == "zscore":
            dev, mu, sd = cols["z_logvol"][i], cols["logvol_mean"][i], cols["logvol_std"][i]
            band = (np.exp(mu - c.z_threshold * sd), np.exp(mu + c.z_threshold * sd))
        elif method == "iqr":
            r, q1, q3 = np.nan_to_num(cols["ret"][i]), cols["ret_q1"][i], cols["ret_q3"][i]
            iqr = q3 - q1 if q3 > q1 else np.nan
            dev = (r - q3) / iqr if r > q3 else (r - q1) / iqr
            band = (prev * np.exp(q1 - c.iqr_k * iqr), prev * np.exp(q3 + c.iqr_k * iqr))
        elif method == "ci":
            lo, hi = cols["drift_lower"][i], cols["drift_upper"][i]
            half = (hi - lo) / 2.0
            dev = (lo + hi) / 2.0 / (half if half > 0 else np.nan) * self.t_table[-1]
            band = (prev * np.exp(c.ci_window * lo), prev * np.exp(c.ci_window * hi))
        elif kind == "volatility":
            dev = cols["vol_ratio"][i]
            band = (0.0, cols["ewma_vol"][i] * c.vol_ratio_threshold)
        else:
            dev = np.sign(cols["crossover" if method == "ewma" else "cusum_alarm"][i]) * 3.0
            band = (cols["ma_slow"][i], cols["ma_slow"][i])
        d = float(np.nan_to_num(dev))
        sev = int(abs(d) >= 2) + int(abs(d) >= 3) + int(abs(d) >= 4)
        conf = float(erf(abs(d) / np.sqrt(2.0)))
        return (i, ANOMALY_TYPES.index(kind), METHODS.index(method), d, sev, conf, *band)
