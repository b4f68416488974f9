"""A token bucket: ``count`` actions per ``period_s``, refilled continuously, ``count`` at most.

The one refill rule of every rate limit in the hub: a session's inbound messages
(``server.max_inbound_rate`` per second), REST reads per caller (``server.max_rest_rate``),
RFQ session starts per connection and per key (``rfq.max_session_starts*`` per minute).
"""

from __future__ import annotations

import math


class Allowance:
    """``count`` actions per ``period_s``; a burst of ``count``. ``count = 0`` allows nothing."""

    __slots__ = ("count", "period_s", "tokens", "stamp")

    def __init__(self, count: int, now: float, period_s: float = 1.0) -> None:
        if count < 0:
            raise ValueError("an allowance cannot be negative")
        self.count = count
        self.period_s = period_s
        self.tokens = float(count)
        self.stamp = now

    def wait(self, now: float) -> float:
        """Refill up to ``now``; seconds until one action is allowed (0: allowed now)."""
        if self.count == 0:
            return math.inf
        self.tokens = min(float(self.count),
                          self.tokens + (now - self.stamp) * self.count / self.period_s)
        self.stamp = now
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) * self.period_s / self.count

    def take(self) -> None:
        """Spend one action (after :meth:`wait` said 0)."""
        self.tokens -= 1.0
