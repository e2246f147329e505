"""Durations written the way people write them: ``500ms``, ``30s``, ``5m``, ``4h``, ``7d``, ``1w``."""

from __future__ import annotations

import math
import re

from rxpipe.errors import InputError

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$")


def parse_duration(text: str | float | int, *, default_unit: str = "s") -> float:
    """Seconds in a duration.

    >>> parse_duration("7d"), parse_duration("90m"), parse_duration("250ms"), parse_duration(3)
    (604800.0, 5400.0, 0.25, 3.0)
    """
    if isinstance(text, int | float) and not isinstance(text, bool):
        if not math.isfinite(text) or text < 0:
            raise InputError(f"duration {text!r} is not a finite number of seconds >= 0")
        return float(text) * _UNITS[default_unit]
    if not isinstance(text, str):
        raise InputError(
            f"duration {text!r} is not a number with a unit such as 500ms, 30s, 5m, 4h, 7d"
        )
    m = _PATTERN.match(text)
    if not m:
        raise InputError(
            f"duration {text!r} is not a number with a unit such as 500ms, 30s, 5m, 4h, 7d"
        )
    return float(m.group(1)) * _UNITS[m.group(2) or default_unit]
