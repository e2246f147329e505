"""What detectors produce: signal columns aligned with ticks, anomaly events, rollup rows.

``SignalBatch`` carries the ticks it was computed from, one numpy column per signal, the
anomalies found in the batch (columnar, turned into :class:`Anomaly` events on demand) and the
rollup rows whose buckets closed in the batch.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from rxpipe.kernels.rollup import COLUMNS as ROLLUP_COLUMNS
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.timestamps import iso

ANOMALY_TYPES = (
    "price_spike",
    "price_drop",
    "volume_spike",
    "volume_drop",
    "volatility",
    "trend_reversal",
)
METHODS = ("zscore", "iqr", "ci", "ewma", "cusum", "ensemble")
SEVERITIES = ("low", "medium", "high", "critical")

ANOMALY_COLUMNS: dict[str, npt.DTypeLike] = {
    "index": np.int64,
    "symbol": np.int32,
    "ts": np.int64,
    "type": np.int8,
    "method": np.int8,
    "score": np.float64,
    "severity": np.int8,
    "confidence": np.float64,
    "observed": np.float64,
    "expected": np.float64,
    "lower": np.float64,
    "upper": np.float64,
    "window": np.int64,
}


@dataclass(frozen=True, slots=True)
class Anomaly:
    """One anomaly: what, where, how sure, and against what expectation."""

    symbol: str
    ts: int  # ns since the epoch, UTC
    type: str
    method: str
    score: float  # the method's deviation (|z|, IQR units, ensemble score, ...)
    severity: str
    confidence: float  # in [0, 1]
    observed: float
    expected: float
    lower: float
    upper: float
    window: int

    def to_json(self) -> dict[str, Any]:
        """The seed's field names (``current_value``, ``expected_value``, ``deviation``) and ours."""
        return {
            "symbol": self.symbol,
            "type": self.type,
            "method": self.method,
            "severity": self.severity,
            "current_value": self.observed,
            "expected_value": self.expected,
            "deviation": self.score,
            "confidence": self.confidence,
            "timestamp": iso(self.ts),
            "ts": self.ts,
            "window": self.window,
            "lower": self.lower,
            "upper": self.upper,
        }


@dataclass(frozen=True, slots=True)
class AnomalyBatch:
    """Anomalies as columns; ``index`` points into the batch's ticks."""

    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.columns["index"])

    @classmethod
    @functools.cache
    def empty(cls) -> AnomalyBatch:
        """The empty batch (one shared, read-only instance: batches are never mutated)."""
        cols = {k: np.empty(0, dt) for k, dt in ANOMALY_COLUMNS.items()}
        for v in cols.values():
            v.flags.writeable = False
        return cls(cols)

    @classmethod
    def build(cls, **cols: Any) -> AnomalyBatch:
        n = len(cols["index"])
        out = {}
        for k, dt in ANOMALY_COLUMNS.items():
            v = np.asarray(cols[k], dt)
            out[k] = np.full(n, v, dt) if v.ndim == 0 else v
        return cls(out)

    @staticmethod
    def concat(parts: list[AnomalyBatch]) -> AnomalyBatch:
        parts = [p for p in parts if len(p)]
        if not parts:
            return AnomalyBatch.empty()
        if len(parts) == 1:
            return parts[0]
        merged = {k: np.concatenate([p.columns[k] for p in parts]) for k in ANOMALY_COLUMNS}
        order = np.lexsort((merged["method"], merged["index"]))
        return AnomalyBatch({k: v[order] for k, v in merged.items()})

    def events(self, symbols: SymbolTable) -> list[Anomaly]:
        c = self.columns
        return [
            Anomaly(
                symbols.name(int(c["symbol"][i])),
                int(c["ts"][i]),
                ANOMALY_TYPES[c["type"][i]],
                METHODS[c["method"][i]],
                float(c["score"][i]),
                SEVERITIES[c["severity"][i]],
                float(c["confidence"][i]),
                float(c["observed"][i]),
                float(c["expected"][i]),
                float(c["lower"][i]),
                float(c["upper"][i]),
                int(c["window"][i]),
            )
            for i in range(len(self))
        ]


def window_label(seconds: float) -> str:
    """``60`` -> ``1m``, ``14400`` -> ``4h``, ``86400`` -> ``1d``."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


@dataclass(frozen=True, slots=True)
class Rollup:
    """One closed bucket of one symbol's ticks (prices unless named volume)."""

    symbol: str
    interval_s: float
    start: int  # ns
    count: int
    sum: float
    min: float
    max: float
    mean: float
    open: float
    close: float
    vwap: float
    median: float
    std: float
    cv: float
    p95: float
    p99: float
    range: float
    volume: float
    volume_min: float
    volume_max: float
    volume_range: float

    def to_json(self) -> dict[str, Any]:
        """The seed's Rollup fields (``average``, ``std_dev``, ``percentile_95`` ...) and ours."""

        def num(v: float) -> float | None:
            return v if np.isfinite(v) else None

        return {
            "symbol": self.symbol,
            "type": "price",
            "window": window_label(self.interval_s),
            "start_time": iso(self.start),
            "end_time": iso(self.start + int(self.interval_s * 1e9)),
            "count": self.count,
            "sum": num(self.sum),
            "min": num(self.min),
            "max": num(self.max),
            "average": num(self.mean),
            "median": num(self.median),
            "std_dev": num(self.std),
            "percentile_95": num(self.p95),
            "percentile_99": num(self.p99),
            "labels": {},
            "open": num(self.open),
            "close": num(self.close),
            "vwap": num(self.vwap),
            "cv": num(self.cv),
            "price_range": num(self.range),
            "volume": num(self.volume),
            "volume_min": num(self.volume_min),
            "volume_max": num(self.volume_max),
            "volume_range": num(self.volume_range),
        }


# The rollup kernel's columns after symbol and start: count, sum, min, max, mean, open, ...
ROLLUP_FIELDS: tuple[str, ...] = ROLLUP_COLUMNS[2:]


@dataclass(frozen=True, slots=True)
class RollupBatch:
    """Closed rollup buckets: one row per (symbol, interval, bucket), numpy columns."""

    interval: np.ndarray  # int64 ns, per row
    columns: dict[str, np.ndarray]

    def __len__(self) -> int:
        return len(self.interval)

    @classmethod
    @functools.cache
    def empty(cls) -> RollupBatch:
        """The empty batch (one shared, read-only instance: batches are never mutated)."""
        from rxpipe.kernels.rollup import COLUMNS

        cols = {k: np.empty(0) for k in COLUMNS}
        for v in cols.values():
            v.flags.writeable = False
        return cls(np.empty(0, np.int64), cols)

    def events(self, symbols: SymbolTable) -> list[Rollup]:
        c = self.columns
        return [
            Rollup(
                symbols.name(int(c["symbol"][i])),
                int(self.interval[i]) / 1e9,
                int(c["start"][i]),
                int(c["count"][i]),
                *(float(c[f][i]) for f in ROLLUP_FIELDS[1:]),
            )
            for i in range(len(self))
        ]

    @staticmethod
    def concat(parts: list[RollupBatch]) -> RollupBatch:
        parts = [p for p in parts if len(p)]
        if not parts:
            return RollupBatch.empty()
        return RollupBatch(
            np.concatenate([p.interval for p in parts]),
            {k: np.concatenate([p.columns[k] for p in parts]) for k in parts[0].columns},
        )


@dataclass(frozen=True, slots=True)
class SignalBatch:
    """Signals computed over a tick batch, aligned row for row with ``ticks``.

    ``series`` names the columns that are series of the rule language, by the rules' canonical
    text (``"ema(price, 12.0)": "ma_fast"``): a rule reads them instead of computing its own."""

    ticks: TickBatch
    columns: dict[str, np.ndarray]
    anomalies: AnomalyBatch = field(default_factory=AnomalyBatch.empty)
    rollups: RollupBatch = field(default_factory=RollupBatch.empty)
    series: dict[str, str] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.ticks)

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]
