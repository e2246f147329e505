"""``/api/v1/alerts`` (list, get, create, update, delete, resolve, acknowledge, history) and
``/api/v1/silences`` (list, create, expire)."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator, model_validator

from rxpipe.durations import parse_duration
from rxpipe.errors import InputError
from rxpipe.rules.engine import Silence, fingerprint
from rxpipe.rules.model import SEVERITIES
from rxpipe.server.base import ApiError, ApiHandler
from rxpipe.storage.rules import AlertStore
from rxpipe.timestamps import iso, parse_time

STATUSES = ("active", "resolved", "silenced", "acknowledged", "pending", "firing", "inactive")


def _severity(v: Any) -> str:
    s = {"warning": "medium"}.get(str(v).lower(), str(v).lower())
    if s not in SEVERITIES:
        raise ValueError(f"severity is one of {', '.join(SEVERITIES)} (or warning); found {v!r}")
    return s


class AlertCreate(BaseModel):
    """A hand-raised alert, in the seed's fields."""

    model_config = ConfigDict(extra="ignore")

    name: str = Field(min_length=1, max_length=200)
    symbol: str = Field(min_length=1, max_length=32, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$")
    alert_rule_id: str = Field("manual", min_length=1, max_length=200)
    description: str = Field("", max_length=4000)
    severity: str = "medium"
    current_value: float | None = Field(None, allow_inf_nan=False)
    threshold: float | None = Field(None, allow_inf_nan=False)
    labels: dict[str, str] = Field(default_factory=dict)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("severity", mode="before")
    @classmethod
    def _sev(cls, v: Any) -> str:
        return _severity(v)


class AlertUpdate(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["resolved", "acknowledged", "active"] | None = None
    description: str | None = Field(None, max_length=4000)
    labels: dict[str, str] | None = None
    annotations: dict[str, str] | None = None


class SilenceCreate(BaseModel):
    """Label matchers (exact values) and a time range: ``ends_at`` or a ``duration``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(default_factory=lambda: uuid.uuid4().hex[:12], min_length=1, max_length=64)
    matchers: dict[str, str] = Field(min_length=1)
    starts_at: str | None = None
    ends_at: str | None = None
    duration: str | None = None
    comment: str = Field("", max_length=2000)
    _range: tuple[int, int] = PrivateAttr((0, 0))

    @model_validator(mode="after")
    def _times(self) -> SilenceCreate:
        if self.ends_at is None and self.duration is None:
            raise ValueError("give ends_at (a time) or duration (such as 1h)")
        try:
            start = parse_time(self.starts_at) if self.starts_at else time.time_ns()
            end = (
                parse_time(self.ends_at)
                if self.ends_at
                else start + int(parse_duration(self.duration or "0") * 1e9)
            )
        except InputError as exc:
            raise ValueError(str(exc)) from None
        if end <= start:
            raise ValueError("a silence must end after it starts")
        self._range = (start, end)
        return self

    def silence(self) -> Silence:
        start, end = self._range
        return Silence(self.id, dict(self.matchers), start, end, self.comment)


class _AlertsBase(ApiHandler):
    async def found(self, alert_id: str) -> dict[str, Any]:
        doc = await self.reads().alert(alert_id)
        if doc is None:
            raise ApiError(404, f"no alert {alert_id[:64]!r}", field="id")
        return doc

    def engine_acknowledge(self, alert_id: str) -> None:
        sink = self.ctx.runtime.alert_sink
        if sink is not None:
            sink.engine.acknowledge(alert_id)

    def store(self) -> AlertStore:
        db = self.ctx.runtime.db
        if db is None:
            raise ApiError(503, "storage is disabled: this route needs the database")
        return AlertStore(db.connect())

    async def store_call(self, fn_name: str, *args: Any, **kwargs: Any) -> Any:
        def run() -> Any:
            store = self.store()
            try:
                return getattr(store, fn_name)(*args, **kwargs)
            finally:
                store.conn.close()

        return await self.blocking(run)


class AlertsHandler(_AlertsBase):
    async def get(self) -> None:
        status = self.choice("status", STATUSES)
        severity = self.choice("severity", SEVERITIES)
        symbol = self.query("symbol")
        if symbol is not None:
            symbol = self.symbol(symbol)
        page = await self.reads().alerts(
            self.range(),
            status=status,
            severity=severity,
            symbol=symbol,
            rule_id=self.query("rule_id"),
        )
        self.send(page.to_json())

    async def post(self) -> None:
        body = self.body(AlertCreate)
        labels = {**body.labels, "alertname": body.name, "symbol": body.symbol}
        fp = fingerprint(f"manual:{body.alert_rule_id}:{body.name}", body.symbol, body.labels)
        annotations = {"description": body.description} if body.description else {}
        created = await self.store_call(
            "create",
            fp,
            body.alert_rule_id,
            body.name,
            body.symbol,
            body.severity,
            body.current_value,
            labels,
            annotations,
            time.time_ns(),
        )
        if not created:
            raise ApiError(409, f"alert {fp} exists already", id=fp)
        self.set_header("Location", f"/api/v1/alerts/{fp}")
        self.send(await self.found(fp), 201)


class AlertHandler(_AlertsBase):
    async def get(self, alert_id: str) -> None:
        doc = await self.found(alert_id)
        if self.query("history") in ("1", "true"):
            doc["history"] = await self.reads().alert_history(alert_id)
        self.send(doc)

    async def put(self, alert_id: str) -> None:
        body = self.body(AlertUpdate)
        current = await self.found(alert_id)
        annotations = body.annotations
        if body.description is not None:
            annotations = {
                **(annotations or current["annotations"]),
                "description": body.description,
            }
        if body.labels is not None or annotations is not None:
            await self.store_call("update", alert_id, labels=body.labels, annotations=annotations)
        if body.status == "acknowledged":
            await self.store_call("acknowledge", alert_id)
            self.engine_acknowledge(alert_id)
        elif body.status == "resolved":
            await self.store_call("resolve", alert_id, time.time_ns())
            self.engine_acknowledge(alert_id)
        elif body.status == "active" and current["status"] != "active":
            raise ApiError(
                409,
                "an alert becomes active when its rule fires; it cannot be re-opened by hand",
                field="status",
            )
        self.send(await self.found(alert_id))

    async def delete(self, alert_id: str) -> None:
        if not await self.store_call("delete", alert_id):
            raise ApiError(404, f"no alert {alert_id[:64]!r}", field="id")
        self.send({"deleted": alert_id})


class AlertResolveHandler(_AlertsBase):
    async def post(self, alert_id: str) -> None:
        if not await self.store_call("resolve", alert_id, time.time_ns()):
            raise ApiError(404, f"no alert {alert_id[:64]!r}", field="id")
        self.engine_acknowledge(alert_id)
        self.send(await self.found(alert_id))


class AlertAcknowledgeHandler(_AlertsBase):
    async def post(self, alert_id: str) -> None:
        if not await self.store_call("acknowledge", alert_id):
            raise ApiError(404, f"no alert {alert_id[:64]!r}", field="id")
        self.engine_acknowledge(alert_id)
        self.send(await self.found(alert_id))


def silence_json(row: dict[str, Any], now: datetime | None = None) -> dict[str, Any]:
    now = now or datetime.now(UTC)
    starts, ends = row["starts_at"], row["ends_at"]
    state = "active" if starts <= now < ends else ("pending" if now < starts else "expired")
    return {
        "id": row["id"],
        "matchers": row["matchers"],
        "starts_at": iso(int(starts.timestamp() * 1e9)),
        "ends_at": iso(int(ends.timestamp() * 1e9)),
        "comment": row["comment"],
        "status": state,
        "created_at": iso(int(row["created_at"].timestamp() * 1e9)),
    }


class SilencesHandler(_AlertsBase):
    async def get(self) -> None:
        rows = await self.store_call("silence_rows")
        state = self.choice("status", ("active", "pending", "expired"))
        docs = [silence_json(r) for r in rows]
        self.send({"data": [d for d in docs if state is None or d["status"] == state]})

    async def post(self) -> None:
        s = self.body(SilenceCreate).silence()
        await self.store_call("add_silence", s)
        sink = self.ctx.runtime.alert_sink
        if sink is not None:  # at once here; other processes pick it up on their next reload
            sink.engine.silences = [x for x in sink.engine.silences if x.id != s.id] + [s]
        rows = await self.store_call("silence_rows")
        self.set_header("Location", f"/api/v1/silences/{s.id}")
        self.send(next(silence_json(r) for r in rows if r["id"] == s.id), 201)


class SilenceHandler(_AlertsBase):
    async def get(self, silence_id: str) -> None:
        rows = await self.store_call("silence_rows")
        found = next((r for r in rows if r["id"] == silence_id), None)
        if found is None:
            raise ApiError(404, f"no silence {silence_id[:64]!r}", field="id")
        self.send(silence_json(found))

    async def delete(self, silence_id: str) -> None:
        now = time.time_ns()
        if not await self.store_call("expire_silence", silence_id, now):
            raise ApiError(404, f"no silence {silence_id[:64]!r}", field="id")
        sink = self.ctx.runtime.alert_sink
        if sink is not None:
            sink.engine.silences = [
                Silence(x.id, x.matchers, x.starts_at, min(x.ends_at, now), x.comment)
                if x.id == silence_id
                else x
                for x in sink.engine.silences
            ]
        self.send({"expired": silence_id})
