"""The server under load: ``rxpipe run`` (simulator at 1,000 ticks/s, embedded PostgreSQL,
the dashboard and the API) with load from a separate process on loopback (bench/loadgen.py).

* API latency of ``GET /api/v1/metrics/{symbol}`` at fixed request rates (open loop).
* WebSocket clients subscribed to every symbol's ticks: how many are served at the full update
  rate (a message every 50 ms) with no gaps.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import urllib.request
from typing import Any

from bench.data import CACHE
from rxpipe.storage.embedded import EmbeddedPostgres

TICKS_PER_S = 1000.0  # the simulator's default rate
MAX_LAG_MS = 500.0


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health(port: int) -> dict[str, Any]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=5) as r:
        doc: dict[str, Any] = json.loads(r.read())
        return doc


def _loadgen(*args: str, timeout: float = 300) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(done.stderr[-2000:])
    doc: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return doc


def run(
    rates: tuple[float, ...] = (100, 500, 1000), clients: tuple[int, ...] = (1, 50, 200, 400)
) -> dict[str, Any]:
    data_dir = CACHE / "server-db"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = {**os.environ, "RXPIPE_SERVER_RATE_LIMIT_PER_S": "0", "RXPIPE_LOG_LEVEL": "WARNING"}
    rx = [sys.executable, "-m", "rxpipe.cli"]
    subprocess.run(
        [*rx, "simulate", "--backfill", "2h", "--data-dir", str(data_dir)],
        check=True,
        env=env,
        capture_output=True,
    )
    port = _free_port()
    log = open(data_dir.parent / "server-bench.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [*rx, "run", "--data-dir", str(data_dir), "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if _health(port)["ticks_processed"] > 0:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("rxpipe run did not start")
            time.sleep(0.5)
        base = f"http://127.0.0.1:{port}"
        _loadgen("http", f"{base}/api/v1/metrics/BTCUSDT", "100", "3")  # warm-up
        api = []
        for rate in rates:
            doc = _loadgen("http", f"{base}/api/v1/metrics/BTCUSDT", str(rate), "20")
            api.append(doc)
            print(
                f"  GET /api/v1/metrics/BTCUSDT at {rate:>5.0f} req/s: p50 {doc['p50_ms']} ms, p99 {doc['p99_ms']} ms (achieved {doc['achieved_rate']}/s, {doc['status']})"
            )
        ws = []
        for n in clients:
            doc = _loadgen("ws", f"ws://127.0.0.1:{port}/ws", str(n), "10")
            # full rate: every client gets every tick the simulator makes (within 5 %), in time
            # (p99 lag under MAX_LAG_MS), and no message is dropped
            doc["full_rate"] = (
                doc["ticks_per_s_per_client_min"] >= 0.95 * TICKS_PER_S
                and doc["clients_with_gaps"] == 0
                and doc["connected"] == n
                and doc["lag_ms"]["p99"] <= MAX_LAG_MS
            )
            ws.append(doc)
            print(
                f"  {n:>4} WebSocket clients: {doc['messages_per_s_per_client']} msgs/s per client, "
                f"{doc['ticks_per_s_per_client_median']} ticks/s, gaps in {doc['clients_with_gaps']}, "
                f"lag p50 {doc['lag_ms']['p50']} ms p99 {doc['lag_ms']['p99']} ms -> full rate: {doc['full_rate']}"
            )
        health = _health(port)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        EmbeddedPostgres(data_dir).stop()
        shutil.rmtree(data_dir, ignore_errors=True)
    served = [d["clients"] for d in ws if d["full_rate"]]
    return {
        "benchmark": "server",
        "simulator_ticks_per_s": TICKS_PER_S,
        "full_rate_means": f">= 95 % of the ticks to every client, no gaps, p99 lag <= {MAX_LAG_MS:g} ms",
        "api": api,
        "websocket": ws,
        "websocket_clients_at_full_rate": max(served) if served else 0,
        "pipeline_after": {
            k: health[k] for k in ("ticks_processed", "ticks_rejected", "batch_latency_ms")
        },
    }
