"""The rxpipe dashboard.

Inside ``rxpipe run`` it is served at ``/dashboard`` by the app's own server, reading the running
pipeline's live hub. On its own, ``panel serve panel_app/app.py`` serves it against the same data
directory or database (``RXPIPE_DATA_DIR``, ``RXPIPE_DATABASE_URL``), fed by a poller.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import panel as pn
import param

from panel_app.store import DataStore
from panel_app.views.price import PriceChart
from panel_app.views.rules import RuleEditor
from panel_app.views.selection import INTERVALS, Selection
from panel_app.views.tables import AlertsFeed, NotificationLog, RollupTable, SystemPanel
from rxpipe.runtime import Runtime

FAST_MS = 200  # charts and the system panel: 5 updates a second (4 at the least, with jitter)
SLOW_EVERY = 5  # tables from the database: every 5th update (once a second)


class Dashboard(pn.viewable.Viewer):
    """One browser session's page: its own selection and views over the shared store."""

    selection = param.ClassSelector(class_=Selection)

    def __init__(self, store: DataStore, **params: Any) -> None:
        params.setdefault(
            "selection", Selection(symbol=store.symbols[0] if store.symbols else "BTCUSDT")
        )
        super().__init__(**params)
        self.store = store
        sel = self.selection
        self.symbol = pn.widgets.Select(
            label="Symbol",
            options=list(store.symbols),
            value=sel.symbol,
            css_classes=["symbol-picker"],
            width=180,
        )
        self.interval = pn.widgets.RadioButtonGroup(
            label="Candles",
            options=list(INTERVALS),
            value=sel.interval,
            css_classes=["interval-picker"],
        )
        self.symbol.link(sel, value="symbol")
        self.interval.link(sel, value="interval")
        self.price = PriceChart(store, selection=sel)
        self.alerts = AlertsFeed(store)
        self.rollups = RollupTable(store, selection=sel)
        self.notifications = NotificationLog(store)
        self.rules = RuleEditor(store)
        self.system = SystemPanel(store)
        self._ticks = 0
        self._busy = False

    def __panel__(self) -> pn.viewable.Viewable:
        header = pn.Row(
            pn.pane.HTML("<h2 style='margin:4px 12px 4px 0'>rxpipe</h2>"),
            self.symbol,
            self.interval,
            sizing_mode="stretch_width",
        )
        left = pn.Column(self.price, self.rollups, sizing_mode="stretch_width")
        right = pn.Column(self.system, self.alerts, self.rules, self.notifications, width=620)
        return pn.Column(
            header, pn.Row(left, right, sizing_mode="stretch_width"), sizing_mode="stretch_width"
        )

    def start(self) -> Dashboard:
        """Start this session's updates (stopped by Panel when the session ends)."""
        pn.state.onload(self._first)
        return self

    def _first(self) -> None:
        # Bokeh models (the charts' sources) change only in synchronous callbacks, which Bokeh
        # runs holding the document's lock; the tables' refresh awaits the database in threads
        # and changes Panel widgets only, which Panel schedules safely.
        self._fast()
        pn.state.add_periodic_callback(self._fast, period=FAST_MS)
        pn.state.add_periodic_callback(self._slow, period=FAST_MS * SLOW_EVERY)
        pn.state.execute(self._slow)

    def _fast(self) -> None:
        self.price.update()
        self.system.update()

    async def _slow(self) -> None:
        if self._busy:  # the database is slow: skip a round rather than pile up
            return
        self._busy = True
        try:
            await self.alerts.refresh()
            await self.rollups.refresh()
            await self.notifications.refresh()
            if self._ticks % 5 == 0:
                await self.rules.refresh()
            self._ticks += 1
        finally:
            self._busy = False


def dashboard_factory(runtime: Runtime) -> Callable[[], pn.viewable.Viewable]:
    """The app function ``rxpipe run`` serves at /dashboard: one store, a page per session."""
    store = DataStore.in_process(runtime)

    def page() -> pn.viewable.Viewable:
        return pn.panel(Dashboard(store).start(), sizing_mode="stretch_width")

    return page


def _standalone() -> None:
    from rxpipe.config import Settings

    if "store" not in pn.state.cache:
        pn.state.cache["store"] = DataStore.standalone(Settings.load())
    pn.panel(Dashboard(pn.state.cache["store"]).start(), sizing_mode="stretch_width").servable(
        title="rxpipe"
    )


if __name__.startswith("bokeh"):  # panel serve panel_app/app.py
    _standalone()
