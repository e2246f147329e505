"""Reading tick and candle files: every shape the replay source promises, and bad rows."""

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from rxpipe.errors import InputError
from rxpipe.model import SymbolTable
from rxpipe.sources.tickfile import read_ticks, symbol_from_filename

from ..conftest import MARKET

T0 = 1_679_004_900_000_000_000  # 2023-03-16 22:15:00 UTC in ns
MIN = 60_000_000_000


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_tick_csv(tmp_path: Path) -> None:
    f = write(
        tmp_path / "t.csv",
        "timestamp,symbol,price,volume,side\n"
        "2023-03-16T22:15:00Z,BTCUSDT,24899.5,0.5,buy\n"
        "2023-03-16T22:15:01Z,ETHUSDT,1700.25,2,sell\n"
        "2023-03-16T22:15:02Z,BTCUSDT,24900,0.1,\n",
    )
    syms = SymbolTable()
    cols = read_ticks(f, syms)
    assert [syms.name(i) for i in cols.symbol] == ["BTCUSDT", "ETHUSDT", "BTCUSDT"]
    assert cols.ts.tolist() == [T0, T0 + 10**9, T0 + 2 * 10**9]
    assert cols.price.tolist() == [24899.5, 1700.25, 24900.0]
    assert cols.side.tolist() == [1, -1, 0]
    assert cols.line.tolist() == [2, 3, 4] and cols.errors == []


def test_candles_with_iso_header_tick_at_close(tmp_path: Path) -> None:
    f = write(
        tmp_path / "binanceus_BTCUSD_1m.csv",
        "open_time,open,high,low,close,volume\n"
        "2023-03-16 22:15:00+00:00,1,2,0.5,1.5,10\n"
        "2023-03-16 22:16:00+00:00,1.5,2,1,1.75,20\n",
    )
    syms = SymbolTable()
    cols = read_ticks(f, syms)
    assert [syms.name(i) for i in cols.symbol] == ["BTCUSD", "BTCUSD"]
    assert cols.ts.tolist() == [T0 + MIN, T0 + 2 * MIN]  # at each candle's close
    assert cols.price.tolist() == [1.5, 1.75] and cols.volume.tolist() == [10.0, 20.0]


def test_headerless_epoch_ms_klines_gzip_and_symbol_option(tmp_path: Path) -> None:
    rows = "".join(
        f"{1679004900000 + i * 60000},1,2,0.5,{100 + i},{i + 1},{1679004959999 + i * 60000},0,0,0,0,0\n"
        for i in range(5)
    )
    f = tmp_path / "klines.csv.gz"
    f.write_bytes(gzip.compress(rows.encode()))
    syms = SymbolTable()
    cols = read_ticks(f, syms, symbol="SOLUSDT")
    assert {syms.name(i) for i in cols.symbol} == {"SOLUSDT"}
    assert cols.ts[0] == T0 + MIN and cols.price.tolist() == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert cols.line.tolist() == [1, 2, 3, 4, 5]


def test_real_market_files() -> None:
    syms = SymbolTable()
    btc = read_ticks(MARKET / "binance_1m_2023-03-16_2023-05-01" / "BTCUSDT.csv.gz", syms)
    assert len(btc) > 60_000 and syms.name(int(btc.symbol[0])) == "BTCUSDT"
    assert btc.ts[0] == T0 + MIN and np.all(np.diff(btc.ts) > 0)
    us = read_ticks(MARKET / "binanceus_BTCUSD_1m_2023-03-01_2023-03-21.csv", syms)
    assert len(us) == 30_240 and syms.name(int(us.symbol[0])) == "BTCUSD"


def test_parquet_ticks(tmp_path: Path) -> None:
    n = 1000
    table = pa.table(
        {
            "timestamp": pa.array(
                np.arange(n, dtype=np.int64) * 1000 + T0, pa.timestamp("ns", tz="UTC")
            ),
            "symbol": pa.array(["A", "B"] * (n // 2)).dictionary_encode(),
            "price": np.linspace(1, 2, n),
            "volume": np.ones(n),
            "side": np.tile([1, -1], n // 2).astype(np.int8),
        }
    )
    pq.write_table(table, tmp_path / "t.parquet")
    syms = SymbolTable()
    cols = read_ticks(tmp_path / "t.parquet", syms)
    assert len(cols) == n and cols.ts[1] - cols.ts[0] == 1000
    assert [syms.name(i) for i in cols.symbol[:2]] == ["A", "B"] and cols.side[:2].tolist() == [
        1,
        -1,
    ]


def test_malformed_rows_are_reported_by_line_and_skipped(tmp_path: Path) -> None:
    f = write(
        tmp_path / "bad.csv",
        "timestamp,symbol,price,volume\n"
        "2023-03-16T22:15:00Z,BTCUSDT,100,1\n"  # 2 ok
        "2023-03-16T22:15:01Z,BTCUSDT,abc,1\n"  # 3 bad price
        "not-a-time,BTCUSDT,100,1\n"  # 4 bad timestamp
        "2023-03-16T22:15:03Z,BTCUSDT,100\n"  # 5 missing column
        "\n"  # 6 empty line
        "2023-03-16T22:15:04Z,,100,1\n"  # 7 empty symbol
        "2023-03-16T22:15:05Z,BTCUSDT,101,2\n",
    )  # 8 ok
    cols = read_ticks(f, SymbolTable())
    assert cols.line.tolist() == [2, 8] and cols.price.tolist() == [100.0, 101.0]
    assert [e.line for e in cols.errors] == [3, 4, 5, 6, 7]
    assert all(e.source == str(f) for e in cols.errors)
    assert "bad price 'abc'" in str(cols.errors[0]) and str(cols.errors[0]).startswith(f"{f}:3:")
    assert "bad timestamp 'not-a-time'" in str(cols.errors[1])
    assert "expected at least 4 columns" in str(cols.errors[2])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "file is empty"),
        ("a,b,c\n1,2,3\n", "no time column"),
        ("timestamp,price\n2023-01-01,1\n", "missing column(s) symbol, volume"),
        ("1679004900000,1,2\n", "headerless file has 3 columns"),
    ],
)
def test_unreadable_files_say_why(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(InputError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_ticks(write(tmp_path / "x.csv", text), SymbolTable())


def test_symbol_from_filename() -> None:
    assert symbol_from_filename(Path("x/ADAUSDT.csv.gz")) == "ADAUSDT"
    assert symbol_from_filename(Path("kraken-ETHEUR-1m.csv")) == "ETHEUR"
    assert symbol_from_filename(Path("mydata.csv")) == "MYDATA"
