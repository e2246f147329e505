"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 document of the REST API.

Request bodies are the pydantic models the handlers validate with, so the document and the
handlers cannot drift apart on fields; a test checks that every documented operation is
answered and schemathesis fuzzes the API from this document.
"""

from __future__ import annotations

from typing import Any

import tornado.web
from pydantic import BaseModel

from rxpipe import __version__
from rxpipe.notify.settings import NotificationSetting
from rxpipe.rules.model import Rule
from rxpipe.server.api_alerts import STATUSES as ALERT_STATUSES
from rxpipe.server.api_alerts import AlertCreate, AlertUpdate, SilenceCreate
from rxpipe.server.api_metrics import INTERVALS
from rxpipe.server.api_notifications import STATUSES as NOTIFICATION_STATUSES
from rxpipe.server.api_notifications import SettingsBody, TestBody
from rxpipe.server.api_rules import BacktestBody, ValidateBody
from rxpipe.signals import ANOMALY_TYPES, METHODS, SEVERITIES, window_label

SYMBOL_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$"
ID_PATTERN = "^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


def _q(name: str, description: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": schema,
    }


def _p(name: str, description: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "description": description,
        "schema": {"type": "string", "pattern": pattern},
    }


_RANGE = [
    _q("from", "start: ISO 8601, epoch nanoseconds, or a duration ago (7d)", {"type": "string"}),
    _q("to", "end (exclusive), same forms", {"type": "string"}),
    _q("limit", "rows per page (default 100)", {"type": "integer", "minimum": 1, "maximum": 1000}),
    _q("cursor", "next_cursor of the previous page", {"type": "string", "maxLength": 400}),
]
_SYMBOL = _p("symbol", "a symbol such as BTCUSDT", SYMBOL_PATTERN)
_ALERT_ID = _p("id", "an alert's id (its fingerprint)", ID_PATTERN)
_RULE_ID = _p("id", "a rule's id", ID_PATTERN)
_SILENCE_ID = _p("id", "a silence's id", ID_PATTERN)
_INTERVAL = {"type": "string", "enum": [window_label(s) for s in INTERVALS]}

_ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "string",
            "description": "what was wrong, where, and what would be right",
        },
        "field": {"type": "string"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {"field": {"type": "string"}, "reason": {"type": "string"}},
            },
        },
    },
}
_PAGE = {
    "type": "object",
    "required": ["data", "count", "next_cursor"],
    "properties": {
        "data": {"type": "array", "items": {"type": "object"}},
        "count": {"type": "integer"},
        "next_cursor": {"type": ["string", "null"]},
    },
}
_LIST = {
    "type": "object",
    "required": ["data"],
    "properties": {"data": {"type": "array", "items": {"type": "object"}}},
}
_OBJECT = {"type": "object"}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    return {
        "required": True,
        "content": {
            "application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}
        },
    }


def _op(
    summary: str,
    ok: dict[str, Any],
    *,
    params: list[dict[str, Any]] | None = None,
    body: type[BaseModel] | None = None,
    status: str = "200",
    secured: bool = False,
    errors: tuple[str, ...] = ("400",),
    tag: str = "",
) -> dict[str, Any]:
    responses: dict[str, Any] = {
        status: {"description": "success", "content": {"application/json": {"schema": ok}}}
    }
    codes = set(errors) | {"429"}
    if secured:
        codes.add("401")
    if body is not None:
        codes |= {"400", "422"}
    for code in sorted(codes):
        responses[code] = {
            "description": {
                "400": "a malformed parameter or body",
                "401": "no or a wrong bearer token",
                "404": "no such thing",
                "409": "a conflict with what exists",
                "422": "a body that does not validate; the fields are named",
                "429": "too many requests; see Retry-After",
                "502": "the notification channel failed",
                "503": "storage is disabled or unavailable",
            }[code],
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
        }
    op: dict[str, Any] = {"summary": summary, "responses": responses, "tags": [tag] if tag else []}
    if params:
        op["parameters"] = params
    if body is not None:
        op["requestBody"] = _body(body)
    op["security"] = [{"bearer": []}] if secured else []
    return op


def _paths() -> dict[str, dict[str, Any]]:
    health = {
        "type": "object",
        "required": ["status", "timestamp", "version", "services"],
        "properties": {
            "status": {"type": "string"},
            "timestamp": {"type": "string"},
            "version": {"type": "string"},
            "services": {"type": "object"},
        },
    }
    sym = [_SYMBOL]
    alert_filters = [
        _q("status", "alert status", {"type": "string", "enum": list(ALERT_STATUSES)}),
        _q(
            "severity",
            "severity",
            {"type": "string", "enum": ["info", "low", "medium", "high", "critical"]},
        ),
        _q("symbol", "symbol", {"type": "string", "pattern": SYMBOL_PATTERN}),
        _q("rule_id", "the rule's id", {"type": "string"}),
    ]
    return {
        "/api/v1/health": {
            "get": _op("Health of the app and its parts", health, errors=("503",), tag="health")
        },
        "/api/v1/metrics/{symbol}": {
            "get": _op(
                "Latest values and signals of a symbol, and its stored ticks (newest first)",
                _PAGE,
                params=sym + _RANGE,
                errors=("400", "404"),
                tag="metrics",
            )
        },
        "/api/v1/metrics/{symbol}/aggregated": {
            "get": _op(
                "Count, min, max, avg and sum per time bucket",
                _PAGE,
                params=[
                    *sym,
                    _q("interval", "bucket size (default 1m)", _INTERVAL),
                    _q(
                        "type",
                        "price (default) or volume",
                        {"type": "string", "enum": ["price", "volume"]},
                    ),
                    *_RANGE,
                ],
                errors=("400", "404"),
                tag="metrics",
            )
        },
        "/api/v1/metrics/{symbol}/anomalies": {
            "get": _op(
                "Anomalies found by the detectors",
                _PAGE,
                params=[
                    *sym,
                    _q("type", "anomaly type", {"type": "string", "enum": list(ANOMALY_TYPES)}),
                    _q("method", "detection method", {"type": "string", "enum": list(METHODS)}),
                    _q(
                        "severity",
                        "at least this severity",
                        {"type": "string", "enum": list(SEVERITIES)},
                    ),
                    *_RANGE,
                ],
                errors=("400", "404"),
                tag="metrics",
            )
        },
        "/api/v1/metrics/{symbol}/rollups": {
            "get": _op(
                "Rollup statistics per closed time bucket",
                _PAGE,
                params=[*sym, _q("interval", "one bucket size (default: all)", _INTERVAL), *_RANGE],
                errors=("400", "404"),
                tag="metrics",
            )
        },
        "/api/v1/alerts": {
            "get": _op(
                "Alerts, most recently changed first",
                _PAGE,
                params=alert_filters + _RANGE,
                tag="alerts",
            ),
            "post": _op(
                "Raise an alert by hand",
                _OBJECT,
                body=AlertCreate,
                status="201",
                secured=True,
                errors=("409",),
                tag="alerts",
            ),
        },
        "/api/v1/alerts/{id}": {
            "get": _op(
                "One alert (history=true adds its state changes)",
                _OBJECT,
                params=[
                    _ALERT_ID,
                    _q(
                        "history",
                        "include the history",
                        {"type": "string", "enum": ["true", "false"]},
                    ),
                ],
                errors=("404",),
                tag="alerts",
            ),
            "put": _op(
                "Acknowledge or resolve an alert; change its labels, annotations, description",
                _OBJECT,
                params=[_ALERT_ID],
                body=AlertUpdate,
                secured=True,
                errors=("404", "409"),
                tag="alerts",
            ),
            "delete": _op(
                "Forget an alert (its history stays)",
                _OBJECT,
                params=[_ALERT_ID],
                secured=True,
                errors=("404",),
                tag="alerts",
            ),
        },
        "/api/v1/alerts/{id}/resolve": {
            "post": _op(
                "Resolve an alert",
                _OBJECT,
                params=[_ALERT_ID],
                secured=True,
                errors=("404",),
                tag="alerts",
            )
        },
        "/api/v1/alerts/{id}/acknowledge": {
            "post": _op(
                "Acknowledge an alert (stops its repeats)",
                _OBJECT,
                params=[_ALERT_ID],
                secured=True,
                errors=("404",),
                tag="alerts",
            )
        },
        "/api/v1/silences": {
            "get": _op(
                "Silences",
                _LIST,
                params=[
                    _q(
                        "status",
                        "active, pending or expired",
                        {"type": "string", "enum": ["active", "pending", "expired"]},
                    )
                ],
                tag="alerts",
            ),
            "post": _op(
                "Silence alerts whose labels match",
                _OBJECT,
                body=SilenceCreate,
                status="201",
                secured=True,
                tag="alerts",
            ),
        },
        "/api/v1/silences/{id}": {
            "get": _op("One silence", _OBJECT, params=[_SILENCE_ID], errors=("404",), tag="alerts"),
            "delete": _op(
                "Expire a silence now",
                _OBJECT,
                params=[_SILENCE_ID],
                secured=True,
                errors=("404",),
                tag="alerts",
            ),
        },
        "/api/v1/rules": {
            "get": _op(
                "Alert rules",
                _LIST,
                params=[
                    _q(
                        "enabled",
                        "only enabled or disabled rules",
                        {"type": "string", "enum": ["true", "false"]},
                    )
                ],
                tag="rules",
            ),
            "post": _op(
                "Create a rule",
                _OBJECT,
                body=Rule,
                status="201",
                secured=True,
                errors=("409",),
                tag="rules",
            ),
        },
        "/api/v1/rules/validate": {
            "post": _op(
                "Check a rule condition (saves nothing; no token needed)",
                _OBJECT,
                body=ValidateBody,
                tag="rules",
            )
        },
        "/api/v1/rules/{id}": {
            "get": _op("One rule", _OBJECT, params=[_RULE_ID], errors=("404",), tag="rules"),
            "put": _op(
                "Replace a rule",
                _OBJECT,
                params=[_RULE_ID],
                body=Rule,
                secured=True,
                errors=("404",),
                tag="rules",
            ),
            "delete": _op(
                "Delete a rule",
                _OBJECT,
                params=[_RULE_ID],
                secured=True,
                errors=("404",),
                tag="rules",
            ),
        },
        "/api/v1/rules/{id}/backtest": {
            "post": _op(
                "When a stored rule would have fired on stored history",
                _OBJECT,
                params=[_RULE_ID],
                body=BacktestBody,
                secured=True,
                errors=("404",),
                tag="rules",
            )
        },
        "/api/v1/notifications": {
            "get": _op(
                "The notification log, newest first",
                _PAGE,
                params=[
                    _q(
                        "status", "outcome", {"type": "string", "enum": list(NOTIFICATION_STATUSES)}
                    ),
                    _q("channel", "a channel's name", {"type": "string"}),
                    *_RANGE,
                ],
                tag="notifications",
            )
        },
        "/api/v1/notifications/test": {
            "post": _op(
                "Send a test message through a configured channel of a type",
                _OBJECT,
                body=TestBody,
                secured=True,
                errors=("502",),
                tag="notifications",
            )
        },
        "/api/v1/notifications/settings": {
            "get": _op("Per-rule notification settings", _LIST, tag="notifications"),
            "put": _op(
                "Create or replace per-rule notification settings (one, or several under settings)",
                _LIST,
                body=SettingsBody,
                secured=True,
                tag="notifications",
            ),
        },
        "/api/v1/observability/events": {
            "get": _op(
                "Recent pipeline events",
                _LIST,
                params=[
                    _q("limit", "how many", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _q("type", "event type", {"type": "string"}),
                ],
                tag="observability",
            )
        },
        "/api/v1/observability/logs": {
            "get": _op(
                "Recent structured log records",
                _LIST,
                params=[
                    _q("limit", "how many", {"type": "integer", "minimum": 1, "maximum": 1000}),
                    _q(
                        "level",
                        "at least this level",
                        {
                            "type": "string",
                            "enum": ["debug", "info", "warning", "error", "critical"],
                        },
                    ),
                ],
                tag="observability",
            )
        },
        "/api/v1/observability/traces": {
            "get": _op(
                "Per-batch stage timings as spans",
                _LIST,
                params=[
                    _q("limit", "how many", {"type": "integer", "minimum": 1, "maximum": 1000})
                ],
                tag="observability",
            )
        },
    }


def document() -> dict[str, Any]:
    schemas: dict[str, Any] = {"Error": _ERROR}
    for model in (
        AlertCreate,
        AlertUpdate,
        SilenceCreate,
        Rule,
        ValidateBody,
        BacktestBody,
        TestBody,
        SettingsBody,
        NotificationSetting,
    ):
        schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
        for name, sub in schema.pop("$defs", {}).items():
            schemas[name] = sub
        schemas[model.__name__] = schema
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "rxpipe",
            "version": __version__,
            "description": "Reactive crypto market analytics: metrics, anomalies, rollups, alert "
            "rules, alerts, silences and notifications. Mutating calls need "
            "Authorization: Bearer <token>. Live data streams over the WebSocket at /ws.",
        },
        "servers": [{"url": "/"}],
        "paths": _paths(),
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


class OpenApiHandler(tornado.web.RequestHandler):
    def initialize(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(self.doc)
