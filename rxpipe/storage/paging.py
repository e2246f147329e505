"""Pages of rows, newest first, with keyset cursors (the key of a page's last row, opaque to
clients), and the conversions between nanoseconds and PostgreSQL's timestamps.

>>> key = decode_cursor(encode_cursor([1700000000000000000, 7]), (int, int))
>>> key
[1700000000000000000, 7]
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from rxpipe.errors import InputError

FAR_PAST = -(2**62)
FAR_FUTURE = 2**62


def to_timestamp(ns: int) -> datetime:
    return datetime.fromtimestamp(ns // 1_000_000_000, tz=UTC).replace(
        microsecond=(ns // 1000) % 1_000_000
    )


def to_ns(t: datetime) -> int:
    return int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000


def encode_cursor(key: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


def decode_cursor(text: str | None, shape: tuple[type, ...]) -> list[Any] | None:
    """The key in a cursor, checked against the types the query expects."""
    if not text:
        return None
    try:
        key = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except ValueError:
        raise InputError("not a cursor this API gave out", source="cursor") from None
    if (
        not isinstance(key, list)
        or len(key) != len(shape)
        or not all(
            isinstance(v, t) and not isinstance(v, bool) for v, t in zip(key, shape, strict=True)
        )
    ):
        raise InputError("not a cursor this API gave out", source="cursor")
    return key


@dataclass
class Range:
    """A time range in ns (start inclusive, end exclusive), a page size and a cursor."""

    start: int = FAR_PAST
    end: int = FAR_FUTURE
    limit: int = 100
    cursor: str | None = None


@dataclass
class Page:
    data: list[dict[str, Any]]
    next_cursor: str | None
    raw: str | None = None  # the rows as JSON text already (built by the database)
    raw_count: int = 0

    def to_json(self, **extra: Any) -> dict[str, Any]:
        data = json.loads(self.raw) if self.raw is not None else self.data
        return {**extra, "data": data, "count": len(data), "next_cursor": self.next_cursor}

    def to_text(self, **extra: Any) -> str:
        """The page as JSON text; rows the database serialised are spliced in, not re-encoded."""
        if self.raw is None:
            return json.dumps(self.to_json(**extra), default=str, allow_nan=False)
        head = json.dumps(
            {**extra, "count": self.raw_count, "next_cursor": self.next_cursor},
            default=str,
            allow_nan=False,
        )
        return f'{head[:-1]}, "data": {self.raw}}}'


def page_of(rows: list[dict[str, Any]], limit: int, key: list[Any] | None) -> Page:
    return Page(rows[:limit], encode_cursor(key) if len(rows) > limit and key else None)


def finite_or_none(v: Any) -> float | None:
    return None if v is None or not np.isfinite(v) else float(v)
