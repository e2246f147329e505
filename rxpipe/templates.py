"""Message templates users write (rule annotations, notification settings): plain names only.

Only ``{name}`` and ``{name:format}`` of the values given are filled; there is no attribute or
index access, so a template cannot reach into Python objects. Anything else stays as written.
"""

from __future__ import annotations

import re
from typing import Any

_FIELD = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)(?::([^{}]*))?\}")


def render_template(template: str, values: dict[str, Any]) -> str:
    """Fill ``{name}``-style fields; only plain names of ``values`` (no attribute or index
    access), anything else is left as written.

    >>> render_template("{symbol} at {value:.1f} ({oops.__class__})", {"symbol": "BTC", "value": 2})
    'BTC at 2.0 ({oops.__class__})'
    """

    def fill(m: re.Match[str]) -> str:
        name, spec = m.group(1), m.group(2) or ""
        if name not in values:
            return m.group(0)
        try:
            return format(values[name], spec)
        except (ValueError, TypeError):
            return str(values[name])

    return _FIELD.sub(fill, template)
