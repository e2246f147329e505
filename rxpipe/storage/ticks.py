"""Tick writes: binary COPY, idempotent per (source, symbol, seq) through high-water marks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt
import psycopg
from psycopg import sql

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.storage.copy_binary import HEADER, ROW_BYTES, TRAILER, above_watermark, encode_ticks

_COPY_CHUNK = 1 << 20


@dataclass(frozen=True, slots=True)
class WriteResult:
    stored: int
    duplicates: int


class IdMap:
    """Translates this process's interned ids to the database's ids for the same names."""

    def __init__(self, table: Literal["symbols", "sources"], names: SymbolTable) -> None:
        self.table = table
        self.names = names
        self.db_ids = np.full(0, -1, np.int64)

    def translate(
        self, conn: psycopg.Connection, local: npt.NDArray[np.integer]
    ) -> npt.NDArray[np.int64]:
        if len(self.db_ids) < len(self.names):
            grown = np.full(len(self.names), -1, np.int64)
            grown[: len(self.db_ids)] = self.db_ids
            self.db_ids = grown
        ids = self.db_ids[local]
        if (ids < 0).any():
            self._register(conn, np.unique(local[ids < 0]))
            ids = self.db_ids[local]
        return ids

    def _register(self, conn: psycopg.Connection, local: npt.NDArray[np.integer]) -> None:
        names = [self.names.name(int(i)) for i in local]
        table = sql.Identifier(self.table)
        conn.execute(
            sql.SQL(
                "INSERT INTO {} (name) SELECT unnest(%s::text[]) ON CONFLICT (name) DO NOTHING"
            ).format(table),
            (names,),
        )
        rows = conn.execute(
            sql.SQL("SELECT name, id FROM {} WHERE name = ANY(%s)").format(table), (names,)
        )
        for name, db_id in rows:
            self.db_ids[self.names.intern(name)] = db_id


class TickStore:
    """Writes tick batches to the ``ticks`` table.

    A tick is stored only if its ``seq`` is above the high-water mark of its (source, symbol);
    the marks move in the same transaction as the COPY, under a row lock, so writing the same
    batch twice (or concurrently) stores it once, and a crash leaves either all or none of it.
    """

    def __init__(
        self, conn: psycopg.Connection, symbols: SymbolTable, sources: SymbolTable
    ) -> None:
        self.conn = conn
        self._symbols = IdMap("symbols", symbols)
        self._sources = IdMap("sources", sources)

    def write(self, batch: TickBatch) -> WriteResult:
        n = len(batch)
        if n == 0:
            return WriteResult(0, 0)
        conn = self.conn
        with conn.transaction():
            sym = self._symbols.translate(conn, batch.symbol)
            src = self._sources.translate(conn, batch.source)
            keys, pair = np.unique((src << 32) | sym, return_inverse=True)
            pair_src, pair_sym = (keys >> 32).tolist(), (keys & 0xFFFFFFFF).tolist()
            marks = self._lock_marks(pair_src, pair_sym)
            watermark = np.array([marks[k] for k in zip(pair_src, pair_sym, strict=True)], np.int64)
            keep = np.empty(n, np.bool_)
            kept = above_watermark(pair.astype(np.int64), batch.seq, watermark, keep)
            if kept:
                self._copy(batch, sym, src, keep, kept)
                added = np.bincount(pair[keep], minlength=len(keys))
                moved = np.flatnonzero(added)
                conn.execute(
                    "UPDATE tick_watermarks w SET seq = v.seq, ticks = w.ticks + v.n, updated_at = now() "
                    "FROM unnest(%s::smallint[], %s::integer[], %s::bigint[], %s::bigint[]) "
                    "AS v(source_id, symbol_id, seq, n) "
                    "WHERE w.source_id = v.source_id AND w.symbol_id = v.symbol_id",
                    (
                        [pair_src[i] for i in moved],
                        [pair_sym[i] for i in moved],
                        watermark[moved].tolist(),
                        added[moved].tolist(),
                    ),
                )
        return WriteResult(kept, n - kept)

    def _lock_marks(self, src: list[int], sym: list[int]) -> dict[tuple[int, int], int]:
        self.conn.execute(
            "INSERT INTO tick_watermarks (source_id, symbol_id, seq) "
            "SELECT s, y, -1 FROM unnest(%s::smallint[], %s::integer[]) AS k(s, y) "
            "ON CONFLICT DO NOTHING",
            (src, sym),
        )
        rows = self.conn.execute(
            "SELECT w.source_id, w.symbol_id, w.seq FROM tick_watermarks w "
            "JOIN unnest(%s::smallint[], %s::integer[]) AS k(source_id, symbol_id) "
            "USING (source_id, symbol_id) ORDER BY 1, 2 FOR UPDATE OF w",
            (src, sym),
        )
        return {(s, y): q for s, y, q in rows}

    def _copy(
        self,
        batch: TickBatch,
        sym: npt.NDArray[np.int64],
        src: npt.NDArray[np.int64],
        keep: npt.NDArray[np.bool_],
        kept: int,
    ) -> None:
        buf = np.empty(kept * ROW_BYTES, np.uint8)
        size = encode_ticks(
            batch.ts, sym, src, batch.seq, batch.price, batch.volume, batch.side, keep, buf
        )
        view = buf[:size].data
        with (
            self.conn.cursor() as cur,
            cur.copy(
                "COPY ticks (ts, symbol_id, source_id, seq, price, volume, side) FROM STDIN (FORMAT BINARY)"
            ) as copy,
        ):
            copy.write(HEADER)
            for lo in range(0, size, _COPY_CHUNK):
                copy.write(view[lo : lo + _COPY_CHUNK])
            copy.write(TRAILER)
