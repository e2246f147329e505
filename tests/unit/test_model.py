import numpy as np
import pytest

from rxpipe.model import SymbolTable, TickBatch


def make(n: int = 5) -> TickBatch:
    return TickBatch.from_arrays(
        symbol=np.arange(n) % 2, ts=np.arange(n) + 1, price=np.arange(n) + 10.0, volume=np.ones(n)
    )


def test_columns_have_their_dtypes() -> None:
    b = make()
    assert [
        b.symbol.dtype,
        b.ts.dtype,
        b.price.dtype,
        b.volume.dtype,
        b.side.dtype,
        b.seq.dtype,
        b.source.dtype,
    ] == [np.int32, np.int64, np.float64, np.float64, np.int8, np.int64, np.int16]


def test_wrong_dtype_or_length_is_refused() -> None:
    b = make()
    with pytest.raises(TypeError, match="price must be float64"):
        TickBatch(b.symbol, b.ts, b.price.astype(np.float32), b.volume, b.side, b.seq, b.source)
    with pytest.raises(ValueError, match="ts has 4 rows"):
        TickBatch(b.symbol, b.ts[:4], b.price, b.volume, b.side, b.seq, b.source)


def test_take_and_concat_round_trip() -> None:
    b = make(10)
    parts = [b.take(slice(0, 3)), b.take(slice(3, 7)), b.take(slice(7, None))]
    joined = TickBatch.concat(parts)
    for name in ("symbol", "ts", "price", "volume", "side", "seq", "source"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(b, name))
    assert len(TickBatch.concat([])) == 0
    assert len(b.take(b.price > 14)) == 5


def test_symbol_table_interns_once_and_is_thread_safe() -> None:
    from concurrent.futures import ThreadPoolExecutor

    table = SymbolTable()
    names = [f"S{i % 50}" for i in range(5000)]
    with ThreadPoolExecutor(8) as pool:
        ids = list(pool.map(table.intern, names))
    assert len(table) == 50
    assert all(table.name(i) == n for i, n in zip(ids, names, strict=True))
    assert table.id("S3") == ids[3] and table.id("nope") is None
