"""Per-rule notification settings (the seed's ``PUT /notifications/settings``): where a rule's
alerts also go, besides its routes. Stored in PostgreSQL, read by the notifier and the outbox.

A setting of type ``email`` sends through the configured SMTP channel to its recipient;
``slack`` and ``webhook`` post to the recipient URL. Each setting is a channel named
``setting:<id>``.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any, Literal

import psycopg
from pydantic import BaseModel, ConfigDict, Field, field_validator

from rxpipe.notify.channels import Channel, EmailChannel, SlackChannel, WebhookChannel

PREFIX = "setting:"


class NotificationSetting(BaseModel):
    """One rule's extra destination; validated where it enters (the REST body)."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], max_length=64)
    alert_rule_id: str = Field(min_length=1, max_length=200)
    type: Literal["email", "slack", "webhook"]
    recipient: str = Field(min_length=3, max_length=2000)
    template: str = Field("", max_length=4000)
    enabled: bool = True

    @field_validator("recipient")
    @classmethod
    def _recipient(cls, v: str, info: Any) -> str:
        kind = info.data.get("type")
        if kind in ("slack", "webhook") and not v.startswith(("http://", "https://")):
            raise ValueError(f"a {kind} recipient is an http(s) URL")
        if kind == "email" and "@" not in v:
            raise ValueError("an email recipient is an address such as desk@example.org")
        return v


class SettingsStore:
    """CRUD over ``notification_settings``."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self.conn = conn

    def list(self) -> list[dict[str, Any]]:
        cur = self.conn.execute(
            "SELECT id, alert_rule_id, type, recipient, template, enabled, created_at, updated_at "
            "FROM notification_settings ORDER BY created_at, id"
        )
        names = [d.name for d in cur.description or []]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def save(self, s: NotificationSetting) -> None:
        self.conn.execute(
            "INSERT INTO notification_settings (id, alert_rule_id, type, recipient, template, enabled) "
            "VALUES (%s, %s, %s, %s, %s, %s) ON CONFLICT (id) DO UPDATE SET "
            "alert_rule_id = excluded.alert_rule_id, type = excluded.type, "
            "recipient = excluded.recipient, template = excluded.template, "
            "enabled = excluded.enabled, updated_at = now()",
            (s.id, s.alert_rule_id, s.type, s.recipient, s.template, s.enabled),
        )


class RuleDestinations:
    """The enabled settings, refreshed from the database at most every ``refresh_s``."""

    def __init__(
        self,
        connect: Callable[[], psycopg.Connection],
        email: EmailChannel | None = None,
        *,
        refresh_s: float = 5.0,
    ) -> None:
        self._connect = connect
        self.email = email
        self.refresh_s = refresh_s
        self._settings: dict[str, dict[str, Any]] = {}
        self._loaded_at = -1e18
        self._lock = threading.Lock()

    def refresh(self, force: bool = False) -> None:
        if not force and time.monotonic() - self._loaded_at < self.refresh_s:
            return
        try:
            with self._connect() as conn:
                rows = SettingsStore(conn).list()
        except psycopg.Error:
            return  # keep what we had; the outbox retries anyway
        with self._lock:
            self._settings = {r["id"]: r for r in rows if r["enabled"]}
            self._loaded_at = time.monotonic()

    def channels_for(self, rule_id: str) -> tuple[str, ...]:
        self.refresh()
        with self._lock:
            return tuple(
                PREFIX + sid for sid, r in self._settings.items() if r["alert_rule_id"] == rule_id
            )

    def template(self, channel: str) -> str:
        with self._lock:
            r = self._settings.get(channel.removeprefix(PREFIX))
        return str(r["template"]) if r else ""

    def channel(self, name: str) -> Channel | None:
        """The channel behind ``setting:<id>``; None if there is no such enabled setting."""
        if not name.startswith(PREFIX):
            return None
        self.refresh()
        with self._lock:
            r = self._settings.get(name.removeprefix(PREFIX))
        if r is None:
            return None
        if r["type"] == "slack":
            return SlackChannel(r["recipient"], name=name)
        if r["type"] == "webhook":
            return WebhookChannel(r["recipient"], name=name)
        if self.email is None:
            return None
        return dataclasses.replace(self.email, recipients=[r["recipient"]], name=name)
