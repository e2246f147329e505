"""``/api/v1/observability/{events,logs,traces}``: recent pipeline events, structured logs, and
per-batch stage timings as spans."""

from __future__ import annotations

from rxpipe.server.base import ApiError, ApiHandler


class _Recent(ApiHandler):
    def limit(self) -> int:
        text = self.query("limit", "100")
        assert text is not None
        if not text.isdigit() or not 1 <= int(text) <= 1000:
            raise ApiError(
                400, f"limit is a whole number from 1 to 1000; found {text[:20]!r}", field="limit"
            )
        return int(text)


class EventsHandler(_Recent):
    async def get(self) -> None:
        events = self.ctx.runtime.events.recent(self.limit(), self.query("type"))
        self.send({"data": events, "count": len(events)})


class LogsHandler(_Recent):
    async def get(self) -> None:
        level = self.choice("level", ("debug", "info", "warning", "error", "critical"))
        logs = self.ctx.runtime.logs.recent(self.limit(), level)
        self.send({"data": logs, "count": len(logs)})


class TracesHandler(_Recent):
    async def get(self) -> None:
        traces = self.ctx.runtime.tracer.recent(self.limit())
        self.send({"data": traces, "count": len(traces)})
