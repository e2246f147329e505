"""Timestamps as rxpipe shows them: RFC 3339 in UTC (as the seed's Go service wrote them).

>>> iso(1_700_000_000_123_456_789)
'2023-11-14T22:13:20.123456Z'
>>> iso_many(np.array([0, 1_500_000_000], np.int64)).tolist()
['1970-01-01T00:00:00.000000Z', '1970-01-01T00:00:01.500000Z']
>>> parse_time("2023-03-10T00:00:00Z"), parse_time("1678406400000000000")
(1678406400000000000, 1678406400000000000)
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

import numpy as np

from rxpipe.durations import parse_duration
from rxpipe.errors import InputError


def iso(ns: int) -> str:
    """Nanoseconds since the epoch as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    whole = datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC)
    return whole.replace(microsecond=(ns // 1000) % 1_000_000).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_many(ns: np.ndarray) -> np.ndarray:
    """The same for a whole column, vectorised."""
    stamps = np.asarray(ns, np.int64).astype("datetime64[ns]").astype("datetime64[us]")
    text = np.datetime_as_string(stamps, unit="us")
    return np.char.add(text, "Z")


def parse_time(text: str, *, now_ns: int | None = None) -> int:
    """ISO 8601 (naive means UTC), epoch nanoseconds, or a duration ago (``7d``) to ns."""
    text = text.strip()
    if text.lstrip("-").isdigit():
        return int(text)
    try:
        ago = parse_duration(text)
    except InputError:
        pass
    else:
        return (time.time_ns() if now_ns is None else now_ns) - int(ago * 1e9)
    try:
        stamp = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InputError(
            f"time {text!r} is not ISO 8601 (2023-03-10T00:00:00Z), epoch nanoseconds, "
            "nor a duration ago (7d)"
        ) from None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return int(stamp.timestamp()) * 1_000_000_000 + stamp.microsecond * 1000
