"""BboSource: the :class:`~cryptowire.core.source.Source` serving ``bbo:<SYMBOL>``.

``bbo:X`` is demand-driven like any channel: its first subscriber makes the hub call
:meth:`BboSource.subscribe`, which holds demand on each venue's smallest book,
``book:<min depth>:X@<venue>`` for the venues of ``bbo.venues`` (the same
``demand.acquire`` + ``hub.watch`` path as the RFQ ticker rates and the services), starts
each book from the broker's stored state and follows its publications in process. The last
subscriber leaving (after the linger) releases them all.

Each venue's book is reduced by :class:`~cryptowire.core.state.ChannelState` (a gap, a hole
in the offsets, a delta that cannot be applied or a crossed book make it unknown until the
next snapshot; after a hole or a bad delta the broker's stored state is read at once), its
top goes into a :class:`~cryptowire.sources.bbo.consolidation.Consolidation`, and one task
publishes the payload whenever it changed (the first one of a subscription as ``snapshot``,
then ``update``; each carries the full state). A timer re-checks the symbol when its next
included venue would go stale (``bbo.stale_after_ms``). A venue whose source refuses the
symbol is left out (its reason logged once) and asked again every
:data:`RETRY_REFUSED_S`; when every venue refuses it, so does the subscribe, with their
reasons.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from cryptowire.clock import now_ms
from cryptowire.core.channels import BOOK_DEPTHS, VENUE_ALIASES, Channel
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.core.state import ChannelState
from cryptowire.errors import CryptowireError, SourceError
from cryptowire.events import Event, Publication
from cryptowire.settings.bbo import BboSettings
from cryptowire.sources.bbo.consolidation import Consolidation
from cryptowire.sources.bbo.feeds import BboNode, KeyedLocks, SymbolFeeds, VenueFeed
from cryptowire.tasks import Supervisor

log = logging.getLogger("cryptowire.sources.bbo")

#: The name each venue goes by in ``bbo:`` payloads: its ``@`` suffix, Bybit's as ``bybit``.
PUBLIC_NAMES: dict[str, str] = {venue: alias for alias, venue in VENUE_ALIASES.items()}
#: Refusals remembered (so each is logged once), at most this many (venue, symbol) pairs.
LOGGED_REFUSALS_MAX = 4096
#: A venue that refused a symbol is asked again this long after (its source may have been
#: down, or may list the symbol by then), while the bbo is subscribed.
RETRY_REFUSED_S = 60.0


class BboSource:
    """``bbo:<SYMBOL>`` from the venues' books; see the module docstring."""

    name = "bbo"
    kinds = frozenset({"bbo"})

    def __init__(self, settings: BboSettings, node: BboNode, *,
                 clock: Callable[[], int] = now_ms) -> None:
        self.settings = settings
        self._node = node
        self._clock = clock
        self.retry_refused_s = RETRY_REFUSED_S
        #: The venues whose books it reads: (channel venue, public name) in tie-break order.
        #: (Not ``venues``: a source's ``venues`` are those it serves channels of, and this
        #: one serves ``bbo:`` channels, which have none.)
        self.book_venues = [(v, PUBLIC_NAMES.get(v, v)) for v in
                       (VENUE_ALIASES.get(name, name) for name in settings.venues)]
        self._symbols: dict[str, SymbolFeeds] = {}
        self._locks = KeyedLocks()
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._publish: PublishFn | None = None
        self._supervisor = Supervisor("bbo")
        self._tasks: set[asyncio.Task[None]] = set()
        self._logged: dict[tuple[str, str], str] = {}
        self._status = SourceStatus(name="bbo", state="stopped",
                                    detail="best bid and offer across "
                                           + ", ".join(p for _, p in self.book_venues))

    # -- Source -------------------------------------------------------------------------

    async def start(self, publish: PublishFn) -> None:
        self._publish = publish
        self._supervisor.spawn("publish", self._pump)
        self._status.state = "up"

    async def stop(self) -> None:
        for symbol in list(self._symbols):
            await self._drop(symbol)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._supervisor.stop()
        self._status.state = "stopped"

    def status(self) -> SourceStatus:
        self._status.topics = len(self._symbols)
        self._status.extra = {"refused": {f"{v}:{s}": r for (v, s), r in
                                          list(self._logged.items())[-20:]}}
        return self._status

    async def subscribe(self, channel: Channel) -> None:
        symbol = channel.symbol or ""
        async with self._locks.hold(symbol):
            if symbol not in self._symbols:
                await self._start_symbol(symbol)

    async def unsubscribe(self, channel: Channel) -> None:
        symbol = channel.symbol or ""
        async with self._locks.hold(symbol):
            await self._drop(symbol)

    # -- a symbol's books ----------------------------------------------------------------

    async def _start_symbol(self, symbol: str) -> None:
        entry = SymbolFeeds(Consolidation(symbol, [p for _, p in self.book_venues],
                                          self.settings.stale_after_ms))
        try:
            results = await asyncio.gather(*(self._hold(symbol, venue, public, entry)
                                             for venue, public in self.book_venues),
                                           return_exceptions=True)
        except BaseException:  # cancelled: give back what was taken
            await self._release(entry)
            raise
        refusals: list[str] = []
        failure: BaseException | None = None
        for (venue, public), result in zip(self.book_venues, results, strict=True):
            if isinstance(result, CryptowireError):
                entry.consolidation.remove(public)
                entry.refused[venue] = public
                refusals.append(f"{public}: {result.message}")
                self._log_refusal(public, symbol, result.message)
            elif isinstance(result, BaseException):
                failure = failure or result
        if failure is not None or not entry.feeds:
            await self._release(entry)
            if failure is not None:
                raise failure
            raise SourceError(f"No venue of bbo.venues lists {symbol}: {'; '.join(refusals)}")
        self._symbols[symbol] = entry
        try:
            for feed in list(entry.feeds.values()):
                await self._load(symbol, feed)
        except BaseException:
            await self._drop(symbol)
            raise
        self._schedule_retry(symbol, entry)
        self._mark(symbol)

    async def _hold(self, symbol: str, venue: str, public: str,
                    entry: SymbolFeeds) -> VenueFeed:
        """Demand on, and a watcher of, ``venue``'s smallest book of ``symbol``."""
        node = self._node
        channel = node.grammar.parse(f"book:{min(BOOK_DEPTHS[venue])}:{symbol}@{venue}")
        await node.demand.acquire(channel)
        feed = VenueFeed(public, channel.name, ChannelState(channel.name))
        watcher = feed.watcher = lambda pub: self._on_book(symbol, feed, pub)
        try:
            await node.hub.watch(channel.name, watcher)
        except BaseException:
            with contextlib.suppress(Exception):
                await node.hub.unwatch(channel.name, watcher)
            node.demand.release(channel.name)
            raise
        entry.feeds[channel.name] = feed
        return feed

    async def _drop(self, symbol: str) -> None:
        entry = self._symbols.pop(symbol, None)
        self._dirty.discard(symbol)
        if entry is not None:
            await self._release(entry)

    async def _release(self, entry: SymbolFeeds) -> None:
        entry.cancel_timers()
        for feed in entry.feeds.values():
            if feed.watcher is not None:
                await self._node.hub.unwatch(feed.channel, feed.watcher)
            self._node.demand.release(feed.channel)
        entry.feeds.clear()

    def _log_refusal(self, venue: str, symbol: str, reason: str) -> None:
        if (venue, symbol) in self._logged:
            return
        if len(self._logged) >= LOGGED_REFUSALS_MAX:
            self._logged.pop(next(iter(self._logged)))
        self._logged[(venue, symbol)] = reason
        log.info("bbo:%s leaves out %s: %s", symbol, venue, reason)

    def _schedule_retry(self, symbol: str, entry: SymbolFeeds) -> None:
        if entry.refused:
            entry.retry = asyncio.get_running_loop().call_later(
                self.retry_refused_s, lambda: self._spawn(self._retry(symbol)))

    async def _retry(self, symbol: str) -> None:
        """Ask the venues that refused ``symbol`` again; one that accepts takes part."""
        async with self._locks.hold(symbol):
            entry = self._symbols.get(symbol)
            if entry is None:
                return
            for venue, public in list(entry.refused.items()):
                try:
                    feed = await self._hold(symbol, venue, public, entry)
                except CryptowireError:
                    continue
                del entry.refused[venue]
                entry.consolidation.add(public)
                log.info("bbo:%s takes %s in again", symbol, public)
                await self._load(symbol, feed)
                self._mark(symbol)
            self._schedule_retry(symbol, entry)

    async def _load(self, symbol: str, feed: VenueFeed) -> None:
        """Start ``feed`` from the broker's state when the live feed has not given one."""
        if feed.state.known:
            return
        snapshot = await self._node.broker.state(feed.channel)
        if snapshot is None or feed.state.known or symbol not in self._symbols:
            return
        state = ChannelState(feed.channel)
        state.apply(snapshot)
        feed.state = state
        self._take(symbol, feed, snapshot.ts_received)

    # -- live books ----------------------------------------------------------------------

    def _on_book(self, symbol: str, feed: VenueFeed, pub: Publication) -> None:
        """A publication of a venue's book (called by the hub, synchronously)."""
        if symbol not in self._symbols:
            return
        feed.state.apply(pub)
        self._take(symbol, feed, pub.ts_received)
        if not feed.state.known and pub.type != "gap" and not feed.resyncing:
            feed.resyncing = True  # a hole or a bad delta: the broker may know the book
            self._spawn(self._resync(symbol, feed))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` as a task this source owns (cancelled by stop)."""
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("bbo task failed", exc_info=task.exception())

    async def _resync(self, symbol: str, feed: VenueFeed) -> None:
        try:
            await self._load(symbol, feed)
        finally:
            feed.resyncing = False

    def _take(self, symbol: str, feed: VenueFeed, ts: int) -> None:
        """Put ``feed``'s top into the consolidation and mark the symbol for publishing."""
        entry = self._symbols.get(symbol)
        if entry is None:
            return
        top = feed.top()
        if top is None:
            entry.consolidation.unknown(feed.venue, feed.unknown_reason())
        else:
            entry.consolidation.update(feed.venue, top[0], top[1], ts)
        self._mark(symbol)

    def _mark(self, symbol: str) -> None:
        self._dirty.add(symbol)
        self._wake.set()

    # -- publishing ----------------------------------------------------------------------

    async def _pump(self) -> None:
        """The one publisher: every symbol marked since the last pass, in turn."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            while self._dirty:
                symbol = self._dirty.pop()
                entry = self._symbols.get(symbol)
                if entry is None:
                    continue
                try:
                    await self._publish_symbol(symbol, entry)
                except Exception:
                    self._mark(symbol)  # published by the restarted pump (supervisor backoff)
                    self._status.errors += 1
                    raise

    async def _publish_symbol(self, symbol: str, entry: SymbolFeeds) -> None:
        now = self._clock()
        data = entry.consolidation.changed(now)
        if data is not None:
            assert self._publish is not None
            kind = "update" if entry.published else "snapshot"
            await self._publish(Event(channel=f"bbo:{symbol}", data=data, type=kind,
                                      source="bbo"))
            entry.published += 1
            self._status.messages += 1
            self._status.last_message_ms = now
        if entry.timer is not None:
            entry.timer.cancel()
            entry.timer = None
        due = entry.consolidation.next_stale(now)
        if due is not None:
            loop = asyncio.get_running_loop()
            entry.timer = loop.call_later(max(0, due - now) / 1000, self._mark, symbol)
