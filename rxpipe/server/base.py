"""What every API handler shares: the server context, JSON in and out, errors that name the
field and the reason, the token check on mutating calls, and the per-client rate limit."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import tornado.web
from pydantic import BaseModel, ValidationError
from tornado.ioloop import IOLoop

from rxpipe.errors import InputError, RxpipeError, StorageError
from rxpipe.runtime import Runtime
from rxpipe.server.auth import ClientLimits, token_ok
from rxpipe.storage.paging import FAR_FUTURE, FAR_PAST, Range
from rxpipe.storage.reads import Reads
from rxpipe.timestamps import parse_time

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")

SYMBOL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,31}$")
MAX_LIMIT = 1000


@dataclass
class ServerContext:
    """What the handlers reach: the running app, the database reads, the token, the limits."""

    runtime: Runtime
    token: str
    limits: ClientLimits
    reads: Reads | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # the broadcaster, the OpenAPI document
    # the newest page of each (symbol, limit) as sent, with the live hub's version it shows
    hot_pages: dict[tuple[str, int], tuple[int, str]] = field(default_factory=dict)

    @property
    def settings(self) -> Any:
        return self.runtime.settings


class ApiError(Exception):
    """An answer other than success: the status and the ``{"error": ...}`` body."""

    def __init__(
        self, status: int, message: str, *, headers: dict[str, str] | None = None, **extra: Any
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.extra = extra


class ApiHandler(tornado.web.RequestHandler):
    """JSON API handler. Subclasses define ``get``/``post``/... as coroutines."""

    ctx: ServerContext
    public_mutation = False  # e.g. POST /rules/validate changes nothing

    def initialize(self, ctx: ServerContext) -> None:
        self.ctx = ctx

    # -- before every request -------------------------------------------------------------

    def prepare(self) -> None:
        wait = self.ctx.limits.retry_after(self.request.remote_ip or "?", time.monotonic())
        if wait > 0:
            raise ApiError(
                429,
                "too many requests from this client; retry after the Retry-After seconds",
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
            )
        mutating = self.request.method in ("POST", "PUT", "PATCH", "DELETE")
        authorized = token_ok(self.request.headers.get("Authorization"), self.ctx.token)
        if mutating and not self.public_mutation and not authorized:
            raise ApiError(
                401,
                "this call changes data: send Authorization: Bearer <token>",
                headers={"WWW-Authenticate": 'Bearer realm="rxpipe"'},
            )

    # -- answers ----------------------------------------------------------------------------

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def send(self, doc: Any, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(doc, default=str, allow_nan=False))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, ApiError):
            self.set_status(exc.status)
            for name, value in exc.headers.items():  # send_error cleared the headers set before
                self.set_header(name, value)
            doc = {"error": exc.message, **exc.extra}
        elif isinstance(exc, tornado.web.HTTPError):
            doc = {"error": exc.log_message or self._reason}
        else:
            doc = {"error": "internal error; see the server log"}
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(doc, default=str))

    def _handle_request_exception(self, e: BaseException) -> None:
        if isinstance(e, ApiError):  # an answer, not a server error: no traceback in the log
            self.send_error(e.status, exc_info=(type(e), e, e.__traceback__))
            return
        if isinstance(e, InputError):
            err = ApiError(400, str(e))
            self.send_error(400, exc_info=(ApiError, err, None))
            return
        if isinstance(e, StorageError):
            err = ApiError(503, f"storage unavailable: {e}")
            self.send_error(503, exc_info=(ApiError, err, None))
            return
        super()._handle_request_exception(e)

    # -- reading the request ------------------------------------------------------------------

    def body(self, model: type[M], *, defaults: dict[str, Any] | None = None) -> M:
        """The JSON body validated by ``model``: 400 if it is not JSON, 422 naming each field."""
        raw = self.request.body or b""
        if not raw.strip():
            data: Any = {}
        else:
            try:
                data = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                raise ApiError(400, f"the body is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise ApiError(400, f"the body must be a JSON object, not {type(data).__name__}")
        where = _nul_at(data)
        if where is not None:  # PostgreSQL stores no NUL character in text or JSON
            raise ApiError(
                422, f"{where or 'body'}: text may not contain NUL (\\u0000)", field=where
            )
        if defaults:
            data = {**defaults, **data}
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            errors = [
                {"field": ".".join(str(p) for p in e["loc"]) or "body", "reason": e["msg"]}
                for e in exc.errors()
            ]
            first = errors[0]
            raise ApiError(
                422, f"{first['field']}: {first['reason']}", field=first["field"], errors=errors
            ) from None

    def symbol(self, value: str) -> str:
        if not SYMBOL.match(value):
            raise ApiError(
                400,
                f"symbol {value[:40]!r} is not a symbol such as BTCUSDT "
                "(letters, digits and . _ : / -, at most 32)",
                field="symbol",
            )
        return value

    def query(self, name: str, default: str | None = None) -> str | None:
        value = self.get_query_argument(name, None)
        if value is not None and ("\x00" in value or len(value) > 2000):
            raise ApiError(400, f"{name}: not a value this API takes", field=name)
        return default if value is None or value == "" else value

    def choice(self, name: str, options: tuple[str, ...], default: str | None = None) -> str | None:
        value = self.query(name, default)
        if value is not None and value not in options:
            raise ApiError(
                400, f"{name} is one of {', '.join(options)}; found {value[:40]!r}", field=name
            )
        return value

    def range(self, default_limit: int = 100) -> Range:
        """``from``, ``to`` (ISO 8601, epoch ns or a duration ago), ``limit`` and ``cursor``."""
        r = Range(limit=default_limit)
        for name in ("from", "to"):
            text = self.query(name)
            if text is None:
                continue
            try:
                value = parse_time(text)
            except RxpipeError as exc:
                raise ApiError(400, f"{name}: {exc}", field=name) from None
            if not FAR_PAST < value < FAR_FUTURE:
                raise ApiError(400, f"{name}: {text!r} is out of range", field=name)
            if name == "from":
                r.start = value
            else:
                r.end = value
        limit = self.query("limit")
        if limit is not None:
            if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
                raise ApiError(
                    400,
                    f"limit is a whole number from 1 to {MAX_LIMIT}; found {limit[:20]!r}",
                    field="limit",
                )
            r.limit = int(limit)
        r.cursor = self.query("cursor")
        if r.cursor is not None and len(r.cursor) > 400:
            raise ApiError(400, "not a cursor this API gave out", field="cursor")
        return r

    def reads(self) -> Reads:
        if self.ctx.reads is None:
            raise ApiError(503, "storage is disabled: this route needs the database")
        return self.ctx.reads

    async def blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a blocking call (a synchronous database write) off the loop."""
        return await IOLoop.current().run_in_executor(None, fn, *args)


def _nul_at(value: Any, path: str = "") -> str | None:
    """Where a NUL character hides in a JSON value (keys included), or None.

    >>> _nul_at({"labels": {"a": "x\\x00"}}), _nul_at({"ok": [1, "two"]})
    ('labels.a', None)
    """
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, dict):
        for k, v in value.items():
            here = f"{path}.{k}" if path else str(k)
            if "\x00" in str(k):
                return here
            found = _nul_at(v, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for i, v in enumerate(value):
            found = _nul_at(v, f"{path}[{i}]")
            if found is not None:
                return found
    return None


class NotFoundHandler(ApiHandler):
    """Unknown routes under /api/v1 answer JSON 404s."""

    def prepare(self) -> None:
        raise ApiError(404, f"no route {self.request.path[:200]}")
