"""``GET /ws``: live ticks, signals, anomalies, alerts and rollups over a WebSocket.

A client subscribes with ``{"action": "subscribe", "channels": [...], "symbols": [...]}`` and
receives ``{"type": <channel>, "seq": n, "data": [...]}`` every 50 ms while there is news; ``seq``
counts the messages sent to it, so a gap means messages were dropped. The seed's clients send
``{"action": "subscribe", "symbols": [...]}`` without channels and receive, as before, JSON
arrays of price updates ``{symbol, price, volume, timestamp, source}``.

A slow client never slows anyone else: the broadcaster only queues. Once a client lags by
``max_queue`` messages its queued ticks and signals are dropped (newer ones supersede them) and
it is told so (``{"type": "lagged", "dropped": n}``); one that stays behind for ``drop_after_s``
is disconnected (close code 1013).
"""

from __future__ import annotations

import itertools
import json
import logging
import re
import time
from collections import deque
from typing import Any

import tornado.websocket
from tornado.ioloop import PeriodicCallback

from rxpipe.live.hub import CHANNELS, LiveHub, Outbound
from rxpipe.observability import EventLog

log = logging.getLogger(__name__)

SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$")
CONFLATABLE = ("ticks", "signals", "lagged")
ALL = "*"


class Broadcaster:
    """Drains the hub every ``every_ms`` and hands each client what it subscribed to."""

    def __init__(
        self,
        hub: LiveHub,
        events: EventLog | None = None,
        *,
        every_ms: float = 50.0,
        max_queue: int = 100,
        drop_after_s: float = 10.0,
    ) -> None:
        self.hub = hub
        self.events = events
        self.max_queue = max_queue
        self.drop_after_s = drop_after_s
        self.clients: set[WebSocketHandler] = set()
        self.dropped_messages = 0
        self.disconnected_slow = 0
        self._timer = PeriodicCallback(self.tick, every_ms)

    def start(self) -> Broadcaster:
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.stop()

    def tick(self) -> None:
        wanted: set[str] = set()
        for c in self.clients:
            wanted |= c.channels
        out = self.hub.drain(frozenset(wanted))
        if not out or not self.clients:
            return
        joined: dict[tuple[str, Any], str] = {}  # (channel, symbols) -> data, built once
        for client in list(self.clients):
            try:
                client.deliver(out, joined)
            except tornado.websocket.WebSocketClosedError:
                self.clients.discard(client)

    def record(self, kind: str, message: str, **fields: Any) -> None:
        if self.events is not None:
            self.events.record(kind, message, **fields)


def _data(
    out: Outbound, channel: str, symbols: frozenset[str] | str, joined: dict[tuple[str, Any], str]
) -> str:
    key = (channel, symbols)
    found = joined.get(key)
    if found is None:
        frags = out.channel(channel)
        if symbols == ALL:
            parts = itertools.chain.from_iterable(frags.values())
        else:
            parts = itertools.chain.from_iterable(frags.get(s, ()) for s in sorted(symbols))
        found = joined[key] = ",".join(parts)
    return found


class WebSocketHandler(tornado.websocket.WebSocketHandler):
    def initialize(self, broadcaster: Broadcaster) -> None:
        self.broadcaster = broadcaster
        self.channels: set[str] = set()
        self.symbols: set[str] | str = set()
        self.legacy = False
        self.seq = 0
        self.queue: deque[tuple[str, str]] = deque()  # (channel, message)
        self.sending = False
        self.lagging_since: float | None = None
        self.dropped = 0  # messages dropped in all
        self.lag_dropped = 0  # ... since the client last caught up

    # -- connection ---------------------------------------------------------------------------

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.broadcaster.clients.add(self)
        self.set_nodelay(True)

    def on_close(self) -> None:
        self.broadcaster.clients.discard(self)

    def on_message(self, message: str | bytes) -> None:
        try:
            doc = json.loads(message)
            if not isinstance(doc, dict):
                raise ValueError("a message is a JSON object")
            self._handle(doc)
        except ValueError as exc:
            self._send(
                "error", json.dumps({"type": "error", "seq": self._next(), "error": str(exc)})
            )

    def _handle(self, doc: dict[str, Any]) -> None:
        action = doc.get("action")
        if action == "ping":
            self._send("pong", json.dumps({"type": "pong", "seq": self._next()}))
            return
        if action not in ("subscribe", "unsubscribe"):
            raise ValueError(f"action is subscribe, unsubscribe or ping; found {action!r}")
        symbols = doc.get("symbols", [ALL])
        if not isinstance(symbols, list) or len(symbols) > 1000:
            raise ValueError('symbols is a list of at most 1000 symbols (or ["*"] for all)')
        for s in symbols:
            if not isinstance(s, str) or not (s == ALL or SYMBOL.match(s)):
                raise ValueError(f"symbol {str(s)[:40]!r} is not a symbol such as BTCUSDT")
        if "channels" in doc:
            channels = doc["channels"]
            if not isinstance(channels, list) or not all(c in CHANNELS for c in channels):
                raise ValueError(f"channels are any of {', '.join(CHANNELS)}")
        else:  # the seed's protocol: price updates only, as plain arrays
            channels = ["ticks"]
            self.legacy = self.legacy or (action == "subscribe" and not self.channels)
        everything = ALL in symbols or not symbols
        if action == "subscribe":
            self.channels |= set(channels)
            if everything or self.symbols == ALL:
                self.symbols = ALL
            else:
                assert isinstance(self.symbols, set)
                self.symbols |= set(symbols)
        else:
            if everything:
                self.channels -= set(channels)
            elif isinstance(self.symbols, set):
                self.symbols -= set(symbols)
        if not self.legacy:
            self._send(
                "subscribed",
                json.dumps(
                    {
                        "type": "subscribed",
                        "seq": self._next(),
                        "channels": sorted(self.channels),
                        "symbols": self.symbols if self.symbols == ALL else sorted(self.symbols),
                    }
                ),
            )

    # -- sending -----------------------------------------------------------------------------

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def deliver(self, out: Outbound, joined: dict[tuple[str, Any], str]) -> None:
        if not self.channels or not self.symbols:
            return
        symbols: frozenset[str] | str = (
            self.symbols if self.symbols == ALL else frozenset(self.symbols)
        )
        if self.legacy:
            data = _data(out, "ticks", symbols, joined)
            if data:
                self._send("ticks", f"[{data}]")
            return
        for channel in CHANNELS:
            if channel not in self.channels:
                continue
            data = _data(out, channel, symbols, joined)
            if not data:
                continue
            extra = (
                f',"dropped":{out.dropped_ticks}'
                if channel == "ticks" and out.dropped_ticks
                else ""
            )
            self._send(
                channel, f'{{"type":"{channel}","seq":{self._next()}{extra},"data":[{data}]}}'
            )

    def _send(self, channel: str, message: str) -> None:
        self.queue.append((channel, message))
        if len(self.queue) > self.broadcaster.max_queue:
            self._conflate()
        if not self.sending:
            self.sending = True
            tornado.ioloop.IOLoop.current().add_callback(self._pump)

    def _conflate(self) -> None:
        now = time.monotonic()
        self.lagging_since = self.lagging_since or now
        if now - self.lagging_since > self.broadcaster.drop_after_s:
            self.broadcaster.disconnected_slow += 1
            self.broadcaster.record(
                "websocket", "disconnected a slow client", peer=self.request.remote_ip
            )
            self.broadcaster.clients.discard(self)
            self.queue.clear()
            self.close(1013, "too slow: the client fell behind for too long")
            return
        kept = deque(item for item in self.queue if item[0] not in CONFLATABLE)
        dropped = len(self.queue) - len(kept)
        if dropped:
            self.dropped += dropped
            self.broadcaster.dropped_messages += dropped
            kept.append(
                ("lagged", json.dumps({"type": "lagged", "seq": self._next(), "dropped": dropped}))
            )
        self.queue = kept

    async def _pump(self) -> None:
        try:
            while self.queue:
                _, message = self.queue.popleft()
                await self.write_message(message)
            self.lagging_since = None
            self.lag_dropped = 0
        except tornado.websocket.WebSocketClosedError:
            self.broadcaster.clients.discard(self)
        finally:
            self.sending = False
