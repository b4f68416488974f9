"""Wall-clock time in the units cryptowire uses everywhere (a low-level module: stdlib only):
epoch milliseconds, and their ISO 8601 spelling.

Named ``clock`` rather than ``time`` so that no tool confuses it with the standard library.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


def now_ms() -> int:
    """Wall-clock time in integer epoch milliseconds (the native protocol's and the store's
    timestamp unit)."""
    return time.time_ns() // 1_000_000


def iso(ms: int) -> str:
    """Epoch milliseconds as ISO 8601 UTC with milliseconds and ``Z``."""
    dt = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
