"""The bounded buffer between the connection's reader and ``async for`` (no task per item).

When the user stops iterating, the buffer fills, the reader stops reading the socket, the
kernel buffers fill, and the hub eventually closes the session as a slow consumer (4008):
the client then reconnects and recovers, instead of growing its memory without bound.
Status events (gaps, disconnects) skip the bound: there are few of them and they must not
block the code that produces them.
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class Inbox(Generic[T]):
    """A FIFO with a soft bound for :meth:`put`, and an end (normal or with an error)."""

    def __init__(self, limit: int) -> None:
        self._items: deque[T] = deque()
        self._limit = max(limit, 1)
        self._readable = asyncio.Event()
        self._writable = asyncio.Event()
        self._writable.set()
        self._ended = False
        self._error: BaseException | None = None

    def __len__(self) -> int:
        return len(self._items)

    @property
    def ended(self) -> bool:
        return self._ended

    async def put(self, item: T) -> None:
        """Append ``item``, waiting while the buffer is full."""
        while len(self._items) >= self._limit and not self._ended:
            self._writable.clear()
            await self._writable.wait()
        self.put_nowait(item)

    def put_nowait(self, item: T) -> None:
        """Append ``item`` even over the bound (dropped once the inbox has ended)."""
        if self._ended:
            return
        self._items.append(item)
        self._readable.set()

    def end(self, error: BaseException | None = None) -> None:
        """No more items: :meth:`get` drains what is buffered, then raises ``error`` (or
        ``StopAsyncIteration``). The first end wins."""
        if self._ended:
            return
        self._ended = True
        self._error = error
        self._readable.set()
        self._writable.set()

    async def get(self) -> T:
        while not self._items:
            if self._ended:
                if self._error is not None:
                    raise self._error
                raise StopAsyncIteration
            self._readable.clear()
            await self._readable.wait()
        item = self._items.popleft()
        if len(self._items) < self._limit:
            self._writable.set()
        return item
