"""Repeated identical errors are logged at most once per :data:`INTERVAL_S`.

A handler that logs each client frame it fails on would let one client write the log: 4,500
frames of the same bad input were 3.9 MB of tracebacks (issue 10, item 17). Call sites that
a client can trigger log through :func:`log_throttled` / :func:`log_exception`: a record goes
out when its key - (logger name, message template, exception type) - was not logged within
the interval, and says how many like it were held back since the last one. Arguments are not
part of the key: "op failed on session 1" and "... session 2" are the same error. The state
is per process, like the loggers it guards.
"""

from __future__ import annotations

import logging
import sys
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable

#: Seconds during which a repeat of a logged error is counted instead of logged.
INTERVAL_S = 60.0
#: Distinct errors remembered at once (the least recently logged are forgotten first).
MAX_KEYS = 1024


class Throttle:
    """Per key: the time it was last let through and how many were held back since."""

    def __init__(self, interval_s: float = INTERVAL_S, *, max_keys: int = MAX_KEYS,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.interval_s = interval_s
        self.max_keys = max_keys
        self._clock = clock
        self._seen: OrderedDict[Hashable, list[float]] = OrderedDict()

    def admit(self, key: Hashable) -> int | None:
        """``None`` to hold this one back; else how many were held back before it."""
        now = self._clock()
        entry = self._seen.get(key)
        if entry is not None and now - entry[0] < self.interval_s:
            entry[1] += 1
            return None
        held = int(entry[1]) if entry is not None else 0
        self._seen[key] = [now, 0.0]
        self._seen.move_to_end(key)
        while len(self._seen) > self.max_keys:
            self._seen.popitem(last=False)
        return held


def _suffix(held: int) -> str:
    return f" ({held} more like it not logged since the last one)" if held else ""


#: The process's throttle (loggers are per process too); tests may swap it for a fresh one.
THROTTLE = Throttle()


def log_throttled(logger: logging.Logger, level: int, msg: str, *args: object,
                  exc_info: bool = False, throttle: Throttle | None = None,
                  stacklevel: int = 2) -> None:
    """``logger.log(level, msg, *args)`` unless the same error was logged within the
    interval (``exc_info`` adds the exception being handled, whose type is in the key)."""
    if not logger.isEnabledFor(level):
        return
    exc = sys.exc_info()[1] if exc_info else None
    gate = throttle if throttle is not None else THROTTLE
    held = gate.admit((logger.name, msg, type(exc).__name__ if exc is not None else None))
    if held is None:
        return
    logger.log(level, msg + _suffix(held), *args, exc_info=exc_info,
               stacklevel=stacklevel)


def log_exception(logger: logging.Logger, msg: str, *args: object) -> None:
    """:meth:`logging.Logger.exception`, throttled (call it in an ``except`` block)."""
    log_throttled(logger, logging.ERROR, msg, *args, exc_info=True, stacklevel=3)

