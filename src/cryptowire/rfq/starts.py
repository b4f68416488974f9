"""How often quote sessions may be started: per connection, and per API key (an anonymous
client: per address) across all its connections.

Each start (``startSession``, or an ``updateSession`` that moves a session to another pair)
makes the rate provider hold tickers, and an unknown pair makes sources refuse symbols:
without a bound, one anonymous client could churn sources and memory at its inbound message
rate. Both bounds are token buckets of ``count`` starts per :data:`PERIOD_S` (a burst of
``count``); the per-key buckets live in a map of at most :data:`MAX_KEYS` entries, the least
recently used dropped first. Sans-I/O: the clock is injectable.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from cryptowire.allowance import Allowance

#: The period the start limits count over (``rfq.max_session_starts*`` are per minute).
PERIOD_S = 60.0
#: Most keys/addresses whose start budget is remembered at once.
MAX_KEYS = 10_000


@dataclass(frozen=True, slots=True)
class StartRefused:
    """Why a start was refused, for the 001 error reply."""

    message: str
    retry_after_ms: int


class StartLimits:
    """The start budgets of one node: one :class:`Allowance` per connection (made by
    :meth:`connection`) and one per key or address (kept here, bounded)."""

    def __init__(self, per_connection: int, per_key: int, *,
                 clock: Callable[[], float] = time.monotonic, max_keys: int = MAX_KEYS) -> None:
        self.per_connection = per_connection
        self.per_key = per_key
        self.max_keys = max_keys
        self._clock = clock
        self._keys: OrderedDict[str, Allowance] = OrderedDict()

    def __len__(self) -> int:
        return len(self._keys)

    def connection(self) -> Allowance:
        return Allowance(self.per_connection, self._clock(), PERIOD_S)

    def _for_key(self, key: str, now: float) -> Allowance:
        keys = self._keys
        allowance = keys.get(key)
        if allowance is None:
            allowance = keys[key] = Allowance(self.per_key, now, PERIOD_S)
            while len(keys) > self.max_keys:
                keys.popitem(last=False)
        else:
            keys.move_to_end(key)
        return allowance

    def admit(self, connection: Allowance, key: str, who: str) -> StartRefused | None:
        """Spend one start of ``connection`` and of ``key`` (``who`` names it in the reason:
        "this API key", "this address"), or say why not; nothing is spent when refused."""
        now = self._clock()
        wait = connection.wait(now)
        if wait:
            return _refused(f"at most {self.per_connection} per minute on one connection",
                            wait)
        by_key = self._for_key(key, now)
        wait = by_key.wait(now)
        if wait:
            return _refused(f"at most {self.per_key} per minute for {who}", wait)
        connection.take()
        by_key.take()
        return None


def _refused(limit: str, wait_s: float) -> StartRefused:
    seconds = max(1, math.ceil(wait_s))
    return StartRefused(f"Too many quote sessions started: {limit}; try again in "
                        f"{seconds} s.", math.ceil(wait_s * 1000))
