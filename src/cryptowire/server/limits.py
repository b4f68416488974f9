"""Inbound rate limiting per session: a token bucket, plus the rule for closing a flooder."""

from __future__ import annotations

import time


class TokenBucket:
    """``rate`` messages per second with a burst of ``rate``.

    A message that finds the bucket empty is refused (the client gets
    ``RATE_LIMIT_EXCEEDED``); a client refused more than ``rate`` times within one second is
    flooding and is closed with 4009.
    """

    __slots__ = ("rate", "tokens", "stamp", "refused", "_window", "_refused_in_window")

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.tokens = float(rate)
        self.stamp = time.monotonic()
        self.refused = 0
        self._window = self.stamp
        self._refused_in_window = 0

    def take(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self.tokens = min(self.rate, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        self.refused += 1
        if now - self._window >= 1.0:
            self._window = now
            self._refused_in_window = 0
        self._refused_in_window += 1
        return False

    @property
    def flooding(self) -> bool:
        return self._refused_in_window > self.rate
