"""Who may call the API: a bearer token for mutating calls, and a rate limit per client.

>>> token_ok("Bearer s3cret", "s3cret"), token_ok("Bearer nope", "s3cret"), token_ok(None, "s3cret")
(True, False, False)
>>> limits = ClientLimits(per_s=1.0, burst=2.0)
>>> [limits.retry_after("10.0.0.1", now=0.0) for _ in range(3)]
[0.0, 0.0, 1.0]
"""

from __future__ import annotations

import hmac
import threading

from rxpipe.notify.ratelimit import TokenBucket


def token_ok(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries the token (compared in constant time)."""
    if not header or not token:
        return False
    scheme, _, value = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        value.strip().encode(), token.encode()
    )


class ClientLimits:
    """A token bucket per client address; ``retry_after`` is 0 when a request may go ahead,
    else the seconds until it may (the ``Retry-After`` of a 429)."""

    def __init__(self, per_s: float, burst: float, max_clients: int = 10_000) -> None:
        self.per_s = per_s
        self.burst = burst
        self.max_clients = max_clients
        self._buckets: dict[str, TokenBucket] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, now: float) -> float:
        if self.per_s <= 0:
            return 0.0
        with self._lock:
            bucket = self._buckets.get(client)
            if bucket is None:
                if len(self._buckets) >= self.max_clients:  # bounded memory: forget the oldest
                    self._buckets.pop(next(iter(self._buckets)))
                bucket = self._buckets[client] = TokenBucket(self.burst, self.per_s)
            if bucket.take(now):
                return 0.0
            return max(0.001, (1.0 - bucket.tokens) / self.per_s)
