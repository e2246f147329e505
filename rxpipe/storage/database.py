"""The database: the embedded server by default, or an external one from a URL; same SQL."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from pathlib import Path

import psycopg

from rxpipe.errors import StorageError
from rxpipe.storage.embedded import EmbeddedPostgres
from rxpipe.storage.migrate import migrate

log = logging.getLogger(__name__)


def redact(url: str) -> str:
    """A connection URL without its password, for logs.

    >>> redact("postgresql://app:s3cret@db:5432/rx")
    'postgresql://app:***@db:5432/rx'
    """
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


class Database:
    """Connections to rxpipe's PostgreSQL database, migrated on open.

    ``Database.open(data_dir=...)`` starts the embedded server under ``data_dir/pg``;
    ``Database.open(url=...)`` uses an external server (PostgreSQL or TimescaleDB).
    """

    def __init__(self, url: str, *, embedded: EmbeddedPostgres | None = None) -> None:
        self.url = url
        self.embedded = embedded
        self.schema_version = 0

    @classmethod
    def open(
        cls,
        *,
        url: str | None = None,
        data_dir: Path | None = None,
        stop_embedded_on_exit: bool = True,
    ) -> Database:
        if url:
            db = cls(url)
        else:
            if data_dir is None:
                raise StorageError("no database: give a database URL or a data directory")
            server = EmbeddedPostgres(data_dir, stop_on_exit=stop_embedded_on_exit)
            db = cls(server.start(), embedded=server)
        with db.connect() as conn:
            db.schema_version = migrate(conn)
        log.info("database %s at schema version %d", redact(db.url), db.schema_version)
        return db

    @property
    def kind(self) -> str:
        return "embedded" if self.embedded else "external"

    def connect(self) -> psycopg.Connection:
        try:
            return psycopg.connect(self.url, autocommit=True, connect_timeout=10)
        except psycopg.OperationalError as exc:
            raise StorageError(f"cannot connect to {redact(self.url)}: {exc}") from exc

    def tick_count(self) -> int:
        """Ticks stored, from the high-water table (exact, and cheap on any table size)."""
        with self.connect() as conn:
            row = conn.execute("SELECT coalesce(sum(ticks), 0) FROM tick_watermarks").fetchone()
        return int(row[0]) if row else 0

    def high_water(self, source: str) -> int:
        """The highest seq stored for a source name, -1 when it has stored nothing."""
        with self.connect() as conn:
            row = conn.execute(
                "SELECT coalesce(max(w.seq), -1) FROM tick_watermarks w "
                "JOIN sources s ON s.id = w.source_id WHERE s.name = %s",
                (source,),
            ).fetchone()
        return int(row[0]) if row else -1

    def record_events(self, events: Iterable[object]) -> int:
        """Store simulator events (``SimEvent``); already stored ones are kept once."""
        rows = [(e.symbol, e.kind, e.start_ts, e.end_ts, e.magnitude) for e in events]  # type: ignore[attr-defined]
        if not rows:
            return 0
        with self.connect() as conn, conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO simulator_events (symbol, kind, start_ts, end_ts, magnitude) "
                "VALUES (%s, %s, to_timestamp(%s / 1e9), to_timestamp(%s / 1e9), %s) "
                "ON CONFLICT DO NOTHING",
                rows,
            )
        return len(rows)

    def ping(self) -> bool:
        try:
            with self.connect() as conn:
                conn.execute("SELECT 1")
        except (StorageError, psycopg.Error):
            return False
        return True
