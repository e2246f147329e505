"""From alert events to notifications: routing by labels and severity, grouping (group_wait,
group_interval) so a burst becomes one message, rate limits, and the outbox."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rxpipe.notify.message import Message, alert_doc
from rxpipe.notify.outbox import Outbox
from rxpipe.notify.ratelimit import RateLimiter
from rxpipe.rules.engine import AlertEvent
from rxpipe.rules.model import SEVERITIES

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Route:
    """Alerts whose labels match ``match`` and whose severity is at least ``min_severity`` go to
    ``channels``, grouped by ``group_by`` labels."""

    channels: tuple[str, ...]
    match: dict[str, str] = field(default_factory=dict)
    min_severity: str = "info"
    group_by: tuple[str, ...] = ("alertname",)
    group_wait_s: float = 10.0
    group_interval_s: float = 60.0

    @classmethod
    def from_settings(cls, cfg: Any, group_wait_s: float, group_interval_s: float) -> Route:
        """A route from ``rxpipe.config.RouteSettings``; unset timings take the defaults."""
        return cls(
            tuple(cfg.channels),
            dict(cfg.match),
            cfg.min_severity,
            tuple(cfg.group_by),
            group_wait_s if cfg.group_wait_s is None else cfg.group_wait_s,
            group_interval_s if cfg.group_interval_s is None else cfg.group_interval_s,
        )

    def matches(self, e: AlertEvent) -> bool:
        return SEVERITIES.index(e.severity) >= SEVERITIES.index(self.min_severity) and all(
            e.labels.get(k) == v for k, v in self.match.items()
        )


@dataclass
class _Group:
    route: Route
    channel: str
    rule_id: str
    key: str
    events: dict[str, AlertEvent] = field(default_factory=dict)  # latest per fingerprint
    due: float = 0.0
    flushed_once: bool = False


class Notifier:
    """Feeds alert events to the outbox. Routes are tried in order and the first that matches
    wins; with no route matching, an alert goes to its rule's own channels."""

    def __init__(
        self,
        outbox: Outbox,
        *,
        routes: list[Route] | None = None,
        limiter: RateLimiter | None = None,
        group_wait_s: float = 10.0,
        group_interval_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        destinations: Any = None,
    ) -> None:
        self.outbox = outbox
        # per-rule notification settings (rxpipe.notify.settings.RuleDestinations): more channels
        self.destinations = destinations
        self.routes = routes or []
        self.limiter = limiter if limiter is not None else RateLimiter()
        self.group_wait_s = group_wait_s
        self.group_interval_s = group_interval_s
        self.clock = clock
        self._groups: dict[str, _Group] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def route(self, e: AlertEvent) -> Route:
        for r in self.routes:
            if r.matches(e):
                return r
        return Route(
            e.channels, group_wait_s=self.group_wait_s, group_interval_s=self.group_interval_s
        )

    def on_event(self, e: AlertEvent) -> None:
        if e.state not in ("firing", "resolved"):
            return
        route = self.route(e)
        if not e.notify:  # silenced or inhibited: logged, not sent
            for ch in route.channels:
                self.outbox.record(
                    ch, e.rule_id, "suppressed", "silenced" if e.silenced else "inhibited"
                )
            return
        now = self.clock()
        channels = route.channels
        if self.destinations is not None:
            channels = channels + self.destinations.channels_for(e.rule_id)
        with self._lock:
            for ch in channels:
                labels = "|".join(f"{k}={e.labels.get(k, '')}" for k in route.group_by)
                key = f"{ch}|{labels}"
                g = self._groups.get(key)
                if g is None:
                    g = self._groups[key] = _Group(
                        route, ch, e.rule_id, key, due=now + route.group_wait_s
                    )
                elif not g.events:
                    g.due = now + (route.group_interval_s if g.flushed_once else route.group_wait_s)
                g.events[f"{e.fingerprint}@{e.state}"] = e

    def flush_due(self, *, everything: bool = False) -> int:
        """Turn the groups whose time has come (``everything``: all groups holding events) into
        messages; returns how many were enqueued."""
        now = self.clock()
        with self._lock:
            ready = [g for g in self._groups.values() if g.events and (everything or g.due <= now)]
            batches = [(g, list(g.events.values())) for g in ready]
            for g in ready:
                g.events = {}
                g.flushed_once = True
                g.due = now + g.route.group_interval_s
        sent = 0
        for g, events in batches:
            template = self.destinations.template(g.channel) if self.destinations else ""
            message = Message(g.channel, g.rule_id, g.key, [alert_doc(e) for e in events], template)
            if not self.limiter.allow(g.rule_id, g.channel, now):
                self.outbox.record(g.channel, g.rule_id, "rate_limited", message.title)
                continue
            if self.outbox.enqueue(message) is not None:
                sent += 1
        return sent

    def start(self, every_s: float = 0.05) -> Notifier:
        def run() -> None:
            while not self._stop.wait(every_s):
                try:
                    self.flush_due()
                except Exception:  # keep notifying; the error is in the log
                    log.exception("notifier: flush failed")

        self._thread = threading.Thread(target=run, name="rxpipe-notifier", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the timer and enqueue every group still waiting, so a stop loses nothing."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(2.0)
        self.flush_due(everything=True)
