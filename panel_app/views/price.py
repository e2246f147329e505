"""Live candles with volume bars, moving-average overlays and anomaly markers (with hover),
and the z-score / volatility strip under them, streamed with ``ColumnDataSource.stream``
(bounded by ``rollover``) and ``patch`` for the candle still open."""

from __future__ import annotations

from typing import Any

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource, DataRange1d, HoverTool, LinearAxis, Range1d
from bokeh.plotting import figure

from panel_app.store import DataStore
from panel_app.views.selection import INTERVALS, Selection

SEVERITY_COLORS = {"low": "#9ecae1", "medium": "#fdae6b", "high": "#e6550d", "critical": "#a50f15"}
UP, DOWN = "#26a69a", "#ef5350"
MAX_BARS = 500
MAX_POINTS = 2000
MAX_MARKERS = 300
VISIBLE_BARS = 90  # the chart follows the newest candles, this many in view


def candles(bars: dict[str, np.ndarray], interval_s: int) -> dict[str, np.ndarray]:
    """One-minute bars regrouped into ``interval_s`` candles (oldest first).

    >>> b = {"start": np.array([0, 60, 120]) * 10**9, "open": np.array([1.0, 2, 3]),
    ...      "high": np.array([2.0, 3, 4]), "low": np.array([0.5, 1, 2]),
    ...      "close": np.array([2.0, 3, 3.5]), "volume": np.array([1.0, 1, 1])}
    >>> c = candles(b, 120)
    >>> c["open"].tolist(), c["high"].tolist(), c["close"].tolist(), c["volume"].tolist()
    ([1.0, 3.0], [3.0, 4.0], [3.0, 3.5], [2.0, 1.0])
    """
    start = bars["start"]
    if not len(start):
        return {k: np.empty(0) for k in ("start", "open", "high", "low", "close", "volume")}
    step = interval_s * 1_000_000_000
    key = start - start % step
    edges = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    last = np.r_[edges[1:], len(key)] - 1
    return {
        "start": key[edges],
        "open": bars["open"][edges],
        "high": np.maximum.reduceat(bars["high"], edges),
        "low": np.minimum.reduceat(bars["low"], edges),
        "close": bars["close"][last],
        "volume": np.add.reduceat(bars["volume"], edges),
    }


def _as_datetime(ns: np.ndarray) -> np.ndarray:
    return np.asarray(ns, np.int64).astype("datetime64[ns]").astype("datetime64[ms]")


class PriceChart(pn.viewable.Viewer):
    """The symbol's candles, volume, MAs and anomalies; ``update`` streams what is new."""

    selection = param.ClassSelector(class_=Selection)

    def __init__(self, store: DataStore, **params: Any) -> None:
        super().__init__(**params)
        self.store = store
        self.candle_src = ColumnDataSource(self._empty_candles(), name="candles")
        self.ma_src = ColumnDataSource(
            {"x": _as_datetime(np.empty(0)), "fast": [], "slow": [], "z": [], "vol": []},
            name="signals",
        )
        self.anomaly_src = ColumnDataSource(
            {k: [] for k in ("x", "y", "type", "method", "severity", "score", "color", "when")},
            name="anomalies",
        )
        self.price = self._price_figure()
        self.volume = self._volume_figure()
        self.strip = self._strip_figure()
        self._shown: tuple[str, str] | None = None
        self._last_bar_start = -1
        self._last_signal_ts = -1
        self._last_anomaly_ts = -1
        self._layout = pn.Column(
            pn.pane.Bokeh(self.price, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.volume, sizing_mode="stretch_width"),
            pn.pane.Bokeh(self.strip, sizing_mode="stretch_width"),
            sizing_mode="stretch_width",
        )

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout

    # -- figures -------------------------------------------------------------------------------

    @staticmethod
    def _empty_candles() -> dict[str, Any]:
        return {
            "x": _as_datetime(np.empty(0)),
            "open": [],
            "high": [],
            "low": [],
            "close": [],
            "volume": [],
            "color": [],
            "width": [],
        }

    def _price_figure(self) -> Any:
        p = figure(
            height=380,
            x_axis_type="datetime",
            tools="pan,xwheel_zoom,box_zoom,reset,save",
            active_scroll="xwheel_zoom",
            sizing_mode="stretch_width",
            title="price",
            name="price_chart",
        )
        p.segment("x", "high", "x", "low", color="color", source=self.candle_src)
        p.vbar(
            "x",
            "width",
            "open",
            "close",
            fill_color="color",
            line_color="color",
            source=self.candle_src,
        )
        p.line(
            "x", "fast", source=self.ma_src, color="#1f77b4", legend_label="EMA 12", line_width=1.5
        )
        p.line(
            "x", "slow", source=self.ma_src, color="#9467bd", legend_label="EMA 26", line_width=1.5
        )
        marks = p.scatter(
            "x",
            "y",
            source=self.anomaly_src,
            size=9,
            color="color",
            line_color="black",
            marker="triangle",
            legend_label="anomaly",
        )
        p.add_tools(
            HoverTool(
                renderers=[marks],
                tooltips=[
                    ("anomaly", "@type (@method)"),
                    ("severity", "@severity"),
                    ("score", "@score{0.00}"),
                    ("price", "@y{0,0.0000}"),
                    ("at", "@when"),
                ],
            )
        )
        p.legend.location = "top_left"
        p.legend.click_policy = "hide"
        p.x_range = DataRange1d(
            follow="end", follow_interval=VISIBLE_BARS * 60_000, range_padding=0.02
        )
        return p

    def _volume_figure(self) -> Any:
        v = figure(
            height=120,
            x_axis_type="datetime",
            tools="",
            sizing_mode="stretch_width",
            title="volume",
        )
        v.x_range = self.price.x_range
        v.vbar(
            "x",
            "width",
            "volume",
            0,
            fill_color="color",
            line_color="color",
            alpha=0.6,
            source=self.candle_src,
        )
        return v

    def _strip_figure(self) -> Any:
        s = figure(
            height=150,
            x_axis_type="datetime",
            tools="",
            sizing_mode="stretch_width",
            title="return z-score / EWMA volatility",
        )
        s.x_range = self.price.x_range
        s.line("x", "z", source=self.ma_src, color="#636363", legend_label="z (returns)")
        s.extra_y_ranges = {"vol": Range1d(start=0, end=0.01)}
        s.add_layout(LinearAxis(y_range_name="vol", axis_label="volatility"), "right")
        s.line(
            "x",
            "vol",
            source=self.ma_src,
            color="#e6550d",
            legend_label="EWMA vol",
            y_range_name="vol",
        )
        s.legend.location = "top_left"
        return s

    # -- streaming -----------------------------------------------------------------------------

    def update(self) -> None:
        sel = self.selection
        shown = (sel.symbol, sel.interval)
        if shown != self._shown:  # a new symbol or interval: start over
            self._shown = shown
            self._last_bar_start = self._last_signal_ts = self._last_anomaly_ts = -1
            self.candle_src.data = self._empty_candles()
            self.ma_src.data = {k: [] for k in self.ma_src.data}
            self.anomaly_src.data = {k: [] for k in self.anomaly_src.data}
            self.price.title.text = f"{sel.symbol} · {sel.interval} candles"
            self.price.x_range.follow_interval = VISIBLE_BARS * INTERVALS[sel.interval] * 1000
        self._update_candles(sel.symbol, INTERVALS[sel.interval])
        self._update_signals(sel.symbol)
        self._update_anomalies(sel.symbol)

    def _update_candles(self, symbol: str, interval_s: int) -> None:
        c = candles(self.store.hub.bar_series(symbol), interval_s)
        n = len(c["start"])
        if not n:
            return
        c = {k: v[-MAX_BARS:] for k, v in c.items()}
        width = interval_s * 1000 * 0.7
        colors = np.where(c["close"] >= c["open"], UP, DOWN)
        new = c["start"] > self._last_bar_start
        have = len(self.candle_src.data["x"])
        if have and self._last_bar_start >= 0:  # the bar we showed last may have moved on
            k = np.flatnonzero(c["start"] == self._last_bar_start)
            if len(k):
                i = int(k[0])
                self.candle_src.patch(
                    {
                        f: [(have - 1, float(c[f][i]))]
                        for f in ("open", "high", "low", "close", "volume")
                    }
                    | {"color": [(have - 1, str(colors[i]))]}
                )
        if new.any():
            self.candle_src.stream(
                {
                    "x": _as_datetime(c["start"][new]),
                    "open": c["open"][new],
                    "high": c["high"][new],
                    "low": c["low"][new],
                    "close": c["close"][new],
                    "volume": c["volume"][new],
                    "color": colors[new],
                    "width": np.full(int(new.sum()), width),
                },
                rollover=MAX_BARS,
            )
            self._last_bar_start = int(c["start"][-1])

    def _update_signals(self, symbol: str) -> None:
        s = self.store.hub.strip(symbol)
        new = s["ts"] > self._last_signal_ts
        if not new.any():
            return
        self.ma_src.stream(
            {
                "x": _as_datetime(s["ts"][new]),
                "fast": s["ma_fast"][new],
                "slow": s["ma_slow"][new],
                "z": s["z_ret"][new],
                "vol": s["ewma_vol"][new],
            },
            rollover=MAX_POINTS,
        )
        self._last_signal_ts = int(s["ts"][-1])
        vol = s["ewma_vol"][np.isfinite(s["ewma_vol"])]
        if len(vol):
            self.strip.extra_y_ranges["vol"].end = float(vol.max()) * 1.2 or 0.01

    def _update_anomalies(self, symbol: str) -> None:
        docs = [
            d
            for d in list(self.store.hub.anomaly_history)
            if d["symbol"] == symbol and d["ts"] > self._last_anomaly_ts and "price" in d
        ]
        if not docs:
            return
        self.anomaly_src.stream(
            {
                "x": _as_datetime(np.array([d["ts"] for d in docs])),
                "y": [d["price"] for d in docs],
                "type": [d["type"] for d in docs],
                "method": [d["method"] for d in docs],
                "severity": [d["severity"] for d in docs],
                "score": [d["deviation"] for d in docs],
                "color": [SEVERITY_COLORS.get(d["severity"], "#999") for d in docs],
                "when": [d["timestamp"] for d in docs],
            },
            rollover=MAX_MARKERS,
        )
        self._last_anomaly_ts = max(d["ts"] for d in docs)
