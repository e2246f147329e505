"""Shared fixtures: a real embedded PostgreSQL server for the session, a fresh database per test."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from rxpipe.storage.database import Database
from rxpipe.storage.embedded import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
MARKET = SHARED / "data" / "market"


def require_service(name: str, available: bool, why: str) -> None:
    """Skip when an optional external service is absent, unless CI requires every service."""
    if available:
        return
    if os.environ.get("RXPIPE_REQUIRE_SERVICES") == "1":
        pytest.fail(f"{name} is required (RXPIPE_REQUIRE_SERVICES=1) but unavailable: {why}")
    pytest.skip(f"{name} unavailable: {why}")


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of the session's embedded PostgreSQL server (the real one, not a mock)."""
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pgsession"))
    url = server.start()
    yield url
    server.stop()


@pytest.fixture
def pg_url(pg_server: str) -> Iterator[str]:
    """A fresh, empty database on the session server."""
    name = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield psycopg.conninfo.make_conninfo(pg_server, dbname=name)
    with psycopg.connect(pg_server, autocommit=True) as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )


@pytest.fixture
def db(pg_url: str) -> Database:
    return Database.open(url=pg_url)


@pytest.fixture
def data_dir(tmp_path: Path) -> Iterator[Path]:
    """A data directory for a process that starts its own embedded server; stopped afterwards."""
    path = tmp_path / "data"
    path.mkdir()
    yield path
    EmbeddedPostgres(path).stop()


def rxpipe_cmd(*args: str) -> list[str]:
    exe = shutil.which("rxpipe", path=str(Path(sys.executable).parent))
    return [exe or sys.executable, *args] if exe else [sys.executable, "-m", "rxpipe.cli", *args]


def run_rxpipe(
    *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        rxpipe_cmd(*args), capture_output=True, text=True, timeout=timeout, env=full_env
    )


@pytest.fixture(scope="session")
def hook() -> Iterator[object]:
    """An HTTP receiver for the app's webhook channel."""
    from .apps import Hook

    h = Hook()
    yield h
    h.close()


@pytest.fixture(scope="session")
def app(tmp_path_factory: pytest.TempPathFactory, hook: object) -> Iterator[object]:
    """One ``rxpipe run`` for the session's API, WebSocket and browser tests: two hours of
    simulated history first, the live simulator, a webhook channel, slow WebSocket clients
    dropped after 3 s."""
    from .apps import running_app

    data_dir = tmp_path_factory.mktemp("app") / "data"
    data_dir.mkdir()
    config = (
        "notify:\n"
        "  channels:\n"
        "    log: {type: log}\n"
        f"    hook: {{type: webhook, url: '{hook.url}', secret: s3cret}}\n"  # type: ignore[attr-defined]
        "  group_wait_s: 0.5\n"
        "server:\n"
        "  ws_max_queue: 20\n"
        "  ws_drop_after_s: 3\n"
    )
    try:
        with running_app(data_dir, config=config, backfill="2h") as running:
            yield running
    finally:
        EmbeddedPostgres(data_dir).stop()
