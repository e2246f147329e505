"""Token buckets: at most one notification per (rule, channel) per 5 minutes by default (the
seed's limit), and a global cap per channel."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class TokenBucket:
    """``capacity`` tokens, refilled at ``per_s`` tokens a second.

    >>> b = TokenBucket(capacity=1, per_s=1 / 300)
    >>> b.take(0.0), b.take(10.0), b.take(301.0)
    (True, False, True)
    """

    capacity: float
    per_s: float
    tokens: float = -1.0
    last: float | None = None

    def take(self, now: float) -> bool:
        if self.last is None:
            self.tokens = self.capacity
        else:
            self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.per_s)
        self.last = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False


class RateLimiter:
    """Per (rule, channel) and per channel buckets; ``allow`` takes from both or neither."""

    def __init__(
        self,
        *,
        per_rule_s: float = 300.0,
        per_rule_burst: float = 1.0,
        channel_per_minute: float = 30.0,
    ) -> None:
        self.per_rule_s = per_rule_s
        self.per_rule_burst = per_rule_burst
        self.channel_per_minute = channel_per_minute
        self._rule: dict[tuple[str, str], TokenBucket] = {}
        self._channel: dict[str, TokenBucket] = {}

    def allow(self, rule_id: str, channel: str, now: float) -> bool:
        if self.per_rule_s <= 0:
            rule_ok = True
        else:
            rb = self._rule.setdefault(
                (rule_id, channel), TokenBucket(self.per_rule_burst, 1.0 / self.per_rule_s)
            )
            rule_ok = rb.take(now)
        if not rule_ok:
            return False
        cb = self._channel.setdefault(
            channel, TokenBucket(self.channel_per_minute, self.channel_per_minute / 60.0)
        )
        if cb.take(now):
            return True
        rb2 = self._rule.get((rule_id, channel))
        if rb2 is not None:  # give the rule's token back: the channel said no
            rb2.tokens = min(rb2.capacity, rb2.tokens + 1.0)
        return False
