"""Waiting on a condition with a deadline: the one way tests synchronise (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Any

POLL_S = 0.01


async def eventually(pred: Callable[[], bool | Awaitable[bool]], timeout: float = 5.0,
                     what: str = "condition") -> float:
    """Poll ``pred`` (plain or async) until it is true; return the seconds it took.

    Raises ``AssertionError`` naming ``what`` when ``timeout`` passes first.
    """
    loop = asyncio.get_running_loop()
    start = loop.time()
    while True:
        result = pred()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return loop.time() - start
        if loop.time() - start > timeout:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(POLL_S)


def holders(hub: Any, channel: str) -> int:
    """How many of ``hub``'s sessions hold ``channel``.

    A subscribe adds the channel to the session only after it has taken the stream's origin,
    so a publication from then on reaches the session (live, buffered or replayed).
    """
    return sum(channel in s.channels for s in hub.sessions.values())


async def subscribed(hub: Any, channel: str, count: int = 1, timeout: float = 5.0) -> float:
    """Wait until ``count`` sessions of ``hub`` (a :class:`cryptowire.core.hub.Hub`) hold
    ``channel``: the condition a test needs before publishing what a socket should get."""
    return await eventually(lambda: holders(hub, channel) >= count, timeout,
                            f"{count} session(s) subscribed to {channel}")
