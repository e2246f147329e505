"""Tick storage on the real embedded PostgreSQL: migrations, round trip, idempotency, concurrency."""

import threading

import numpy as np
import psycopg

from rxpipe.model import SymbolTable, TickBatch
from rxpipe.sources.simulator import Simulator
from rxpipe.storage.database import Database
from rxpipe.storage.migrate import migrate, migration_files
from rxpipe.storage.sink import TickSink
from rxpipe.storage.ticks import TickStore

T0 = 1_700_000_000_000_000_000


def sim_batch(
    n_steps: int = 2000, *, source: str = "simulator"
) -> tuple[TickBatch, SymbolTable, SymbolTable]:
    syms, srcs = SymbolTable(), SymbolTable()
    sim = Simulator(
        seed=5, step_s=0.01, start_ns=T0, symbol_table=syms, source_id=srcs.intern(source)
    )
    return sim.steps(n_steps), syms, srcs


def test_migrations_apply_once_and_record_the_version(db: Database) -> None:
    latest = max(v for v, _, _ in migration_files())
    assert db.schema_version == latest
    with db.connect() as conn:
        assert migrate(conn) == latest  # a second run changes nothing
        rows = conn.execute(
            "SELECT version, name FROM schema_migrations ORDER BY version"
        ).fetchall()
    assert [v for v, _ in rows] == [v for v, _, _ in migration_files()]


def test_ticks_round_trip_exactly(db: Database) -> None:
    batch, syms, srcs = sim_batch(100)
    with db.connect() as conn:
        result = TickStore(conn, syms, srcs).write(batch)
        rows = conn.execute(
            "SELECT symbol, source, seq, price, volume, side, (extract(epoch from ts) * 1e6)::bigint "
            "FROM ticks_named ORDER BY seq"
        ).fetchall()
    assert result.stored == len(batch) == len(rows) == 1000
    assert [r[0] for r in rows] == [syms.name(int(i)) for i in batch.symbol]
    assert {r[1] for r in rows} == {"simulator"}
    assert [r[2] for r in rows] == batch.seq.tolist()
    assert [r[3] for r in rows] == batch.price.tolist()  # float64 bit for bit
    assert [r[4] for r in rows] == batch.volume.tolist()
    assert [r[5] for r in rows] == batch.side.tolist()
    assert [r[6] for r in rows] == (batch.ts // 1000).tolist()  # microsecond precision


def test_the_same_batch_written_twice_is_stored_once(db: Database) -> None:
    batch, syms, srcs = sim_batch()
    with db.connect() as conn:
        store = TickStore(conn, syms, srcs)
        first = store.write(batch)
        second = store.write(batch)
        # overlapping and re-cut batches too: half old, half new
        more, _, _ = sim_batch(3000)
        third = store.write(more.take(slice(len(batch) // 2, None)))
        count = conn.execute(
            "SELECT count(*), count(DISTINCT (source_id, symbol_id, seq)) FROM ticks"
        ).fetchone()
    assert (first.stored, first.duplicates) == (len(batch), 0)
    assert (second.stored, second.duplicates) == (0, len(batch))
    assert third.stored == len(more) - len(batch)
    assert count == (len(more), len(more))
    assert db.tick_count() == len(more)
    assert db.high_water("simulator") == len(more) - 1


def test_duplicates_inside_one_batch_are_dropped(db: Database) -> None:
    batch, syms, srcs = sim_batch(10)
    doubled = TickBatch.concat([batch, batch])
    with db.connect() as conn:
        result = TickStore(conn, syms, srcs).write(doubled)
    assert (result.stored, result.duplicates) == (len(batch), len(batch))


def test_concurrent_writers_of_the_same_batch_store_it_once(db: Database) -> None:
    batch, syms, srcs = sim_batch(5000)
    results = []

    def write() -> None:
        with db.connect() as conn:
            results.append(TickStore(conn, syms, srcs).write(batch))

    threads = [threading.Thread(target=write) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(r.stored for r in results) == [0, 0, len(batch)]
    assert db.tick_count() == len(batch)


def test_ids_follow_names_across_processes(db: Database) -> None:
    """Two processes intern the same symbols in different orders: the database keeps names straight."""
    b1, syms1, srcs1 = sim_batch(10)
    syms2 = SymbolTable(["ZZZUSDT", *reversed(syms1.names())])
    srcs2 = SymbolTable(["other", "simulator"])
    b2 = TickBatch(
        np.array([syms2.id(syms1.name(int(i))) for i in b1.symbol], np.int32),
        b1.ts,
        b1.price,
        b1.volume,
        b1.side,
        b1.seq + 10_000,
        np.full(len(b1), srcs2.id("simulator"), np.int16),
    )
    with db.connect() as conn:
        TickStore(conn, syms1, srcs1).write(b1)
        TickStore(conn, syms2, srcs2).write(b2)
        rows = conn.execute(
            "SELECT symbol, count(*) FROM ticks_named GROUP BY symbol ORDER BY symbol"
        ).fetchall()
    assert rows == [(name, 20) for name in sorted(syms1.names())]


def test_sink_retries_until_the_database_answers(pg_url: str) -> None:
    db = Database.open(url=pg_url)
    batch, syms, srcs = sim_batch(100)
    attempts = []

    def factory() -> TickStore:
        attempts.append(1)
        if len(attempts) < 3:  # the first two connections fail, as when the server restarts
            return TickStore(psycopg.connect(pg_url + " port=1", connect_timeout=1), syms, srcs)
        return TickStore(db.connect(), syms, srcs)

    sink = TickSink(factory)
    sink.put(batch)
    assert sink.close(timeout=30)
    assert sink.stored == len(batch) and len(attempts) >= 3
    assert db.tick_count() == len(batch)
