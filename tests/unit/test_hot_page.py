"""The newest page of /api/v1/metrics/{symbol} is built once per move of the live hub."""

import json
from types import SimpleNamespace

import numpy as np
import tornado.web
from tornado.testing import AsyncHTTPTestCase

from rxpipe.config import Settings
from rxpipe.live.hub import LiveHub
from rxpipe.model import SymbolTable, TickBatch
from rxpipe.server.api_metrics import MetricsHandler
from rxpipe.server.app import ANY
from rxpipe.server.auth import ClientLimits
from rxpipe.server.base import ServerContext

NS = 10**9


def ticks(start: int, n: int) -> TickBatch:
    return TickBatch.from_arrays(
        symbol=np.zeros(n),
        ts=(np.arange(start, start + n) + 1) * NS,
        price=100.0 + np.arange(start, start + n),
        volume=np.ones(n),
        seq=np.arange(start, start + n),
    )


class HotPage(AsyncHTTPTestCase):
    def get_app(self) -> tornado.web.Application:
        self.hub = LiveHub(SymbolTable(["BTCUSDT"]), SymbolTable(["simulator"]))
        runtime = SimpleNamespace(hub=self.hub, settings=Settings.load(env={}))
        self.ctx = ServerContext(runtime, "token", ClientLimits(0, 0))  # type: ignore[arg-type]
        return tornado.web.Application(
            [(rf"/api/v1/metrics/{ANY}", MetricsHandler, {"ctx": self.ctx})]
        )

    def page(self, query: str = "?limit=5") -> dict:
        response = self.fetch(f"/api/v1/metrics/BTCUSDT{query}")
        assert response.code == 200, response.body
        return json.loads(response.body)

    def test_the_same_page_until_the_hub_moves(self) -> None:
        self.hub.put(ticks(0, 10))
        first = self.page()
        assert [r["seq"] for r in first["data"]] == [9, 8, 7, 6, 5]
        assert first["latest"]["z_ret"] is None  # warming up (NaN): null, not a failed answer
        assert self.page() == first and len(self.ctx.hot_pages) == 1
        self.hub.put(ticks(10, 1))  # the hub moved: the page shows the new tick
        assert [r["seq"] for r in self.page()["data"]] == [10, 9, 8, 7, 6]
        assert self.page()["latest"]["price"] == 110.0

    def test_a_page_with_a_cursor_is_not_kept(self) -> None:
        self.hub.put(ticks(0, 20))
        cursor = self.page()["next_cursor"]
        older = self.page(f"?limit=5&cursor={cursor}")
        assert [r["seq"] for r in older["data"]] == [14, 13, 12, 11, 10]
        assert len(self.ctx.hot_pages) == 1  # only the newest page
