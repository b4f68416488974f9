"""The bounded inbox between the reader and ``async for``."""

from __future__ import annotations

import asyncio

import pytest

from cryptowire.client._inbox import Inbox


async def test_put_waits_when_full_and_status_skips_the_bound() -> None:
    inbox: Inbox[int] = Inbox(2)
    await inbox.put(1)
    await inbox.put(2)
    blocked = asyncio.create_task(inbox.put(3))
    await asyncio.sleep(0)  # one loop turn: the task runs to the await it blocks on
    assert not blocked.done()
    inbox.put_nowait(99)  # a status event is never held back
    assert await inbox.get() == 1
    assert await inbox.get() == 2
    await asyncio.wait_for(blocked, 1)
    assert [await inbox.get(), await inbox.get()] == [99, 3]


async def test_end_drains_then_stops_or_raises() -> None:
    inbox: Inbox[str] = Inbox(10)
    inbox.put_nowait("a")
    inbox.end(PermissionError("revoked"))
    inbox.end()  # the first end wins
    inbox.put_nowait("dropped")
    assert await inbox.get() == "a"
    with pytest.raises(PermissionError):
        await inbox.get()
    clean: Inbox[str] = Inbox(10)
    waiter = asyncio.create_task(clean.get())
    await asyncio.sleep(0)  # one loop turn: the task runs to the await it blocks on
    clean.end()
    with pytest.raises(StopAsyncIteration):
        await asyncio.wait_for(waiter, 1)


async def test_end_releases_a_blocked_put() -> None:
    inbox: Inbox[int] = Inbox(1)
    await inbox.put(1)
    blocked = asyncio.create_task(inbox.put(2))
    await asyncio.sleep(0)  # one loop turn: the task runs to the await it blocks on
    inbox.end()
    await asyncio.wait_for(blocked, 1)
