"""What one browser session is looking at."""

from __future__ import annotations

import param

INTERVALS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600}


class Selection(param.Parameterized):
    symbol = param.String(default="BTCUSDT")
    interval: param.Selector = param.Selector(default="1m", objects=list(INTERVALS))
