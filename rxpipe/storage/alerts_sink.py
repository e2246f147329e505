"""The alert sink: rules evaluated on each signal batch, alert events recorded on a writer thread,
rules and silences reloaded from the database when they change (no restart)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

import psycopg

from rxpipe.errors import StorageError
from rxpipe.rules.engine import AlertEngine, AlertEvent
from rxpipe.signals import SignalBatch
from rxpipe.storage.gather import Flushes, gather
from rxpipe.storage.rules import AlertStore, RuleStore

log = logging.getLogger(__name__)


class AlertSink:
    """Pipeline sink: ``put`` runs the rules (vectorised, on the pipeline's thread) and queues
    the alert events; a writer thread stores them and polls for rule changes every
    ``reload_s`` seconds. ``listeners`` get every event (notifications, WebSocket...)."""

    def __init__(
        self,
        engine: AlertEngine,
        connect: Callable[[], psycopg.Connection],
        *,
        reload_s: float = 5.0,
    ) -> None:
        self.engine = engine
        self._connect = connect
        self.reload_s = reload_s
        self.listeners: list[Callable[[AlertEvent], Any]] = []
        self.on_reload: Callable[[int], Any] | None = None  # told how many rules are enabled
        self._queue: list[AlertEvent] = []
        self._first_at = 0.0  # when the oldest queued event arrived
        self._cond = threading.Condition()
        self._flushes = Flushes(self._cond)
        self._busy = False
        self._closing = False
        self._version = ""
        self.events = 0
        self.stored = 0
        self.last_error: str | None = None
        self._thread = threading.Thread(target=self._run, name="rxpipe-alert-writer", daemon=True)
        self._thread.start()

    def put(self, batch: Any) -> None:
        if not isinstance(batch, SignalBatch):
            return
        events = self.engine.update(batch)
        if not events:
            return
        self.events += len(events)
        for listener in self.listeners:
            for e in events:
                listener(e)
        with self._cond:
            if not self._queue:
                self._first_at = time.monotonic()
            self._queue.extend(events)
            self._cond.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        return self._flushes.wait_idle(lambda: not self._queue and not self._busy, deadline)

    def close(self, timeout: float | None = None) -> bool:
        done = self.flush(timeout)
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout=1.0)
        return done

    def reload(self, conn: psycopg.Connection) -> bool:
        """Load rules if they changed, and the silences and acknowledgements (which other
        processes, the API or the dashboard may have changed); True if the rules changed."""
        alerts = AlertStore(conn)
        self.engine.silences = alerts.silences()
        self.engine.acknowledged |= alerts.acknowledged_firing()
        rules = RuleStore(conn)
        version = rules.version()
        if version == self._version:
            return False
        self.engine.set_rules(rules.list())
        self._version = version
        log.info("loaded %d enabled rule(s)", len(self.engine.rules))
        if self.on_reload is not None:
            self.on_reload(len(self.engine.rules))
        return True

    def _run(self) -> None:
        conn: psycopg.Connection | None = None
        next_reload = 0.0
        while True:
            with self._cond:
                while not self._queue and not self._closing and time.monotonic() < next_reload:
                    self._cond.wait(max(0.0, next_reload - time.monotonic()))
                if self._closing and not self._queue:
                    break
                if self._queue:
                    gather(self._cond, self._first_at, lambda: self._closing or bool(self._flushes))
                work, self._queue = self._queue, []
                self._busy = bool(work)
            try:
                conn = conn or self._connect()
                if time.monotonic() >= next_reload:
                    self.reload(conn)
                    next_reload = time.monotonic() + self.reload_s
                if work:
                    self.stored += AlertStore(conn).record(work)
                self.last_error = None
            except (psycopg.Error, StorageError) as exc:
                self.last_error = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                log.warning("alert write failed (%s); retrying", self.last_error)
                if conn is not None:
                    conn.close()
                conn = None
                with self._cond:
                    self._queue[:0] = work  # keep them, in order
                time.sleep(0.5)
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()
        if conn is not None:
            conn.close()
