"""Notebook use without Rx: the same detectors over a DataFrame or numpy arrays."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.operators.detectors import DetectorConfig, DetectorSet
from rxpipe.operators.validate import TickValidator
from rxpipe.signals import ANOMALY_TYPES, METHODS, SEVERITIES


def _to_ns(ts: Any) -> np.ndarray:
    s = pd.Series(ts)
    if pd.api.types.is_numeric_dtype(s):
        from rxpipe.sources.tickfile import epoch_to_ns

        return epoch_to_ns(s.to_numpy(np.int64))
    return pd.to_datetime(s, utc=True).to_numpy("datetime64[ns]").astype(np.int64)


def _batch(
    data: Any,
    symbols: SymbolTable,
    *,
    timestamp: str,
    symbol: str,
    price: str,
    volume: str,
    default_symbol: str,
) -> tuple[TickBatch, pd.Index]:
    if isinstance(data, pd.DataFrame):
        df = data
    elif isinstance(data, dict):
        df = pd.DataFrame(data)
    else:
        raise TypeError("analyze takes a pandas DataFrame or a dict of arrays")
    if price not in df:
        raise KeyError(f"no {price!r} column; columns are {list(df.columns)}")
    n = len(df)
    ts = (
        _to_ns(df[timestamp])
        if timestamp in df
        else _to_ns(df.index)
        if isinstance(df.index, pd.DatetimeIndex)
        else np.arange(1, n + 1, dtype=np.int64) * 10**9
    )
    sym = (
        symbols.intern_many(df[symbol].astype(str).to_numpy())
        if symbol in df
        else np.full(n, symbols.intern(default_symbol), np.int32)
    )
    vol = df[volume].to_numpy(np.float64) if volume in df else np.ones(n)
    b = TickBatch.from_arrays(
        symbol=sym, ts=ts, price=df[price].to_numpy(np.float64), volume=vol, seq=np.arange(n)
    )
    return b, df.index


def analyze(
    data: Any,
    *,
    config: DetectorConfig | None = None,
    timestamp: str = "timestamp",
    symbol: str = "symbol",
    price: str = "price",
    volume: str = "volume",
) -> pd.DataFrame:
    """Signals and anomalies for every tick of ``data``, as one DataFrame.

    ``data`` is a DataFrame (or a dict of arrays) with a price column and optionally timestamp,
    symbol and volume columns. Ticks the spine would reject (non-finite or non-positive prices,
    negative volumes, timestamps out of order) are left out, as a live stream leaves them out.
    Columns: the ticks, every signal, and ``anomaly`` (the anomaly types found at the tick,
    comma-separated), ``anomaly_methods`` and ``severity`` (the highest). The anomaly events
    themselves are in ``df.attrs["anomalies"]``.

    >>> import numpy as np, pandas as pd
    >>> prices = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 1e-3, 2000)))
    >>> prices[1500] *= 1.05
    >>> df = analyze(pd.DataFrame({"price": prices}))
    >>> "price_spike" in df.loc[1500, "anomaly"], len(df) == 2000
    (True, True)
    """
    symbols = SymbolTable()
    batch, index = _batch(
        data,
        symbols,
        timestamp=timestamp,
        symbol=symbol,
        price=price,
        volume=volume,
        default_symbol="SERIES",
    )
    valid = TickValidator(tolerance_ms=0).update(batch)
    out = DetectorSet(config).update(valid)
    rows = valid.seq
    frame = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(valid.ts, utc=True),
            "symbol": [symbols.name(int(s)) for s in valid.symbol],
            "price": valid.price,
            "volume": valid.volume,
            **out.columns,
        },
        index=index[rows],
    )
    a = out.anomalies.columns
    events = pd.DataFrame(
        {
            "timestamp": pd.to_datetime(a["ts"], utc=True),
            "symbol": [symbols.name(int(s)) for s in a["symbol"]],
            "type": [ANOMALY_TYPES[t] for t in a["type"]],
            "method": [METHODS[m] for m in a["method"]],
            "severity": [SEVERITIES[v] for v in a["severity"]],
            "score": a["score"],
            "confidence": a["confidence"],
            "observed": a["observed"],
            "expected": a["expected"],
            "lower": a["lower"],
            "upper": a["upper"],
        },
        index=index[rows[a["index"]]],
    )
    grouped = events.groupby(level=0)
    frame["anomaly"] = (
        grouped["type"].agg(lambda t: ",".join(sorted(set(t)))).reindex(frame.index).fillna("")
    )
    frame["anomaly_methods"] = (
        grouped["method"].agg(lambda t: ",".join(sorted(set(t)))).reindex(frame.index).fillna("")
    )
    rank = events["severity"].map(SEVERITIES.index)
    frame["severity"] = (
        rank.groupby(level=0)
        .max()
        .map(lambda r: SEVERITIES[int(r)])
        .reindex(frame.index)
        .fillna("")
    )
    frame.attrs["anomalies"] = events
    return frame
