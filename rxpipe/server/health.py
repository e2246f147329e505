"""``GET /health`` and ``GET /api/v1/health``: status, uptime and tick counters as JSON."""

from __future__ import annotations

import json

import tornado.web

from rxpipe.runtime import Runtime


class HealthHandler(tornado.web.RequestHandler):
    def initialize(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def get(self) -> None:
        doc = self.runtime.health()
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.set_status(200 if doc["status"] == "healthy" else 503)
        self.finish(json.dumps(doc))
