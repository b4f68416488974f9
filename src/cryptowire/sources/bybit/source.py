"""``BybitSource``: Bybit V5 public market data (tickers, trades, klines, order books,
liquidations) as cryptowire events.

One supervised socket per category (:class:`~.connection.BybitConnection`), opened when the
first topic of that category is subscribed. A channel's symbol is checked against Bybit's
instruments list first (:class:`~.instruments.InstrumentCatalog`), so an unknown symbol is
refused with a reason before anything goes upstream; without that list the subscribe ack
decides. Events carry the channel name the core subscribed with, Bybit's ``ts`` as
``ts_source`` and ``source="bybit"``; a ticker event always carries the full merged state.

Event types: ``snapshot`` for the first frame of a ticker or kline topic after each
(re)subscribe and for a linear ticker snapshot (a reset), ``update`` otherwise (trades and
liquidations are always ``update``), and ``gap`` with ``{"reason": .., "since": <ms of the
last frame before the loss>}`` for every affected channel after a reconnect, published before
any data of the new socket. Book channels get ``snapshot`` / ``delta`` / ``gap`` as
:mod:`.book` validates them (PROTOCOLS.md 4.1); each break is counted by cause in
``SourceStatus.book_resyncs``.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import aiohttp

from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, SourceState, SourceStatus
from cryptowire.errors import ConfigError, SourceError
from cryptowire.settings import BybitSettings
from cryptowire.sources.bybit.connection import BybitConnection
from cryptowire.sources.bybit.instruments import InstrumentCatalog
from cryptowire.sources.bybit.topics import Category, category_of, topic_for

_log = logging.getLogger("cryptowire.sources.bybit")

#: Connection state -> (severity, what the source reports); the worst socket sets the state.
_STATES: dict[str, tuple[int, SourceState]] = {
    "idle": (0, "up"), "up": (0, "up"), "connecting": (1, "connecting"), "down": (2, "down"),
    "stopped": (3, "stopped"),
}  # fmt: skip


class BybitSource:
    """The Bybit V5 public source (``name="bybit"``, kinds ticker, trade, kline, book,
    liquidation).

    ``ping_interval_s``: period of ``{"op":"ping"}``; ``watchdog_s``: a socket silent this
    long is replaced; ``backoff_max_s``: cap of the reconnect backoff; ``ack_timeout_s``: how
    long ``subscribe`` waits for Bybit's answer.
    """

    name = "bybit"
    kinds: frozenset[str] = frozenset({"ticker", "trade", "kline", "book", "liquidation"})

    def __init__(
        self,
        settings: BybitSettings,
        *,
        ping_interval_s: float = 20.0,
        watchdog_s: float = 30.0,
        backoff_max_s: float = 30.0,
        ack_timeout_s: float = 10.0,
        instruments: InstrumentCatalog | None = None,
    ) -> None:
        if watchdog_s <= ping_interval_s:
            raise ConfigError(
                f"watchdog_s ({watchdog_s}) must exceed ping_interval_s ({ping_interval_s}): "
                "pongs are what keep a quiet socket from looking dead"
            )
        self.settings = settings
        self.ping_interval_s = ping_interval_s
        self.watchdog_s = watchdog_s
        self.backoff_max_s = backoff_max_s
        self.ack_timeout_s = ack_timeout_s
        self.instruments = instruments or InstrumentCatalog(settings.rest_url)
        self._connections: dict[Category, BybitConnection] = {}
        self._session: aiohttp.ClientSession | None = None
        self._publish: PublishFn | None = None
        self._stopped = False

    async def start(self, publish: PublishFn) -> None:
        """Remember ``publish``; sockets open on the first subscribe of their category."""
        if self._session is not None:
            return
        self._publish = publish
        self._stopped = False
        self._session = aiohttp.ClientSession()

    async def stop(self) -> None:
        """Close every socket and the HTTP session; the source can be started again."""
        self._stopped = True
        connections = list(self._connections.values())
        self._connections.clear()
        await asyncio.gather(*(conn.stop() for conn in connections))
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def subscribe(self, channel: Channel) -> None:
        """Deliver ``channel``; :class:`SourceError` with a client-facing reason if Bybit does
        not list the symbol, refuses the topic or does not answer."""
        if not self.settings.enabled:
            raise SourceError("Bybit is disabled on this server (bybit.enabled = false).")
        if self._session is None or self._publish is None:
            raise SourceError("The Bybit source is not running; try again shortly.")
        category = category_of(channel, self.settings.default_category)
        topic = topic_for(channel, category)
        await self.instruments.check(self._session, category, topic.symbol)
        await self._connection(category).subscribe(topic, channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        """Stop delivering ``channel``; the topic is unsubscribed upstream with its last
        channel."""
        try:
            topic = topic_for(channel)
            category = category_of(channel, self.settings.default_category)
        except SourceError:
            return
        conn = self._connections.get(category)
        if conn is not None:
            await conn.unsubscribe(topic, channel.name)

    def status(self) -> SourceStatus:
        """Worst state of the sockets, counters summed, per-category details in ``extra``."""
        conns = list(self._connections.values())
        extra: dict[str, object] = {c.category: c.status() for c in conns}
        instruments = self.instruments.status()
        if instruments:
            extra["instruments"] = instruments
        state: SourceState
        if self._session is None or self._stopped:
            state, detail = "stopped", "not running"
        elif not self.settings.enabled:
            state, detail = "stopped", "disabled in settings"
        elif not conns:
            state, detail = "up", "idle: no topics subscribed"
        else:
            state = max((_STATES[c.state] for c in conns), key=lambda pair: pair[0])[1]
            detail = "; ".join(
                f"{c.category} {c.state} ({len(c.topics)} topics)"
                + (f": {c.last_error}" if c.state != "up" and c.last_error else "")
                for c in conns
            )
        last = [c.last_message_ms for c in conns if c.last_message_ms is not None]
        resyncs: Counter[str] = Counter()
        for conn in conns:
            resyncs.update(conn.book_resyncs)
        return SourceStatus(
            name=self.name,
            state=state,
            detail=detail,
            last_message_ms=max(last) if last else None,
            messages=sum(c.messages for c in conns),
            errors=sum(c.errors for c in conns),
            reconnects=sum(c.reconnects for c in conns),
            topics=sum(len(c.topics) for c in conns),
            book_resyncs=dict(resyncs),
            extra=extra,
        )

    def _connection(self, category: Category) -> BybitConnection:
        conn = self._connections.get(category)
        if conn is None:
            assert self._session is not None and self._publish is not None
            url = self.settings.linear_url if category == "linear" else self.settings.spot_url
            conn = BybitConnection(
                category,
                url,
                session=self._session,
                publish=self._publish,
                source_name=self.name,
                ping_interval_s=self.ping_interval_s,
                watchdog_s=self.watchdog_s,
                backoff_max_s=self.backoff_max_s,
                ack_timeout_s=self.ack_timeout_s,
            )
            self._connections[category] = conn
            _log.info("bybit %s: opening %s", category, url)
            conn.start()
        return conn
