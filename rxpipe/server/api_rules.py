"""``/api/v1/rules``: list, get, create, update, delete, validate a condition, backtest."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from rxpipe.errors import RuleSyntaxError
from rxpipe.model import SymbolTable
from rxpipe.rules.backtest import backtest, stored_ticks
from rxpipe.rules.compiler import canonical, compile_rule
from rxpipe.rules.model import Rule, effective_condition
from rxpipe.server.base import ApiError, ApiHandler
from rxpipe.storage.rules import RuleStore
from rxpipe.timestamps import iso, parse_time


def rule_json(
    rule: Rule, created: datetime | None = None, updated: datetime | None = None
) -> dict[str, Any]:
    doc = rule.to_json()
    doc["created_at"] = iso(int(created.timestamp() * 1e9)) if created else None
    doc["updated_at"] = iso(int(updated.timestamp() * 1e9)) if updated else None
    return doc


class ValidateBody(BaseModel):
    model_config = ConfigDict(extra="ignore")

    condition: str = Field(min_length=1, max_length=2000)
    threshold: float | None = Field(None, allow_inf_nan=False)


class BacktestBody(BaseModel):
    """``from``/``to``: ISO 8601, epoch ns, or a duration ago (default: the last 24 hours)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    start: str = Field("24h", alias="from", max_length=64)
    end: str | None = Field(None, alias="to", max_length=64)


class _RulesBase(ApiHandler):
    def db(self) -> Any:
        db = self.ctx.runtime.db
        if db is None:
            raise ApiError(503, "storage is disabled: this route needs the database")
        return db

    async def run(self, fn: Any) -> Any:
        db = self.db()

        def work() -> Any:
            with db.connect() as conn:
                return fn(RuleStore(conn))

        return await self.blocking(work)

    async def entry(self, rule_id: str) -> tuple[Rule, datetime, datetime]:
        found = await self.run(lambda store: store.entries(rule_id))
        if not found:
            raise ApiError(404, f"no rule {rule_id[:64]!r}", field="id")
        return found[0]


class RulesHandler(_RulesBase):
    async def get(self) -> None:
        entries = await self.run(lambda store: store.entries())
        enabled = self.choice("enabled", ("true", "false"))
        docs = [
            rule_json(*e) for e in entries if enabled is None or e[0].enabled == (enabled == "true")
        ]
        self.send({"data": docs, "count": len(docs)})

    async def post(self) -> None:
        rule = self.body(Rule)
        if await self.run(lambda store: store.get(rule.id)) is not None:
            raise ApiError(
                409, f"rule {rule.id!r} exists already; PUT /api/v1/rules/{rule.id}", field="id"
            )
        await self.run(lambda store: store.save(rule))
        self.set_header("Location", f"/api/v1/rules/{rule.id}")
        self.send(rule_json(*await self.entry(rule.id)), 201)


class RuleHandler(_RulesBase):
    async def get(self, rule_id: str) -> None:
        self.send(rule_json(*await self.entry(rule_id)))

    async def put(self, rule_id: str) -> None:
        await self.entry(rule_id)
        rule = self.body(Rule, defaults={"id": rule_id})
        if rule.id != rule_id:
            raise ApiError(422, "id: the body's id differs from the path's", field="id")
        await self.run(lambda store: store.save(rule))
        self.send(rule_json(*await self.entry(rule_id)))

    async def delete(self, rule_id: str) -> None:
        if not await self.run(lambda store: store.delete(rule_id)):
            raise ApiError(404, f"no rule {rule_id[:64]!r}", field="id")
        self.send({"deleted": rule_id})


class RuleValidateHandler(ApiHandler):
    """Check a condition without saving anything (no token needed)."""

    public_mutation = True

    async def post(self) -> None:
        body = self.body(ValidateBody)
        text = effective_condition(body.condition, body.threshold)
        try:
            compiled = compile_rule(text)
        except RuleSyntaxError as exc:
            lines = text.split("\n")
            self.send(
                {
                    "valid": False,
                    "condition": text,
                    "error": {
                        "message": exc.message,
                        "line": exc.line,
                        "column": exc.column,
                        "excerpt": f"{lines[exc.line - 1] if exc.line <= len(lines) else ''}\n"
                        f"{' ' * (exc.column - 1)}^",
                        "text": str(exc),
                    },
                }
            )
            return
        self.send({"valid": True, "condition": text, "normalized": canonical(compiled.root)})


class RuleBacktestHandler(_RulesBase):
    """Replay stored history through a stored rule (default: the last 24 hours)."""

    async def post(self, rule_id: str) -> None:
        rule, _, _ = await self.entry(rule_id)
        body = self.body(BacktestBody)
        try:
            start = parse_time(body.start)
            end = parse_time(body.end) if body.end else time.time_ns()
        except Exception as exc:
            raise ApiError(422, f"from/to: {exc}", field="from") from None
        if end <= start:
            raise ApiError(422, "to must be after from", field="to")
        only = rule.symbols if isinstance(rule.symbols, list) else None

        def work(store: RuleStore) -> dict[str, Any]:
            symbols = SymbolTable()
            batches = stored_ticks(store.conn, symbols, start_ns=start, end_ns=end, only=only)
            return backtest(rule, batches, symbols).to_json()

        self.send(await self.run(work))
