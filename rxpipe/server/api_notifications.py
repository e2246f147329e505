"""``/api/v1/notifications``: the notification log, a test message per channel type, and the
seed's per-rule notification settings."""

from __future__ import annotations

import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rxpipe.errors import NotifyError
from rxpipe.notify.channels import from_settings as channel_from_settings
from rxpipe.notify.message import Message
from rxpipe.notify.settings import NotificationSetting, SettingsStore
from rxpipe.server.base import ApiError, ApiHandler
from rxpipe.timestamps import iso

STATUSES = ("sent", "failed", "retrying", "suppressed", "rate_limited", "test_sent", "test_failed")


class TestBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    type: Literal["email", "slack", "webhook", "log"]
    channel: str | None = Field(None, max_length=100, description="a configured channel's name")


class SettingsBody(BaseModel):
    """One setting, or several under ``settings``."""

    model_config = ConfigDict(extra="ignore")

    settings: list[NotificationSetting] = Field(min_length=1, max_length=200)


def _setting_json(row: dict[str, Any]) -> dict[str, Any]:
    return {
        **{k: row[k] for k in ("id", "alert_rule_id", "type", "recipient", "template", "enabled")},
        "created_at": iso(int(row["created_at"].timestamp() * 1e9)),
        "updated_at": iso(int(row["updated_at"].timestamp() * 1e9)),
    }


class _NotifyBase(ApiHandler):
    def channel_types(self) -> dict[str, str]:
        return {name: cfg.type for name, cfg in self.ctx.settings.notify.channels.items()}

    def db(self) -> Any:
        db = self.ctx.runtime.db
        if db is None:
            raise ApiError(503, "storage is disabled: this route needs the database")
        return db


class NotificationsHandler(_NotifyBase):
    async def get(self) -> None:
        status = self.choice("status", STATUSES)
        page = await self.reads().notifications(
            self.range(), status=status, channel=self.query("channel")
        )
        types = self.channel_types()
        for doc in page.data:
            name = doc["type"]
            doc["type"] = types.get(name, "rule" if name.startswith("setting:") else name)
            doc["metadata"]["channel"] = name
        self.send(page.to_json())


class NotificationTestHandler(_NotifyBase):
    """Send a test message through a configured channel of a type, and say how it went."""

    async def post(self) -> None:
        body = self.body(TestBody)
        configured = self.ctx.settings.notify.channels
        names = [
            n
            for n, cfg in configured.items()
            if cfg.type == body.type and (body.channel is None or n == body.channel)
        ]
        if not names:
            raise ApiError(
                422,
                f"no {body.type} channel is configured"
                + (f" under the name {body.channel!r}" if body.channel else "")
                + "; configure one under notify.channels",
                field="type",
            )
        name = names[0]
        channel = channel_from_settings(name, configured[name])
        doc = {
            "fingerprint": "test",
            "rule_id": "test",
            "name": "rxpipe test notification",
            "symbol": "TEST",
            "status": "firing",
            "severity": "info",
            "value": None,
            "started_at": iso(time.time_ns()),
            "at": iso(time.time_ns()),
            "labels": {"alertname": "test"},
            "annotations": {"summary": "a test message from rxpipe: this channel works"},
            "repeat": False,
        }
        message = Message(name, "test", "test", [doc])
        db = self.db() if self.ctx.runtime.db is not None else None

        def send() -> str | None:
            error = None
            try:
                channel.send(message, f"rxpipe-test-{time.time_ns()}")
            except NotifyError as exc:
                error = str(exc)
            if db is not None:
                with db.connect() as conn:
                    conn.execute(
                        "INSERT INTO notification_log (channel, rule_id, status, error) "
                        "VALUES (%s, 'test', %s, %s)",
                        (name, "test_failed" if error else "test_sent", error),
                    )
            return error

        error = await self.blocking(send)
        if error is not None:
            raise ApiError(502, f"the {body.type} channel {name!r} failed: {error}", channel=name)
        self.send({"sent": True, "type": body.type, "channel": name})


class NotificationSettingsHandler(_NotifyBase):
    async def get(self) -> None:
        db = self.db()

        def read() -> list[dict[str, Any]]:
            with db.connect() as conn:
                return SettingsStore(conn).list()

        self.send({"data": [_setting_json(r) for r in await self.blocking(read)]})

    async def put(self) -> None:
        import json

        try:
            raw = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        single = isinstance(raw, dict) and "settings" not in raw
        body = (
            SettingsBody(settings=[self.body(NotificationSetting)])
            if single
            else self.body(SettingsBody)
        )
        if any(s.type == "email" for s in body.settings) and not any(
            c.type == "email" for c in self.ctx.settings.notify.channels.values()
        ):
            raise ApiError(
                422,
                "type: an email setting sends through the configured SMTP server, and none is "
                "configured (notify.channels with type: email)",
                field="type",
            )
        db = self.db()

        def write() -> list[dict[str, Any]]:
            with db.connect() as conn, conn.transaction():
                store = SettingsStore(conn)
                for s in body.settings:
                    store.save(s)
                return store.list()

        rows = await self.blocking(write)
        if self.ctx.runtime.destinations is not None:
            await self.blocking(lambda: self.ctx.runtime.destinations.refresh(force=True))  # type: ignore[union-attr]
        saved = {s.id for s in body.settings}
        self.send({"data": [_setting_json(r) for r in rows if r["id"] in saved]})
