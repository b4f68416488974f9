"""Waiting on a condition with a deadline: the one way tests synchronise (never a fixed sleep)."""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable

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
