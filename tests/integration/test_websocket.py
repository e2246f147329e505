"""The WebSocket at /ws of a real ``rxpipe run``, with real clients: typed messages in order,
the seed's protocol, bad messages, and a slow client that never slows anyone else."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from typing import Any

import pytest
from tornado.websocket import websocket_connect

from ..apps import App

pytestmark = pytest.mark.timeout(300)


async def _collect(url: str, hello: dict[str, Any], seconds: float) -> list[Any]:
    ws = await websocket_connect(url)
    await ws.write_message(json.dumps(hello))
    got: list[Any] = []
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
        got.append(json.loads(msg))
    ws.close()
    return got


def ws_url(app: App) -> str:
    return f"ws://127.0.0.1:{app.port}/ws"


def test_subscribe_and_receive_typed_messages_in_order(app: App) -> None:
    hello = {
        "action": "subscribe",
        "channels": ["ticks", "signals"],
        "symbols": ["BTCUSDT", "ETHUSDT"],
    }
    msgs = asyncio.run(_collect(ws_url(app), hello, 3.0))
    assert msgs[0]["type"] == "subscribed" and msgs[0]["symbols"] == ["BTCUSDT", "ETHUSDT"]
    assert [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))  # no gaps, in order
    ticks = [m for m in msgs if m["type"] == "ticks"]
    signals = [m for m in msgs if m["type"] == "signals"]
    assert len(ticks) >= 20 and signals  # every 50 ms while ticks flow (about 60 in 3 s)
    rows = [row for m in ticks for row in m["data"]]
    assert {r["symbol"] for r in rows} == {"BTCUSDT", "ETHUSDT"}
    assert {"symbol", "price", "volume", "timestamp", "source", "seq"} <= set(rows[0])
    for sym in ("BTCUSDT", "ETHUSDT"):
        seqs = [r["seq"] for r in rows if r["symbol"] == sym]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)  # each tick once, in order
    assert all(
        s["data"][0]["symbol"] in ("BTCUSDT", "ETHUSDT") and "z_ret" in s["data"][0]
        for s in signals
    )


def test_the_seed_protocol_gets_plain_arrays_of_price_updates(app: App) -> None:
    msgs = asyncio.run(_collect(ws_url(app), {"action": "subscribe", "symbols": ["SOLUSDT"]}, 2.0))
    assert len(msgs) >= 10 and all(isinstance(m, list) for m in msgs)
    update = msgs[0][0]
    assert {"symbol", "price", "volume", "timestamp", "source"} <= set(update)
    assert {u["symbol"] for m in msgs for u in m} == {"SOLUSDT"}


def test_alerts_and_anomalies_channels_and_unsubscribe(app: App) -> None:
    async def scenario() -> tuple[list[Any], list[Any]]:
        ws = await websocket_connect(ws_url(app))
        await ws.write_message(
            json.dumps({"action": "subscribe", "channels": ["anomalies", "alerts"]})
        )
        seen: list[Any] = []
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and not any(m.get("type") == "anomalies" for m in seen):
            msg = await asyncio.wait_for(ws.read_message(), timeout=20)
            seen.append(json.loads(msg))
        await ws.write_message(
            json.dumps({"action": "unsubscribe", "channels": ["anomalies", "alerts"]})
        )
        after: list[Any] = []
        try:
            while True:
                after.append(json.loads(await asyncio.wait_for(ws.read_message(), timeout=1.5)))
        except TimeoutError:
            pass
        ws.close()
        return seen, after

    seen, after = asyncio.run(scenario())
    anomalies = [m for m in seen if m["type"] == "anomalies"]
    assert anomalies, seen[:3]
    a = anomalies[0]["data"][0]
    assert {
        "symbol",
        "type",
        "method",
        "severity",
        "current_value",
        "expected_value",
        "confidence",
        "timestamp",
    } <= set(a)
    # after unsubscribing: the confirmation, then at most what was already on its way
    assert after and after[0]["type"] == "subscribed" and after[0]["channels"] == []
    assert all(m["type"] in ("subscribed", "anomalies", "alerts") for m in after)
    assert len([m for m in after[1:] if m["type"] in ("anomalies", "alerts")]) <= 1


def test_a_bad_message_gets_an_error_and_the_connection_stays(app: App) -> None:
    async def scenario() -> list[Any]:
        ws = await websocket_connect(ws_url(app))
        out = []
        for bad in (
            "not json",
            json.dumps([1, 2]),
            json.dumps({"action": "dance"}),
            json.dumps({"action": "subscribe", "channels": ["gossip"]}),
            json.dumps({"action": "subscribe", "symbols": ["BTC USDT"]}),
        ):
            await ws.write_message(bad)
            out.append(json.loads(await asyncio.wait_for(ws.read_message(), timeout=5)))
        await ws.write_message(json.dumps({"action": "ping"}))
        out.append(json.loads(await asyncio.wait_for(ws.read_message(), timeout=5)))
        ws.close()
        return out

    out = asyncio.run(scenario())
    assert [m["type"] for m in out] == ["error"] * 5 + ["pong"]
    assert "channels are any of" in out[3]["error"] and "BTC USDT" in out[4]["error"]


def _raw_slow_client(port: int) -> socket.socket:
    """A WebSocket client that subscribes to everything and then never reads."""
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # fill up quickly
    s.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    assert b"101" in s.recv(4096).split(b"\r\n")[0]
    payload = json.dumps(
        {"action": "subscribe", "channels": ["ticks", "signals", "anomalies", "rollups"]}
    ).encode()
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)
    return s


def test_a_slow_client_is_conflated_then_dropped_and_slows_nobody(app: App) -> None:
    slow = _raw_slow_client(app.port)
    try:
        before = app.health()["ticks_processed"]
        t0 = time.monotonic()
        hello = {"action": "subscribe", "channels": ["ticks"], "symbols": ["*"]}
        msgs = asyncio.run(_collect(ws_url(app), hello, 8.0))  # meanwhile, a reader keeps up
        elapsed = time.monotonic() - t0
        rate = (app.health()["ticks_processed"] - before) / elapsed
        assert rate > 600  # the simulator's 1,000 ticks/s keep flowing through the pipeline
        ticks = [m for m in msgs if m["type"] == "ticks"]
        assert len(ticks) >= 100 and [m["seq"] for m in msgs] == list(range(1, len(msgs) + 1))
        # the slow one lagged for longer than ws_drop_after_s (3 s) and was disconnected
        events = app.wait(
            lambda: [
                e
                for e in app.get("/api/v1/observability/events?type=websocket")["data"]
                if e["message"] == "disconnected a slow client"
            ],
            timeout=30,
            what="the slow client's disconnection",
        )
        assert events
    finally:
        slow.close()
