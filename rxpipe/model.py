"""The data that flows: columnar tick batches and the symbol table.

A :class:`TickBatch` is a dataclass of equal-length numpy columns; one Python object per
batch, never one per tick. Symbols and sources are interned once by a :class:`SymbolTable`
shared by every stage of a pipeline.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

SIDE_BUY = 1
SIDE_SELL = -1
SIDE_UNKNOWN = 0

TICK_DTYPES: dict[str, npt.DTypeLike] = {
    "symbol": np.int32,
    "ts": np.int64,
    "price": np.float64,
    "volume": np.float64,
    "side": np.int8,
    "seq": np.int64,
    "source": np.int16,
}
_COLUMN_DTYPES = tuple((name, np.dtype(dt)) for name, dt in TICK_DTYPES.items())  # field order


@dataclass(frozen=True, slots=True)
class TickBatch:
    """A batch of ticks as numpy columns.

    ``symbol`` holds :class:`SymbolTable` ids (int32), ``ts`` nanoseconds since the epoch (UTC),
    ``side`` +1 buy / -1 sell / 0 unknown, ``seq`` a per-source sequence number that increases
    per (source, symbol), ``source`` the id of the source or exchange (interned like symbols).

    >>> b = TickBatch.from_arrays(symbol=[0, 1], ts=[1, 2], price=[10.0, 20.0], volume=[1.0, 2.0])
    >>> len(b), b.price.dtype.name, b.side.tolist()
    (2, 'float64', [0, 0])
    """

    symbol: npt.NDArray[np.int32]
    ts: npt.NDArray[np.int64]
    price: npt.NDArray[np.float64]
    volume: npt.NDArray[np.float64]
    side: npt.NDArray[np.int8]
    seq: npt.NDArray[np.int64]
    source: npt.NDArray[np.int16]

    def __post_init__(self) -> None:
        n = len(self.symbol)
        for name, dtype in _COLUMN_DTYPES:
            col = getattr(self, name)
            if col.dtype != dtype:
                raise TypeError(f"TickBatch.{name} must be {dtype}, got {col.dtype}")
            if len(col) != n:
                raise ValueError(f"TickBatch.{name} has {len(col)} rows, symbol has {n}")

    def __len__(self) -> int:
        return len(self.symbol)

    @classmethod
    def from_arrays(
        cls,
        *,
        symbol: Any,
        ts: Any,
        price: Any,
        volume: Any,
        side: Any = None,
        seq: Any = None,
        source: Any = 0,
    ) -> TickBatch:
        """Build a batch from array-likes, casting each column to its dtype."""
        n = len(symbol)
        side_col = np.zeros(n, np.int8) if side is None else np.asarray(side, np.int8)
        seq_col = np.arange(n, dtype=np.int64) if seq is None else np.asarray(seq, np.int64)
        src = np.asarray(source, np.int16)
        src_col = np.full(n, src, np.int16) if src.ndim == 0 else src
        return cls(
            symbol=np.asarray(symbol, np.int32),
            ts=np.asarray(ts, np.int64),
            price=np.asarray(price, np.float64),
            volume=np.asarray(volume, np.float64),
            side=side_col,
            seq=seq_col,
            source=src_col,
        )

    @classmethod
    def empty(cls) -> TickBatch:
        return cls(**{name: np.empty(0, dt) for name, dt in TICK_DTYPES.items()})

    def take(self, index: npt.NDArray[Any] | slice) -> TickBatch:
        """Rows selected by a boolean mask, an index array or a slice (slices are views)."""
        return TickBatch(
            self.symbol[index],
            self.ts[index],
            self.price[index],
            self.volume[index],
            self.side[index],
            self.seq[index],
            self.source[index],
        )

    @staticmethod
    def concat(batches: list[TickBatch]) -> TickBatch:
        if not batches:
            return TickBatch.empty()
        if len(batches) == 1:
            return batches[0]
        return TickBatch(
            np.concatenate([b.symbol for b in batches]),
            np.concatenate([b.ts for b in batches]),
            np.concatenate([b.price for b in batches]),
            np.concatenate([b.volume for b in batches]),
            np.concatenate([b.side for b in batches]),
            np.concatenate([b.seq for b in batches]),
            np.concatenate([b.source for b in batches]),
        )

    @property
    def nbytes(self) -> int:
        return sum(getattr(self, name).nbytes for name in TICK_DTYPES)


class SymbolTable:
    """Interns strings (symbols, source names) to dense int32 ids, once, thread-safely.

    One table is shared by every stage of a pipeline, so an id means the same thing everywhere.

    >>> t = SymbolTable()
    >>> t.intern("BTCUSDT"), t.intern("ETHUSDT"), t.intern("BTCUSDT")
    (0, 1, 0)
    >>> t.name(1), len(t)
    ('ETHUSDT', 2)
    >>> t.intern_many(["ETHUSDT", "SOLUSDT"]).tolist()
    [1, 2]
    """

    def __init__(self, names: list[str] | None = None) -> None:
        self._ids: dict[str, int] = {}
        self._names: list[str] = []
        self._lock = threading.Lock()
        for name in names or []:
            self.intern(name)

    def intern(self, name: str) -> int:
        found = self._ids.get(name)
        if found is not None:
            return found
        with self._lock:
            found = self._ids.get(name)
            if found is None:
                found = len(self._names)
                self._names.append(name)
                self._ids[name] = found
            return found

    def intern_many(self, names: list[str] | npt.NDArray[Any]) -> npt.NDArray[np.int32]:
        return np.fromiter((self.intern(str(n)) for n in names), np.int32, count=len(names))

    def id(self, name: str) -> int | None:
        return self._ids.get(name)

    def name(self, ident: int) -> str:
        return self._names[ident]

    def names(self) -> list[str]:
        return list(self._names)

    def __len__(self) -> int:
        return len(self._names)

    def __contains__(self, name: object) -> bool:
        return name in self._ids
