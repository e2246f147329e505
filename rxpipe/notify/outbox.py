"""The durable outbox: notifications are written to PostgreSQL before they are sent, sent by a
dispatcher that retries with exponential backoff and jitter, and logged attempt by attempt.

Delivery is at least once: a row is marked sent after the channel accepted it. The delivery id
(``X-Rxpipe-Delivery``, the email Message-ID) lets a receiver drop the one duplicate a crash
between sending and marking could cause. The same alert state is enqueued once (``dedup_key``).
"""

from __future__ import annotations

import logging
import random
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import psycopg
from psycopg.types.json import Jsonb

from rxpipe.errors import NotifyError
from rxpipe.notify.channels import Channel
from rxpipe.notify.message import Message

log = logging.getLogger(__name__)


class Outbox:
    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        channels: dict[str, Channel],
        *,
        max_attempts: int = 8,
        base_backoff_s: float = 1.0,
        max_backoff_s: float = 300.0,
        poll_s: float = 0.2,
        resolver: Callable[[str], Channel | None] | None = None,
    ) -> None:
        self._connect = connect
        self.channels = channels
        self.resolver = resolver  # channels not configured by name (per-rule settings)
        self.max_attempts = max_attempts
        self.base_backoff_s = base_backoff_s
        self.max_backoff_s = max_backoff_s
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None
        self.outcomes: Counter[tuple[str, str]] = Counter()  # (channel, status), for metrics

    # -- writing ----------------------------------------------------------------------------

    def enqueue(self, message: Message) -> int | None:
        """Store a notification to send; None if the same alert states were enqueued before."""
        with self._connect() as conn:
            row = conn.execute(
                "INSERT INTO notification_outbox (dedup_key, channel, rule_id, payload) VALUES (%s, %s, %s, %s) "
                "ON CONFLICT (dedup_key) DO NOTHING RETURNING id",
                (
                    message.dedup_key(),
                    message.channel,
                    message.rule_id,
                    Jsonb(message.to_payload()),
                ),
            ).fetchone()
        self._wake.set()
        return int(row[0]) if row else None

    def record(self, channel: str, rule_id: str, status: str, error: str | None = None) -> None:
        """Log an outcome that never reached the outbox (suppressed, rate_limited)."""
        self.outcomes[(channel, status)] += 1
        with self._connect() as conn:
            conn.execute(
                "INSERT INTO notification_log (channel, rule_id, status, error) VALUES (%s, %s, %s, %s)",
                (channel, rule_id, status, error),
            )

    # -- sending ----------------------------------------------------------------------------

    def backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter, capped."""
        ceiling = min(self.max_backoff_s, self.base_backoff_s * 2 ** (attempt - 1))
        return ceiling / 2 + random.uniform(0, ceiling / 2)  # noqa: S311 - jitter, not security

    def dispatch_once(self, limit: int = 50) -> int:
        """Send what is due; returns how many rows were attempted."""
        done = 0
        with self._connect() as conn:
            while done < limit:
                with conn.transaction():
                    row = conn.execute(
                        "SELECT id, channel, rule_id, payload, attempts FROM notification_outbox "
                        "WHERE status IN ('pending', 'retrying') AND next_attempt_at <= now() "
                        "ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED"
                    ).fetchone()
                    if row is None:
                        break
                    self._attempt(conn, *row)
                done += 1
        return done

    def _attempt(
        self,
        conn: psycopg.Connection,
        oid: int,
        channel: str,
        rule_id: str,
        payload: dict,
        attempts: int,
    ) -> None:
        attempt = attempts + 1
        target = self.channels.get(channel)
        if target is None and self.resolver is not None:
            target = self.resolver(channel)
        try:
            if target is None:
                raise NotifyError(f"no channel named {channel!r} is configured")
            target.send(Message.from_payload(payload), f"rxpipe-{oid}")
        except NotifyError as exc:
            final = attempt >= self.max_attempts or target is None
            status = "failed" if final else "retrying"
            delay = timedelta(seconds=self.backoff(attempt))
            conn.execute(
                "UPDATE notification_outbox SET status = %s, attempts = %s, last_error = %s, "
                "next_attempt_at = %s WHERE id = %s",
                (status, attempt, str(exc), datetime.now(UTC) + delay, oid),
            )
            self._log(conn, oid, channel, rule_id, status, attempt, str(exc))
            log.warning(
                "notification %d via %s %s (attempt %d): %s", oid, channel, status, attempt, exc
            )
            return
        conn.execute(
            "UPDATE notification_outbox SET status = 'sent', attempts = %s, sent_at = now(), "
            "last_error = NULL WHERE id = %s",
            (attempt, oid),
        )
        self._log(conn, oid, channel, rule_id, "sent", attempt, None)

    def _log(
        self,
        conn: psycopg.Connection,
        oid: int,
        channel: str,
        rule_id: str,
        status: str,
        attempt: int,
        error: str | None,
    ) -> None:
        self.outcomes[(channel, status)] += 1
        conn.execute(
            "INSERT INTO notification_log (outbox_id, channel, rule_id, status, attempt, error) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            (oid, channel, rule_id, status, attempt, error),
        )

    def start(self) -> Outbox:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="rxpipe-outbox", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float | None = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.dispatch_once()
            except psycopg.Error as exc:
                log.warning("outbox: database error (%s); retrying", str(exc).splitlines()[0])
            self._wake.wait(self.poll_s)
            self._wake.clear()
