"""Reading tick and candle files into columns.

Three shapes are understood:

* ticks (CSV or Parquet): ``timestamp, symbol, price, volume[, side]``;
* candles (CSV, optionally gzip): ``open_time, open, high, low, close, volume, ...`` with or
  without a header, ISO or epoch (s/ms/us/ns) times; a candle becomes one tick at its close
  time carrying its close price and volume. The symbol comes from the caller or the file name.

Clean files take a vectorised pyarrow path. A file with a malformed row is read again row by
row: each bad row is reported (file, line, reason), counted and skipped, the rest is kept.
"""

from __future__ import annotations

import csv
import gzip
import io
import logging
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from rxpipe.errors import InputError
from rxpipe.model import SymbolTable

log = logging.getLogger(__name__)

_TIME_NAMES = ("timestamp", "time", "ts", "ts_utc", "open_time", "open_time_ms", "date", "datetime")
_QUOTES = ("USDT", "USDC", "BUSD", "USD", "EUR", "BTC", "ETH")
_SIDES = {
    "buy": 1,
    "b": 1,
    "bid": 1,
    "1": 1,
    "+1": 1,
    "sell": -1,
    "s": -1,
    "ask": -1,
    "-1": -1,
    "0": 0,
    "": 0,
    "unknown": 0,
}
DEFAULT_CANDLE_S = 60


@dataclass
class FileColumns:
    """The ticks of one file as columns; ``line`` is the file line of each tick (1-based)."""

    path: Path
    symbol: npt.NDArray[np.int32]
    ts: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    side: npt.NDArray[np.int8]
    line: npt.NDArray[np.int64]
    errors: list[InputError] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.ts)


def symbol_from_filename(path: Path) -> str:
    """The market named in a file name.

    >>> symbol_from_filename(Path("binanceus_BTCUSD_1m_2023-03-01_2023-03-21.csv"))
    'BTCUSD'
    >>> symbol_from_filename(Path("data/ETHUSDT.csv.gz"))
    'ETHUSDT'
    """
    stem = path.name.split(".")[0]
    for token in re.split(r"[_\-\s]+", stem):
        if re.fullmatch(r"[A-Z0-9]{5,16}", token) and token.endswith(_QUOTES):
            return token
    return stem.upper()


def epoch_to_ns(values: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Epoch seconds, ms, us or ns (told apart by magnitude) to ns.

    >>> epoch_to_ns(np.array([1679004900000])).tolist()
    [1679004900000000000]
    """
    if len(values) == 0:
        return values.astype(np.int64)
    top = np.abs(values).max()
    scale = 10**9 if top < 10**11 else 10**6 if top < 10**14 else 10**3 if top < 10**17 else 1
    return values.astype(np.int64) * scale


# -- format detection ----------------------------------------------------------------------


def _open_text(path: Path) -> io.TextIOBase:
    raw = gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")  # noqa: SIM115
    return io.TextIOWrapper(raw, encoding="utf-8", newline="")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


@dataclass(frozen=True)
class _Layout:
    kind: str  # "ticks" or "candles"
    header: bool
    names: list[str]
    time: str
    price: str
    volume: str
    symbol: str | None = None
    side: str | None = None


def _layout(path: Path) -> _Layout:
    with _open_text(path) as f:
        first = f.readline().strip()
    if not first:
        raise InputError("file is empty", source=str(path), line=1)
    cells = [c.strip() for c in next(csv.reader([first]))]
    if _is_number(cells[0]):  # headerless exchange kline export
        if len(cells) < 6:
            raise InputError(
                f"headerless file has {len(cells)} columns; a kline file has open_time, open, "
                "high, low, close, volume[, ...]",
                source=str(path),
                line=1,
            )
        names = ["open_time", "open", "high", "low", "close", "volume"] + [
            f"c{i}" for i in range(6, len(cells))
        ]
        return _Layout("candles", False, names, "open_time", "close", "volume")
    names = [c.lower() for c in cells]
    time_col = next((n for n in _TIME_NAMES if n in names), None)
    if time_col is None:
        raise InputError(
            f"no time column: expected one of {', '.join(_TIME_NAMES)}; found {', '.join(names)}",
            source=str(path),
            line=1,
        )
    if "close" in names and "volume" in names:
        if "open_time" in names and "open_time_ms" in names:
            time_col = "open_time_ms"
        return _Layout(
            "candles",
            True,
            names,
            time_col,
            "close",
            "volume",
            symbol="symbol" if "symbol" in names else None,
        )
    missing = [c for c in ("symbol", "price", "volume") if c not in names]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)}: a tick file has timestamp, "
            "symbol, price, volume[, side]; a candle file has open_time, open, high, "
            "low, close, volume",
            source=str(path),
            line=1,
        )
    return _Layout(
        "ticks",
        True,
        names,
        time_col,
        "price",
        "volume",
        symbol="symbol",
        side="side" if "side" in names else None,
    )


# -- fast path (pyarrow) -------------------------------------------------------------------


class _Fallback(Exception):
    """The fast path met something it cannot attribute to a line; read row by row."""


def _arrow_times(col: pa.ChunkedArray) -> npt.NDArray[np.int64]:
    if pa.types.is_timestamp(col.type):
        ts = col.cast(pa.timestamp("ns", tz=col.type.tz))
        return np.asarray(ts.cast(pa.int64()).to_numpy(), np.int64)
    if pa.types.is_integer(col.type) or pa.types.is_floating(col.type):
        return epoch_to_ns(np.asarray(col.to_numpy(), np.float64).astype(np.int64))
    text = col.cast(pa.string())
    if pc.all(pc.utf8_is_digit(text)).as_py():
        return epoch_to_ns(np.asarray(text.cast(pa.int64()).to_numpy(), np.int64))
    for target in (pa.timestamp("ns", tz="UTC"), pa.timestamp("ns")):
        try:
            return np.asarray(text.cast(target).cast(pa.int64()).to_numpy(), np.int64)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
    raise _Fallback("timestamps in a form the fast path does not read")


def _arrow_table(path: Path, lay: _Layout) -> pa.Table:
    if path.suffix in (".parquet", ".pq"):
        return pq.read_table(path)
    bad: list[object] = []

    def on_invalid(row: object) -> str:
        bad.append(row)
        return "skip"

    types: dict[str, pa.DataType] = {
        lay.time: pa.string(),
        lay.price: pa.float64(),
        lay.volume: pa.float64(),
    }
    if lay.symbol:
        types[lay.symbol] = pa.dictionary(pa.int32(), pa.string())
    if lay.side:
        types[lay.side] = pa.string()
    try:
        table = pcsv.read_csv(
            path,
            read_options=pcsv.ReadOptions(
                column_names=None if lay.header else lay.names, block_size=8 << 20
            ),
            parse_options=pcsv.ParseOptions(
                invalid_row_handler=on_invalid, ignore_empty_lines=False
            ),
            convert_options=pcsv.ConvertOptions(
                column_types=types, include_columns=list(types), strings_can_be_null=True
            ),
        )
    except pa.ArrowInvalid as exc:
        raise _Fallback(str(exc)) from exc
    if bad:
        raise _Fallback(f"{len(bad)} malformed row(s)")
    table = table.rename_columns([c.lower() for c in table.column_names])
    if any(table.column(c).null_count for c in types):
        raise _Fallback("empty cells")
    return table


def _read_fast(path: Path, lay: _Layout, symbols: SymbolTable, symbol: str | None) -> FileColumns:
    table = _arrow_table(path, lay)
    if path.suffix in (".parquet", ".pq"):
        table = table.rename_columns([c.lower() for c in table.column_names])
    n = table.num_rows
    ts = _arrow_times(table.column(lay.time))
    price = np.asarray(table.column(lay.price).to_numpy(), np.float64)
    volume = np.asarray(table.column(lay.volume).to_numpy(), np.float64)
    if lay.symbol and symbol is None:
        sym = _arrow_symbols(table.column(lay.symbol), symbols)
    else:
        sym = np.full(n, symbols.intern(symbol or symbol_from_filename(path)), np.int32)
    side = np.zeros(n, np.int8)
    if lay.side:
        side = _arrow_sides(table.column(lay.side), path)
    first_line = 2 if lay.header else 1
    line = np.arange(first_line, first_line + n, dtype=np.int64)
    if lay.kind == "candles":
        ts = ts + _candle_interval_ns(ts)
    return FileColumns(path, sym, ts, price, volume, side, line)


def _arrow_symbols(col: pa.ChunkedArray, symbols: SymbolTable) -> npt.NDArray[np.int32]:
    col = col if pa.types.is_dictionary(col.type) else pc.dictionary_encode(col)
    parts = []
    for chunk in col.chunks:
        ids = symbols.intern_many(chunk.dictionary.to_pylist())
        parts.append(ids[np.asarray(chunk.indices.to_numpy(), np.int64)])
    return np.concatenate(parts) if parts else np.empty(0, np.int32)


def _arrow_sides(col: pa.ChunkedArray, path: Path) -> npt.NDArray[np.int8]:
    if pa.types.is_integer(col.type):
        return np.sign(np.asarray(col.to_numpy(), np.int64)).astype(np.int8)
    values = pc.utf8_lower(pc.utf8_trim_whitespace(col.cast(pa.string())))
    codes = pc.index_in(values, value_set=pa.array(list(_SIDES)))
    if codes.null_count:
        raise _Fallback("unknown side values")
    table = np.array(list(_SIDES.values()), np.int8)
    return table[np.asarray(codes.to_numpy(), np.int64)]


def _candle_interval_ns(open_ts: npt.NDArray[np.int64]) -> int:
    """Candle length: the most common gap between open times (60 s when it cannot be told)."""
    gaps = np.diff(open_ts[:1000])
    gaps = gaps[gaps > 0]
    if len(gaps) == 0:
        return DEFAULT_CANDLE_S * 10**9
    values, counts = np.unique(gaps, return_counts=True)
    return int(values[np.argmax(counts)])


# -- slow path (row by row, precise errors) -------------------------------------------------


def _parse_time(text: str) -> int:
    text = text.strip()
    if re.fullmatch(r"\d+", text):
        return int(epoch_to_ns(np.array([int(text)]))[0])
    stamp = datetime.fromisoformat(text)
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 10**9 + stamp.microsecond * 1000


def _parse_row(
    row: list[str], idx: dict[str, int], lay: _Layout
) -> tuple[int, float, float, int, str | None]:
    need = max(idx.values()) + 1
    if len(row) < need:
        raise ValueError(f"expected at least {need} columns, found {len(row)}")
    try:
        ts = _parse_time(row[idx[lay.time]])
    except ValueError as exc:
        raise ValueError(f"bad {lay.time} {row[idx[lay.time]]!r}: {exc}") from None
    values = []
    for col in (lay.price, lay.volume):
        cell = row[idx[col]]
        try:
            values.append(float(cell))
        except ValueError:
            raise ValueError(f"bad {col} {cell!r}: not a number") from None
    side = 0
    if lay.side:
        cell = row[idx[lay.side]].strip().lower()
        if cell not in _SIDES:
            raise ValueError(f"bad side {cell!r}: expected buy/sell, b/s or 1/-1/0")
        side = _SIDES[cell]
    sym = row[idx[lay.symbol]].strip() if lay.symbol else None
    if lay.symbol and not sym:
        raise ValueError("empty symbol")
    return ts, values[0], values[1], side, sym


def _read_slow(
    path: Path, lay: _Layout, symbols: SymbolTable, symbol: str | None, max_errors_logged: int = 20
) -> FileColumns:
    idx = {name: i for i, name in enumerate(lay.names)}
    fixed = (
        symbols.intern(symbol or symbol_from_filename(path)) if (symbol or not lay.symbol) else -1
    )
    cols: dict[str, list[Any]] = {k: [] for k in ("ts", "price", "volume", "side", "sym", "line")}
    errors: list[InputError] = []
    with _open_text(path) as f:
        reader = csv.reader(f)
        for row in reader:
            line = reader.line_num
            if lay.header and line == 1:
                continue
            try:
                ts, price, volume, side, sym = _parse_row(row, idx, lay)
            except ValueError as exc:
                err = InputError(str(exc) if row else "empty line", source=str(path), line=line)
                if len(errors) < max_errors_logged:
                    log.warning("skipped malformed row: %s", err)
                errors.append(err)
                continue
            cols["ts"].append(ts)
            cols["price"].append(price)
            cols["volume"].append(volume)
            cols["side"].append(side)
            cols["sym"].append(fixed if fixed >= 0 else symbols.intern(sym or ""))
            cols["line"].append(line)
    ts_arr = np.array(cols["ts"], np.int64)
    if lay.kind == "candles":
        ts_arr = ts_arr + _candle_interval_ns(ts_arr)
    if len(errors) > max_errors_logged:
        log.warning("%s: %d malformed rows skipped in all", path, len(errors))
    return FileColumns(
        path,
        np.array(cols["sym"], np.int32),
        ts_arr,
        np.array(cols["price"], np.float64),
        np.array(cols["volume"], np.float64),
        np.array(cols["side"], np.int8),
        np.array(cols["line"], np.int64),
        errors,
    )


def read_ticks(path: str | Path, symbols: SymbolTable, *, symbol: str | None = None) -> FileColumns:
    """Read a tick or candle file (CSV, CSV.gz or Parquet) into columns.

    Malformed rows are skipped and returned in ``errors`` as :class:`InputError` with the line.
    """
    p = Path(path)
    if not p.is_file():
        raise InputError("no such file", source=str(p))
    if p.suffix in (".parquet", ".pq"):
        names = [n.lower() for n in pq.read_schema(p).names]
        time_col = next((n for n in _TIME_NAMES if n in names), None)
        if time_col is None or "price" not in names or "volume" not in names:
            raise InputError(
                f"a Parquet tick file needs timestamp, symbol, price, volume; "
                f"found {', '.join(names)}",
                source=str(p),
            )
        lay = _Layout(
            "ticks",
            True,
            names,
            time_col,
            "price",
            "volume",
            symbol="symbol" if "symbol" in names else None,
            side="side" if "side" in names else None,
        )
        return _read_fast(p, lay, symbols, symbol)
    lay = _layout(p)
    try:
        return _read_fast(p, lay, symbols, symbol)
    except _Fallback as why:
        log.info("%s: reading row by row (%s)", p, why)
        return _read_slow(p, lay, symbols, symbol)
