"""The Binance source (the exchange seam's :class:`ExchangeSource` with the Binance
declaration) against the replay peer, without a hub: every published event kept in order."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from tests.peers.binance_peer import BinancePeer

from cryptowire.books import OrderBook
from cryptowire.core.channels import ChannelGrammar
from cryptowire.events import Event
from cryptowire.settings import BinanceSettings
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.venues.binance.venue import declare

GRAMMAR = ChannelGrammar()
VENUE = {"futures": "binance", "spot": "binance-spot"}


def peer_settings(peer: BinancePeer, **overrides: Any) -> BinanceSettings:
    """``BinanceSettings`` whose URLs are the peer's."""
    return BinanceSettings(**{**peer.settings_values(), **overrides})


class Collected:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def publish(self, event: Event) -> None:
        self.events.append(event)

    def of(self, channel: str) -> list[Event]:
        return [e for e in self.events if e.channel == channel]

    def types(self, channel: str) -> list[str]:
        return [e.type for e in self.of(channel)]


@asynccontextmanager
async def running(peer: BinancePeer, **options: Any
                  ) -> AsyncIterator[tuple[ExchangeSource, Collected]]:
    source = ExchangeSource(declare(peer_settings(peer)), peer_settings(peer),
                            **{"backoff_max_s": 0.2, "ack_timeout_s": 3.0, **options})
    collected = Collected()
    await source.start(collected.publish)
    try:
        yield source, collected
    finally:
        await source.stop()


def replay(events: list[Event]) -> list[tuple[int, Any]]:
    """Apply a book channel's publications in order: ``(venueSeq, levels)`` after each
    snapshot or delta (a gap drops the book; a delta while in a gap fails)."""
    book: OrderBook | None = None
    states: list[tuple[int, Any]] = []
    for event in events:
        if event.type == "gap":
            book = None
        elif event.type == "snapshot":
            book = OrderBook()
            book.snapshot(event.data["bids"], event.data["asks"])
        else:
            assert book is not None, "a delta while in a gap"
            book.apply(event.data["bids"], event.data["asks"])
        if book is not None:
            states.append((event.data["venueSeq"], (book.levels("bids"), book.levels("asks"))))
    return states


def check_every_step(peer: BinancePeer, events: list[Event], market: str, depth: int) -> int:
    """The client-side book equals the peer's venue book (cut at ``depth``) after every
    publication; how many steps were checked."""
    feed = peer.book(market)
    checked = 0
    for seq, levels in replay(events):
        bids, asks = feed.history[seq]
        assert levels == (bids[:depth], asks[:depth]), f"book differs at u={seq}"
        checked += 1
    return checked
