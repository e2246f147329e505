"""A real ``rxpipe run`` process for API, WebSocket and browser tests, and a small client."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .conftest import rxpipe_cmd

TOKEN = "test-token-0123456789"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Hook:
    """An HTTP receiver for webhook notifications started by the tests."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                outer.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


class App:
    """A running rxpipe and JSON requests against it."""

    def __init__(self, proc: subprocess.Popen[str], port: int, data_dir: Path) -> None:
        self.proc = proc
        self.port = port
        self.data_dir = data_dir
        self.base = f"http://127.0.0.1:{port}"
        self.log_path: Path | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        token: str | None = TOKEN,
        raw: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        req = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                text = resp.read()
                status, hdrs = resp.status, {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as exc:
            text, status = exc.read(), exc.code
            hdrs = {k.lower(): v for k, v in exc.headers.items()}
        try:
            doc = json.loads(text) if text else None
        except ValueError:
            doc = text.decode()
        return status, doc, hdrs

    def get(self, path: str) -> Any:
        status, doc, _ = self.request("GET", path, token=None)
        assert status == 200, (path, status, doc)
        return doc

    def health(self) -> dict[str, Any]:
        return self.get("/api/v1/health")

    def wait(self, cond: Any, timeout: float = 60.0, what: str = "") -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = cond()
            if got:
                return got
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what or cond}")


@contextmanager
def running_app(
    data_dir: Path,
    *,
    env: dict[str, str] | None = None,
    config: str | None = None,
    backfill: str | None = None,
    args: tuple[str, ...] = (),
) -> Iterator[App]:
    """``rxpipe simulate --backfill`` (optional), then ``rxpipe run``; stopped with SIGTERM."""
    full_env = {
        **os.environ,
        "RXPIPE_API_TOKEN": TOKEN,
        "RXPIPE_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    cfg: list[str] = []
    if config is not None:
        path = data_dir.parent / f"rxpipe-{data_dir.name}.yaml"
        path.write_text(config)
        cfg = ["--config", str(path)]
    if backfill:
        done = subprocess.run(
            rxpipe_cmd("simulate", "--backfill", backfill, "--data-dir", str(data_dir), *cfg),
            capture_output=True,
            text=True,
            env=full_env,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr
    port = free_port()
    log_path = data_dir.parent / f"rxpipe-{data_dir.name}.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - a pipe nobody reads would block the app
    proc = subprocess.Popen(
        rxpipe_cmd("run", "--data-dir", str(data_dir), "--port", str(port), *cfg, *args),
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
        env=full_env,
    )
    app = App(proc, port, data_dir)
    app.log_path = log_path
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                raise AssertionError(
                    f"rxpipe run exited: {proc.stderr.read() if proc.stderr else ''}"
                )
            try:
                if app.health()["ticks_processed"] > 0:
                    break
            except (OSError, AssertionError):
                pass
            if time.monotonic() > deadline:
                raise AssertionError("rxpipe run did not start")
            time.sleep(0.3)
        yield app
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        log_file.close()
