"""Spine throughput: replay from Parquet through the pipeline, without and with storage.

Also: CSV parsing on its own, and a replay of the real recorded candles. Each figure is the
median of several runs after one warm-up run (which pays numba's compile and cache loads).
"""

from __future__ import annotations

import shutil
import statistics
import time
from pathlib import Path
from typing import Any

from bench.data import CACHE, csv_file, parquet_file
from rxpipe.config import Settings
from rxpipe.model import SymbolTable
from rxpipe.runtime import Runtime
from rxpipe.sources.tickfile import read_ticks
from rxpipe.storage.embedded import EmbeddedPostgres

MARKET = Path(__file__).resolve().parents[2] / "shared" / "data" / "market"


def _replay(settings: Settings, paths: list[Path], *, storage: bool) -> tuple[int, float]:
    rt = Runtime(settings)
    if storage:
        rt.open_storage()
    replay = rt.make_replay(list(paths), speed=None)
    t0 = time.perf_counter()
    pipeline = rt.build(replay.observable(), source_name="bench")
    rt.start()  # as `rxpipe replay` does
    pipeline.wait()
    rt.stop(600)
    seconds = time.perf_counter() - t0
    if pipeline.error:
        raise pipeline.error
    done = rt.tick_sink.stored if rt.tick_sink else pipeline.stats.ticks_processed
    return done, seconds


def _truncate(settings: Settings) -> None:
    rt = Runtime(settings)
    db = rt.open_storage()
    assert db is not None
    with db.connect() as conn:
        conn.execute("TRUNCATE ticks, tick_watermarks")
        conn.execute("CHECKPOINT")


def _runs(name: str, fn: Any, runs: int, before: Any = None) -> dict[str, Any]:
    fn()  # warm-up
    rates, seconds = [], []
    for _ in range(runs):
        if before:
            before()
        ticks, s = fn()
        rates.append(ticks / s)
        seconds.append(s)
    result = {
        "name": name,
        "ticks": ticks,
        "ticks_per_s": round(statistics.median(rates)),
        "seconds": round(statistics.median(seconds), 4),
        "runs_ticks_per_s": [round(r) for r in rates],
    }
    print(f"  {name:<48} {result['ticks_per_s']:>14,.0f} ticks/s")
    return result


def run(n_ticks: int = 5_000_000, runs: int = 3) -> dict[str, Any]:
    parquet, csv = parquet_file(n_ticks), csv_file(n_ticks)
    data_dir = CACHE / "spine-db"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    # The spine on its own (validation, batching, storage); the detectors have their own suite,
    # and one row here shows them inside the pipeline.
    bare = Settings.load(
        env={}, data_dir=data_dir, **{"storage.enabled": False, "detectors.enabled": False}
    )
    stored = Settings.load(env={}, data_dir=data_dir, **{"detectors.enabled": False})
    detecting = Settings.load(env={}, data_dir=data_dir, **{"storage.enabled": False})
    results = [
        _runs(
            "replay parquet -> pipeline (no storage)",
            lambda: _replay(bare, [parquet], storage=False),
            runs,
        ),
        _runs(
            "replay parquet -> pipeline -> embedded PostgreSQL",
            lambda: _replay(stored, [parquet], storage=True),
            runs,
            before=lambda: _truncate(stored),
        ),
        _runs("CSV parsing alone (read_ticks)", lambda: _parse(csv), runs),
        _runs(
            "replay CSV -> pipeline (no storage)", lambda: _replay(bare, [csv], storage=False), runs
        ),
    ]
    results.append(
        _runs(
            "replay parquet -> pipeline + full detector set (no storage)",
            lambda: _replay(detecting, [parquet], storage=False),
            1,
        )
    )
    market = sorted((MARKET / "binance_1m_2023-03-16_2023-05-01").glob("*.csv.gz"))
    if market:
        results.append(
            _runs(
                "replay 8 real candle files (.csv.gz, merged)",
                lambda: _replay(bare, market, storage=False),
                runs,
            )
        )
    EmbeddedPostgres(data_dir).stop()
    shutil.rmtree(data_dir, ignore_errors=True)
    return {"benchmark": "spine", "n_ticks": n_ticks, "runs": runs, "results": results}


def _parse(path: Path) -> tuple[int, float]:
    t0 = time.perf_counter()
    cols = read_ticks(path, SymbolTable())
    return len(cols), time.perf_counter() - t0
