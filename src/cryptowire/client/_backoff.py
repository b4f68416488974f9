"""Capped, jittered exponential backoff for reconnects.

"Equal jitter" (half fixed, half random, as in the AWS architecture blog's comparison of
backoff strategies): the n-th delay is uniform in ``[d/2, d]`` with
``d = min(cap, base * 2**n)``, so clients that lost the same hub spread out, no delay is ever
near zero, and none exceeds ``cap``.
"""

from __future__ import annotations

import random
from collections.abc import Callable


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
        # min() before the power would overflow a float after ~1000 attempts.
        return min(self.cap, self.base * 2.0 ** min(self.attempts, 62))

    def next(self) -> float:
        """The delay before the next attempt (and count the attempt)."""
        d = self.ceiling()
        self.attempts += 1
        return d / 2 + self._random() * d / 2

    def reset(self) -> None:
        self.attempts = 0
