"""Replay as an Observable: merge order, pacing, and errors that do not stop the stream."""

import time
from pathlib import Path

import numpy as np
import pytest
from reactivex import operators as ops

from rxpipe.errors import InputError
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.sources.replay import Replay, parse_speed

BASE_S = 1_679_004_900  # realistic epoch: times are told apart by magnitude


def candles(path: Path, start_s: int, n: int, step_s: int = 60) -> Path:
    rows = [f"{(BASE_S + start_s + i * step_s) * 1000},1,1,1,{10 + i},1" for i in range(n)]
    path.write_text("\n".join(rows) + "\n")
    return path


def collect(replay: Replay, timeout: float = 10) -> TickBatch:
    batches = replay.observable().pipe(ops.to_list(), ops.timeout(timeout)).run()
    return TickBatch.concat(batches)


def test_files_merge_in_time_order_each_its_own_source(tmp_path: Path) -> None:
    a = candles(tmp_path / "AAAUSDT.csv", 0, 5)
    b = candles(tmp_path / "BBBUSDT.csv", 30, 5)
    syms, srcs = SymbolTable(), SymbolTable()
    out = collect(Replay([a, b], symbols=syms, sources=srcs, batch_ticks=3))
    assert len(out) == 10 and np.all(np.diff(out.ts) > 0)
    assert [syms.name(i) for i in out.symbol[:4]] == ["AAAUSDT", "BBBUSDT", "AAAUSDT", "BBBUSDT"]
    assert sorted(srcs.names()) == ["replay:AAAUSDT.csv", "replay:BBBUSDT.csv"]
    assert out.seq[out.symbol == syms.id("AAAUSDT")].tolist() == [1, 2, 3, 4, 5]  # file lines


def test_batches_respect_the_size_limit(tmp_path: Path) -> None:
    f = candles(tmp_path / "AAAUSDT.csv", 0, 100)
    sizes = [
        len(b)
        for b in Replay([f], symbols=SymbolTable(), sources=SymbolTable(), batch_ticks=16)
        .observable()
        .pipe(ops.to_list())
        .run()
    ]
    assert sum(sizes) == 100 and max(sizes) == 16


def test_speed_paces_the_replay(tmp_path: Path) -> None:
    # 11 candles one second apart = 10 s of file time; at 20x that is 0.5 s of wall time.
    f = candles(tmp_path / "AAAUSDT.csv", 0, 11, step_s=1)
    t0 = time.monotonic()
    out = collect(Replay([f], symbols=SymbolTable(), sources=SymbolTable(), speed=20.0))
    elapsed = time.monotonic() - t0
    assert len(out) == 11
    assert 0.45 <= elapsed < 3.0
    t0 = time.monotonic()
    collect(Replay([f], symbols=SymbolTable(), sources=SymbolTable(), speed=None))
    assert time.monotonic() - t0 < 0.45


def test_missing_file_is_an_error_on_the_stream(tmp_path: Path) -> None:
    obs = Replay([tmp_path / "nope.csv"], symbols=SymbolTable(), sources=SymbolTable()).observable()
    with pytest.raises(InputError, match="no such file"):
        obs.pipe(ops.timeout(5)).run()


def test_parse_speed() -> None:
    assert parse_speed("max") is None and parse_speed("2.5") == 2.5
    with pytest.raises(InputError, match="positive"):
        parse_speed("-1")
    with pytest.raises(InputError, match="not 'max' or a positive number"):
        parse_speed("fast")
