"""The one server: Panel's (Bokeh's Tornado server) with rxpipe's REST API, WebSocket, health
and Prometheus handlers added as ``extra_patterns``: one port, one asyncio loop."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import tornado.web

from rxpipe.runtime import Runtime
from rxpipe.server import api_alerts, api_metrics, api_notifications, api_observability, api_rules
from rxpipe.server.auth import ClientLimits
from rxpipe.server.base import NotFoundHandler, ServerContext
from rxpipe.server.health import HealthHandler
from rxpipe.server.openapi import OpenApiHandler, document
from rxpipe.server.prometheus import MetricsHandler, registry_for
from rxpipe.server.websocket import Broadcaster, WebSocketHandler
from rxpipe.storage.reads import Reads

log = logging.getLogger(__name__)

Route = tuple[str, type[tornado.web.RequestHandler], dict[str, Any]]
ID = r"([A-Za-z0-9][A-Za-z0-9._-]{0,63})"
ANY = r"([^/]+)"  # validated by the handler, which answers 400 with the reason


def routes(ctx: ServerContext, broadcaster: Broadcaster | None = None) -> list[Route]:
    """The URL patterns rxpipe adds to Panel's server (also usable on a plain Tornado app)."""
    c = {"ctx": ctx}
    registry = registry_for(ctx.runtime, lambda: len(broadcaster.clients) if broadcaster else 0)
    out: list[Route] = [
        (r"/", tornado.web.RedirectHandler, {"url": "/dashboard"}),
        (r"/health", HealthHandler, {"runtime": ctx.runtime}),
        (r"/api/v1/health", HealthHandler, {"runtime": ctx.runtime}),
        (r"/metrics", MetricsHandler, {"registry": registry}),
        (r"/api/v1/openapi.json", OpenApiHandler, {"doc": document()}),
        (rf"/api/v1/metrics/{ANY}", api_metrics.MetricsHandler, c),
        (rf"/api/v1/metrics/{ANY}/aggregated", api_metrics.AggregatedHandler, c),
        (rf"/api/v1/metrics/{ANY}/anomalies", api_metrics.AnomaliesHandler, c),
        (rf"/api/v1/metrics/{ANY}/rollups", api_metrics.RollupsHandler, c),
        (r"/api/v1/alerts", api_alerts.AlertsHandler, c),
        (rf"/api/v1/alerts/{ANY}/resolve", api_alerts.AlertResolveHandler, c),
        (rf"/api/v1/alerts/{ANY}/acknowledge", api_alerts.AlertAcknowledgeHandler, c),
        (rf"/api/v1/alerts/{ANY}", api_alerts.AlertHandler, c),
        (r"/api/v1/silences", api_alerts.SilencesHandler, c),
        (rf"/api/v1/silences/{ANY}", api_alerts.SilenceHandler, c),
        (r"/api/v1/rules", api_rules.RulesHandler, c),
        (r"/api/v1/rules/validate", api_rules.RuleValidateHandler, c),
        (rf"/api/v1/rules/{ANY}/backtest", api_rules.RuleBacktestHandler, c),
        (rf"/api/v1/rules/{ANY}", api_rules.RuleHandler, c),
        (r"/api/v1/notifications", api_notifications.NotificationsHandler, c),
        (r"/api/v1/notifications/test", api_notifications.NotificationTestHandler, c),
        (r"/api/v1/notifications/settings", api_notifications.NotificationSettingsHandler, c),
        (r"/api/v1/observability/events", api_observability.EventsHandler, c),
        (r"/api/v1/observability/logs", api_observability.LogsHandler, c),
        (r"/api/v1/observability/traces", api_observability.TracesHandler, c),
    ]
    if broadcaster is not None:
        out.append((r"/ws", WebSocketHandler, {"broadcaster": broadcaster}))
    out.append((r"/api/v1/.*", NotFoundHandler, c))
    return out


@dataclass
class Running:
    """A started server and what it owns; ``stop`` releases all of it."""

    server: Any
    broadcaster: Broadcaster | None
    pool: Any
    ctx: ServerContext

    @property
    def port(self) -> int:
        return int(self.server.port)

    async def stop(self) -> None:
        if self.broadcaster is not None:
            self.broadcaster.stop()
        self.server.stop()
        if self.pool is not None:
            await self.pool.close()


async def serve(runtime: Runtime, token: str, *, dashboard: bool = True) -> Running:
    """Start the dashboard, the API and the WebSocket on the running loop."""
    from psycopg_pool import AsyncConnectionPool
    from tornado.ioloop import IOLoop

    s = runtime.settings.server
    pool = None
    reads = None
    if runtime.db is not None:
        pool = AsyncConnectionPool(
            runtime.db.url, min_size=1, max_size=8, open=False, kwargs={"autocommit": True}
        )
        await pool.open(wait=True, timeout=30)
        reads = Reads(pool)
    ctx = ServerContext(
        runtime, token, ClientLimits(s.rate_limit_per_s, s.rate_limit_burst), reads=reads
    )
    broadcaster = None
    if runtime.hub is not None:
        broadcaster = Broadcaster(
            runtime.hub,
            runtime.events,
            max_queue=s.ws_max_queue,
            drop_after_s=s.ws_drop_after_s,
        ).start()
    ctx.extra["broadcaster"] = broadcaster
    apps: dict[str, Any] = {}
    if dashboard:
        from panel_app.app import dashboard_factory

        apps["dashboard"] = dashboard_factory(runtime)
    if s.host in ("0.0.0.0", "::") and not s.allowed_origins:  # noqa: S104 - a check, not a bind
        log.warning(
            "bound to %s: the dashboard opens from localhost only until server.allowed_origins "
            "(RXPIPE_SERVER_ALLOWED_ORIGINS) names the host:port browsers use",
            s.host,
        )
    server = _panel_server(
        apps, routes(ctx, broadcaster), s.host, s.port, IOLoop.current(), s.allowed_origins
    )
    server.start()
    return Running(server, broadcaster, pool, ctx)


def _panel_server(
    apps: dict[str, Any],
    extra: list[Route],
    host: str,
    port: int,
    loop: Any,
    allowed: list[str],
) -> Any:
    from panel.io.server import get_server

    origins = [f"{h}:{port}" for h in {host, "localhost", "127.0.0.1"}] + list(allowed)
    return get_server(
        apps or {"dashboard": lambda: None},
        port=port,
        address=host,
        websocket_origin=origins if port else "*",
        loop=loop,
        show=False,
        start=False,
        title="rxpipe",
        extra_patterns=extra,
        check_unused_sessions_milliseconds=17_000,
        unused_session_lifetime_milliseconds=15_000,
    )
