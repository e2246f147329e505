"""Tables: the live alerts feed (acknowledge, resolve, silence), rollup statistics, the
notification log, and the system panel's figures."""

from __future__ import annotations

import asyncio
from typing import Any

import pandas as pd
import panel as pn
import param

from panel_app.store import DataStore
from panel_app.views.selection import Selection

ALERT_COLUMNS = ["symbol", "rule", "state", "severity", "value", "since", "updated", "id"]
ROLLUP_COLUMNS = [
    "window",
    "start_time",
    "count",
    "average",
    "min",
    "max",
    "vwap",
    "std_dev",
    "percentile_95",
    "percentile_99",
    "volume",
]
NOTE_COLUMNS = ["at", "channel", "rule", "status", "attempt", "error"]


def _frame(rows: list[dict[str, Any]], columns: list[str]) -> pd.DataFrame:
    return pd.DataFrame([{c: r.get(c) for c in columns} for r in rows], columns=columns)


class AlertsFeed(pn.viewable.Viewer):
    """Recent alerts, firing first; act on the selected row."""

    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.table = pn.widgets.Tabulator(
            _frame([], ALERT_COLUMNS),
            selectable=1,
            disabled=True,
            show_index=False,
            height=260,
            sizing_mode="stretch_width",
            hidden_columns=["id"],
            css_classes=["alerts-feed"],
        )
        self.ack = pn.widgets.Button(
            label="Acknowledge", color="primary", css_classes=["alert-ack"]
        )
        self.resolve = pn.widgets.Button(
            label="Resolve", color="success", css_classes=["alert-resolve"]
        )
        self.silence = pn.widgets.Button(
            label="Silence 1h", color="warning", css_classes=["alert-silence"]
        )
        self.status = pn.pane.Markdown("", css_classes=["alert-status"])
        self.ack.on_click(self._acknowledge)
        self.resolve.on_click(self._resolve)
        self.silence.on_click(self._silence)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "### Alerts",
            self.table,
            pn.Row(self.ack, self.resolve, self.silence, self.status),
            sizing_mode="stretch_width",
        )

    async def refresh(self) -> None:
        rows = await asyncio.to_thread(self.store.alerts)
        frame = _frame(rows, ALERT_COLUMNS)
        if not frame.equals(self.table.value):
            selected = self._selected_id()
            self.table.value = frame
            if selected is not None:
                keep = frame.index[frame["id"] == selected].tolist()
                self.table.selection = keep[:1]

    def _selected_id(self) -> str | None:
        sel = self.table.selection
        frame = self.table.value
        if not sel or frame is None or sel[0] >= len(frame):
            return None
        return str(frame.iloc[sel[0]]["id"])

    async def _acknowledge(self, _: Any) -> None:
        await self._act("acknowledge")

    async def _resolve(self, _: Any) -> None:
        await self._act("resolve")

    async def _silence(self, _: Any) -> None:
        await self._act("silence")

    async def _act(self, action: str) -> None:
        alert_id = self._selected_id()
        if alert_id is None:
            self.status.object = "select an alert first"
            return
        fn = getattr(self.store, action)
        done = await asyncio.to_thread(fn, alert_id)
        self.status.object = f"{action}: {'done' if done else 'no such alert'}"
        await self.refresh()


class RollupTable(pn.viewable.Viewer):
    selection = param.ClassSelector(class_=Selection)

    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.table = pn.widgets.Tabulator(
            _frame([], ROLLUP_COLUMNS),
            disabled=True,
            show_index=False,
            height=200,
            sizing_mode="stretch_width",
            css_classes=["rollups"],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column("### Rollups", self.table, sizing_mode="stretch_width")

    async def refresh(self) -> None:
        rows = await asyncio.to_thread(self.store.rollups, self.selection.symbol)
        frame = _frame(rows, ROLLUP_COLUMNS).round(6)
        if not frame.equals(self.table.value):
            self.table.value = frame


class NotificationLog(pn.viewable.Viewer):
    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.table = pn.widgets.Tabulator(
            _frame([], NOTE_COLUMNS),
            disabled=True,
            show_index=False,
            height=200,
            sizing_mode="stretch_width",
            css_classes=["notifications"],
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column("### Notifications", self.table, sizing_mode="stretch_width")

    async def refresh(self) -> None:
        rows = await asyncio.to_thread(self.store.notifications)
        frame = _frame(rows, NOTE_COLUMNS)
        if not frame.equals(self.table.value):
            self.table.value = frame


class SystemPanel(pn.viewable.Viewer):
    """Ticks/s, rejected, batch latency p50/p99, storage lag, uptime."""

    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.numbers = {
            "ticks_per_s": pn.indicators.Number(
                name="ticks/s", value=0, format="{value:,.0f}", font_size="20pt", title_size="10pt"
            ),
            "rejected": pn.indicators.Number(
                name="rejected", value=0, format="{value:,.0f}", font_size="20pt", title_size="10pt"
            ),
            "p50": pn.indicators.Number(
                name="batch p50 ms",
                value=0,
                format="{value:.2f}",
                font_size="20pt",
                title_size="10pt",
            ),
            "p99": pn.indicators.Number(
                name="batch p99 ms",
                value=0,
                format="{value:.2f}",
                font_size="20pt",
                title_size="10pt",
            ),
            "lag": pn.indicators.Number(
                name="storage lag (ticks)",
                value=0,
                format="{value:,.0f}",
                font_size="20pt",
                title_size="10pt",
            ),
            "uptime": pn.indicators.Number(
                name="uptime s", value=0, format="{value:,.0f}", font_size="20pt", title_size="10pt"
            ),
        }
        self.state = pn.pane.Markdown("", css_classes=["system-state"])

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            "### System", pn.Row(*self.numbers.values()), self.state, css_classes=["system-panel"]
        )

    def update(self) -> None:
        f = self.store.system()
        values = {
            "ticks_per_s": f.ticks_per_s,
            "rejected": f.rejected,
            "p50": f.latency_p50_ms,
            "p99": f.latency_p99_ms,
            "lag": f.storage_lag,
            "uptime": f.uptime_s,
        }
        for k, v in values.items():
            if self.numbers[k].value != v:
                self.numbers[k].value = v
        text = f"**{f.status}** · {f.ticks_processed:,} ticks processed" + "".join(
            f" · {k.replace('_', ' ')}: {v:,}" for k, v in f.extra.items()
        )
        if self.state.object != text:
            self.state.object = text
