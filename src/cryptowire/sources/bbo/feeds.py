"""What :class:`~cryptowire.sources.bbo.source.BboSource` reads of the node, and the state
it keeps per venue book and per symbol."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Protocol

from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.state import ChannelState
from cryptowire.events import Publication
from cryptowire.sources.bbo.consolidation import Consolidation, Quote

Watcher = Callable[[Publication], None]


class Demand(Protocol):
    async def acquire(self, channel: Channel) -> None: ...

    def release(self, name: str) -> None: ...


class Watching(Protocol):
    async def watch(self, channel: str, fn: Watcher) -> None: ...

    async def unwatch(self, channel: str, fn: Watcher) -> None: ...


class States(Protocol):
    async def state(self, channel: str) -> Publication | None: ...


class BboNode(Protocol):
    """The parts of the node a :class:`~cryptowire.sources.bbo.source.BboSource` uses: the
    grammar, demand, the hub's in-process watchers and the broker's stored states."""

    @property
    def grammar(self) -> ChannelGrammar: ...

    @property
    def demand(self) -> Demand: ...

    @property
    def hub(self) -> Watching: ...

    @property
    def broker(self) -> States: ...


@dataclass(eq=False)
class VenueFeed:
    """One venue's book of one symbol, as the source follows it."""

    venue: str  # the public name (bybit, binance, okx...)
    channel: str
    state: ChannelState
    watcher: Watcher | None = None
    resyncing: bool = False
    had_book: bool = False  # known once: unknown since is a gap, not a wait

    def top(self) -> tuple[Quote | None, Quote | None] | None:
        """The book's best bid and ask, or ``None`` while the book is unknown."""
        book = self.state.book
        if not self.state.known or book is None:
            return None
        self.had_book = True
        return _quote(book.best_bid()), _quote(book.best_ask())

    def unknown_reason(self) -> str:
        return "gap" if self.had_book or self.state.marker() is not None else "waiting"


@dataclass(eq=False)
class SymbolFeeds:
    """One ``bbo:<SYMBOL>`` being served: its venues' books and its consolidation."""

    consolidation: Consolidation
    feeds: dict[str, VenueFeed] = field(default_factory=dict)  # channel -> feed
    #: Venues whose source refused the symbol: channel venue -> public name (retried).
    refused: dict[str, str] = field(default_factory=dict)
    timer: asyncio.TimerHandle | None = None  # the next staleness check
    retry: asyncio.TimerHandle | None = None  # the next try of the refused venues
    published: int = 0

    def cancel_timers(self) -> None:
        for handle in (self.timer, self.retry):
            if handle is not None:
                handle.cancel()
        self.timer = self.retry = None


class _Lock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class KeyedLocks:
    """One lock per key, dropped with its last user."""

    def __init__(self) -> None:
        self._locks: dict[str, _Lock] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        if entry is None:
            entry = self._locks[key] = _Lock()
        entry.users += 1
        try:
            async with entry.lock:
                yield
        finally:
            entry.users -= 1
            if not entry.users:
                del self._locks[key]


def _quote(level: list[str] | None) -> Quote | None:
    return None if level is None else (level[0], level[1])
