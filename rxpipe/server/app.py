"""The one Tornado application: every route rxpipe serves, on one port and one asyncio loop."""

from __future__ import annotations

from typing import Any

import tornado.web

from rxpipe.runtime import Runtime
from rxpipe.server.health import HealthHandler


def routes(runtime: Runtime) -> list[tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]]:
    """The URL patterns, also usable as Panel's ``extra_patterns``."""
    ctx = {"runtime": runtime}
    return [
        (r"/health", HealthHandler, ctx),
        (r"/api/v1/health", HealthHandler, ctx),
    ]


def make_app(runtime: Runtime) -> tornado.web.Application:
    return tornado.web.Application(routes(runtime))
