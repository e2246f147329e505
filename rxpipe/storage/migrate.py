"""The migrator: applies ``sql/NNN_name.sql`` files in order, once each, and records them."""

from __future__ import annotations

import hashlib
import logging
import re
from pathlib import Path

import psycopg

from rxpipe.errors import StorageError

log = logging.getLogger(__name__)

SQL_DIR = Path(__file__).resolve().parents[2] / "sql"
_NAME = re.compile(r"^(\d+)_([\w-]+)\.sql$")
_LOCK_KEY = 0x7278_7069_7065  # "rxpipe": one migrator at a time per database


def migration_files(sql_dir: Path = SQL_DIR) -> list[tuple[int, str, Path]]:
    found = []
    for path in sorted(sql_dir.glob("*.sql")):
        m = _NAME.match(path.name)
        if not m:
            raise StorageError(f"{path}: migration files are named NNN_name.sql")
        found.append((int(m.group(1)), m.group(2), path))
    versions = [v for v, _, _ in found]
    if len(set(versions)) != len(versions):
        raise StorageError(f"two migration files in {sql_dir} share a version number")
    return sorted(found)


def migrate(conn: psycopg.Connection, sql_dir: Path = SQL_DIR) -> int:
    """Apply pending migrations; return the schema version now in force."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL, checksum text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        applied = {v: c for v, c in conn.execute("SELECT version, checksum FROM schema_migrations")}
        for version, name, path in migration_files(sql_dir):
            text = path.read_text()
            checksum = hashlib.sha256(text.encode()).hexdigest()
            if version in applied:
                if applied[version] != checksum:
                    log.warning("migration %s was edited after it was applied", path.name)
                continue
            log.info("applying migration %s", path.name)
            try:
                conn.execute(text.encode())
            except psycopg.Error as exc:
                raise StorageError(f"migration {path.name} failed: {exc}") from exc
            conn.execute(
                "INSERT INTO schema_migrations (version, name, checksum) VALUES (%s, %s, %s)",
                (version, name, checksum),
            )
        row = conn.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0
