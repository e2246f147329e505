"""Load from a separate process: an open-loop HTTP load at a fixed rate, or many WebSocket
clients. Prints one JSON object.

    python -m bench.loadgen http URL RATE SECONDS [CONNECTIONS]
    python -m bench.loadgen ws URL CLIENTS SECONDS

HTTP latency is measured from the time a request was *due* (open loop: a slow answer does not
delay the next request's schedule, so queueing shows in the latency instead of hiding it).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any
from urllib.parse import urlsplit

import numpy as np


async def _http_worker(
    host: str,
    port: int,
    path: str,
    queue: asyncio.Queue[float | None],
    out: list[float],
    codes: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: keep-alive\r\n\r\n".encode()
    )
    while True:
        due = await queue.get()
        if due is None:
            break
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        out.append(time.perf_counter() - due)
        codes[status] = codes.get(status, 0) + 1
    writer.close()


async def http_load(url: str, rate: float, seconds: float, connections: int = 32) -> dict[str, Any]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    codes: dict[int, int] = {}
    workers = [
        asyncio.create_task(_http_worker(host, port, path, queue, latencies, codes))
        for _ in range(connections)
    ]
    t0 = time.perf_counter()
    n = int(rate * seconds)
    for k in range(n):
        due = t0 + k / rate
        wait = due - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        queue.put_nowait(due)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    wall = time.perf_counter() - t0
    ms = np.array(latencies) * 1e3
    return {
        "url": path,
        "target_rate": rate,
        "requests": len(ms),
        "achieved_rate": round(len(ms) / wall, 1),
        "status": {str(k): v for k, v in codes.items()},
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p90_ms": round(float(np.percentile(ms, 90)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "max_ms": round(float(ms.max()), 3),
    }


async def _ws_client(
    url: str, seconds: float, stats: list[dict[str, Any]], start: asyncio.Event
) -> None:
    from tornado.websocket import websocket_connect

    ws = await websocket_connect(url, max_message_size=64 * 1024 * 1024)
    await start.wait()  # everyone connected: subscribe together, measure after a settling second
    await ws.write_message(
        json.dumps({"action": "subscribe", "channels": ["ticks"], "symbols": ["*"]})
    )
    settle = time.monotonic() + 1.0
    while time.monotonic() < settle:
        await asyncio.wait_for(ws.read_message(), timeout=5)
    messages, ticks, gaps, lags = 0, 0, 0, []
    last_seq = None
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            msg = await asyncio.wait_for(
                ws.read_message(), timeout=max(0.01, deadline - time.monotonic())
            )
        except TimeoutError:
            break
        if msg is None:
            break
        # read only what is measured (seq, count, newest timestamp): the clients share one
        # process, and parsing every message whole would make them the bottleneck
        text = msg if isinstance(msg, str) else msg.decode()
        if not text.startswith('{"type":"ticks"'):
            continue
        seq = int(text[text.index('"seq":') + 6 : text.index(",", text.index('"seq":'))])
        if last_seq is not None and seq != last_seq + 1:
            gaps += 1
        last_seq = seq
        messages += 1
        ticks += text.count('"symbol":')
        at = text.rindex('"timestamp":"') + 13
        newest = text[at : text.index('"', at)]
        stamp = np.datetime64(newest.rstrip("Z"), "us").astype(np.int64) / 1e6
        lags.append(time.time() - stamp)
    ws.close()
    stats.append({"messages": messages, "ticks": ticks, "gaps": gaps, "lags": lags})


async def ws_load(url: str, clients: int, seconds: float) -> dict[str, Any]:
    stats: list[dict[str, Any]] = []
    start = asyncio.Event()
    tasks = [asyncio.create_task(_ws_client(url, seconds, stats, start)) for _ in range(clients)]
    await asyncio.sleep(1.0 + clients * 0.005)  # everyone connected and subscribed
    start.set()
    await asyncio.gather(*tasks, return_exceptions=True)
    rates = np.array([s["messages"] / seconds for s in stats]) if stats else np.zeros(1)
    lags = (
        np.concatenate([np.array(s["lags"]) for s in stats if s["lags"]]) * 1e3
        if stats
        else np.zeros(1)
    )
    return {
        "clients": clients,
        "connected": len(stats),
        "seconds": seconds,
        "messages_per_s_per_client": {
            "min": round(float(rates.min()), 2),
            "median": round(float(np.median(rates)), 2),
        },
        "ticks_per_s_per_client_median": round(
            float(np.median([s["ticks"] for s in stats]) / seconds), 1
        )
        if stats
        else 0,
        "ticks_per_s_per_client_min": round(float(min(s["ticks"] for s in stats)) / seconds, 1)
        if stats
        else 0,
        "clients_with_gaps": sum(1 for s in stats if s["gaps"]),
        "lag_ms": {
            "p50": round(float(np.percentile(lags, 50)), 2),
            "p99": round(float(np.percentile(lags, 99)), 2),
        },
    }


def main() -> None:
    mode = sys.argv[1]
    if mode == "http":
        conns = int(sys.argv[5]) if len(sys.argv) > 5 else 32
        doc = asyncio.run(http_load(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), conns))
    else:
        doc = asyncio.run(ws_load(sys.argv[2], int(sys.argv[3]), float(sys.argv[4])))
    print(json.dumps(doc))


if __name__ == "__main__":
    main()
