"""Benchmark inputs: simulated ticks written once as Parquet and CSV (cached by size and seed)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.sources.simulator import Simulator

CACHE = Path(__file__).resolve().parent / "results" / "tmp"
T0 = 1_700_000_000_000_000_000


def simulated(n_ticks: int, seed: int = 7) -> tuple[TickBatch, SymbolTable]:
    """``n_ticks`` ticks of the ten seed symbols, one tick per symbol every 10 ms."""
    syms = SymbolTable()
    sim = Simulator(seed=seed, step_s=0.01, start_ns=T0, symbol_table=syms, event_rate_per_hour=2.0)
    return sim.steps(n_ticks // len(sim.names)), syms


def _table(batch: TickBatch, syms: SymbolTable) -> pa.Table:
    names = pa.array(syms.names())
    return pa.table(
        {
            "timestamp": pa.array(batch.ts, pa.timestamp("ns", tz="UTC")),
            "symbol": pa.DictionaryArray.from_arrays(pa.array(batch.symbol), names),
            "price": batch.price,
            "volume": batch.volume,
            "side": batch.side,
        }
    )


def parquet_file(n_ticks: int) -> Path:
    path = CACHE / f"ticks_{n_ticks}.parquet"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        batch, syms = simulated(n_ticks)
        pq.write_table(_table(batch, syms), path, row_group_size=1 << 20)
    return path


def csv_file(n_ticks: int) -> Path:
    path = CACHE / f"ticks_{n_ticks}.csv"
    if not path.exists():
        CACHE.mkdir(parents=True, exist_ok=True)
        batch, syms = simulated(n_ticks)
        table = _table(batch, syms)
        table = table.set_column(1, "symbol", table.column("symbol").cast(pa.string()))
        pcsv.write_csv(table, path)
    return path


def ticks_array(n_ticks: int) -> tuple[TickBatch, SymbolTable]:
    batch, syms = simulated(n_ticks)
    assert np.all(batch.price > 0)
    return batch, syms
