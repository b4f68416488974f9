"""A settable epoch-ms clock for store tests (the stores take or read ``now_ms``)."""

from __future__ import annotations

T0 = 1_700_000_000_000


class Clock:
    """Returns ``now``; a test moves it by assignment."""

    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now
