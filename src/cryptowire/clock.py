"""Wall-clock time in the units cryptowire uses everywhere (a low-level module: stdlib only).

Named ``clock`` rather than ``time`` so that no tool confuses it with the standard library.
"""

from __future__ import annotations

import time


def now_ms() -> int:
    """Wall-clock time in integer epoch milliseconds (the native protocol's and the store's
    timestamp unit)."""
    return time.time_ns() // 1_000_000
