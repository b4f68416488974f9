"""Inbound rate limiting per session: a token bucket, plus the rule for closing a flooder."""

from __future__ import annotations

import time

from cryptowire.allowance import Allowance


class TokenBucket(Allowance):
    """``rate`` messages per second with a burst of ``rate``.

    A message that finds the bucket empty is refused (the client gets
    ``RATE_LIMIT_EXCEEDED``); a client refused more than ``rate`` times within one second is
    flooding and is closed with 4009.
    """

    __slots__ = ("refused", "_window", "_refused_in_window")

    def __init__(self, rate: int) -> None:
        now = time.monotonic()
        super().__init__(rate, now)
        self.refused = 0
        self._window = now
        self._refused_in_window = 0

    @property
    def rate(self) -> int:
        return self.count

    def allow(self, now: float | None = None) -> bool:
        """Spend one message if the bucket allows it; count a refusal if not."""
        now = time.monotonic() if now is None else now
        if self.wait(now) == 0.0:
            self.take()
            return True
        self.refused += 1
        if now - self._window >= 1.0:
            self._window = now
            self._refused_in_window = 0
        self._refused_in_window += 1
        return False

    @property
    def flooding(self) -> bool:
        return self._refused_in_window > self.count
