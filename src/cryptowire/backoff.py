"""Capped, jittered exponential backoff: the one formula every retry loop uses.

"Equal jitter" (half fixed, half random, as in the AWS architecture blog's comparison of
backoff strategies): the n-th delay is uniform in ``[d/2, d]`` with
``d = min(cap, base * 2**n)``, so peers that lost the same upstream spread out, no delay is
ever near zero, and none exceeds ``cap``. A low-level module: it imports nothing from
cryptowire (the client SDK uses it too).
"""

from __future__ import annotations

import random
from collections.abc import Callable


def backoff_ceiling(attempt: int, *, base: float = 0.5, cap: float = 30.0) -> float:
    """The largest delay attempt number ``attempt`` (from 0) may get."""
    # min() before the power would overflow a float after ~1000 attempts.
    return min(cap, base * 2.0 ** min(attempt, 62))


def backoff_delay(attempt: int, *, base: float = 0.5, cap: float = 30.0,
                  rand: Callable[[], float] = random.random) -> float:
    """The delay before attempt number ``attempt`` (from 0): uniform in ``[d/2, d]``."""
    d = backoff_ceiling(attempt, base=base, cap=cap)
    return d / 2 + rand() * d / 2


class Backoff:
    """Delays for successive failed attempts; :meth:`reset` after a healthy connection."""

    __slots__ = ("base", "cap", "attempts", "_random")

    def __init__(self, base: float = 0.5, cap: float = 30.0, *,
                 rand: Callable[[], float] = random.random) -> None:
        if base <= 0 or cap < base:
            raise ValueError("backoff needs 0 < base <= cap")
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._random = rand

    def ceiling(self) -> float:
        """The largest delay the next attempt may get."""
        return backoff_ceiling(self.attempts, base=self.base, cap=self.cap)

    def next(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        d = backoff_delay(self.attempts, base=self.base, cap=self.cap, rand=self._random)
        self.attempts += 1
        return d

    def reset(self) -> None:
        self.attempts = 0
