"""A book update the bus refuses (a Redis timeout or failover while the pub/sub connection
stays up) must not leave subscribers one update short with contiguous offsets: the exchange
source re-synchronises that book (a ``gap`` saying so, then a fresh snapshot) instead of
publishing the next delta on top of the lost one. Here with Binance's replay peer; the
source's publish function refuses one delta the way a failing broker does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from tests.integration.sources.binance_support import (
    GRAMMAR,
    Collected,
    check_every_step,
    peer_settings,
)
from tests.peers.binance_peer import BinancePeer
from tests.waiting import eventually

from cryptowire.errors import BusError
from cryptowire.events import Event
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.exchange.subs import LOST_UPDATE
from cryptowire.sources.venues.binance.venue import declare

CHANNEL = "book:50:BTCUSDT@binance"


class Refusing(Collected):
    """Publishes like a broker; the ``refuse_at``-th delta is refused (never published)."""

    def __init__(self, refuse_at: int) -> None:
        super().__init__()
        self.refuse_at = refuse_at
        self.deltas = 0
        self.refused: list[Event] = []

    async def publish(self, event: Event) -> None:
        if event.type == "delta":
            self.deltas += 1
            if self.deltas == self.refuse_at:
                self.refused.append(event)
                raise BusError("Redis did not answer within 3 s")
        await super().publish(event)


@asynccontextmanager
async def running(peer: BinancePeer, got: Collected) -> AsyncIterator[ExchangeSource]:
    settings = peer_settings(peer)
    source = ExchangeSource(declare(settings), settings, backoff_max_s=0.2, ack_timeout_s=3.0)
    await source.start(got.publish)
    try:
        yield source
    finally:
        await source.stop()


async def test_a_refused_book_update_resyncs_the_book(caplog: Any) -> None:
    async with BinancePeer(interval_s=0.01, ping_s=0.5) as peer:
        got = Refusing(refuse_at=5)
        async with running(peer, got) as source:
            await source.subscribe(GRAMMAR.parse(CHANNEL))
            await eventually(lambda: got.types(CHANNEL).count("snapshot") == 2,
                             what="the fresh snapshot after the lost update")
            await eventually(lambda: got.types(CHANNEL)[-5:].count("delta") == 5,
                             what="deltas after the re-sync")
        assert len(got.refused) == 1
        types = got.types(CHANNEL)
        gap = types.index("gap")
        assert types[:gap].count("delta") == 4  # the ones before the refused delta
        assert types[gap + 1] == "snapshot", "a delta went out on top of the lost one"
        assert got.of(CHANNEL)[gap].data["reason"] == LOST_UPDATE
        assert check_every_step(peer, got.of(CHANNEL), "futures", 50) > 8
        # a new REST sync (the diff stream is subscribed again too, which may cost the
        # peer's book one more sync: never a wrong book, as checked above)
        assert peer.depth_requests[("futures", "BTCUSDT")] >= 2


@pytest.mark.parametrize("refuse_at", [1])
async def test_without_the_resync_the_client_would_be_wrong(refuse_at: int) -> None:
    """The check above can fail: replaying the deltas with the refused one missing does not
    give the venue's book (so a source that just went on would be caught)."""
    async with BinancePeer(interval_s=0.01, ping_s=0.5) as peer:
        got = Collected()
        async with running(peer, got) as source:
            await source.subscribe(GRAMMAR.parse(CHANNEL))
            await eventually(lambda: got.types(CHANNEL).count("delta") > 10, what="deltas")
        events = got.of(CHANNEL)
        changed = [i for i, e in enumerate(events) if e.type == "delta"
                   and (e.data["bids"] or e.data["asks"])]
        del events[changed[refuse_at - 1]]
        with pytest.raises(AssertionError, match="book differs"):
            check_every_step(peer, events, "futures", 50)
