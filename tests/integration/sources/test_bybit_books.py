"""BybitSource order books and liquidations against the replay peer, over real sockets.

The peer's :class:`~tests.peers.bybit_books.BookFeed` is the venue: it knows the book after
every frame it sent, so each published book is compared with the venue's at the same ``ts``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from tests.integration.sources.test_bybit_source import ch, running
from tests.peers.bybit_books import BookFeed
from tests.peers.bybit_peer import BybitPeer, load_fixture

from cryptowire.books import OrderBook
from cryptowire.errors import SourceError
from cryptowire.events import Event

pytestmark = pytest.mark.integration

CHANNEL = "book:50:BTCUSDT"
TOPIC = "orderbook.50.BTCUSDT"


@pytest.fixture
async def peer() -> AsyncIterator[BybitPeer]:
    async with BybitPeer(interval_s=0.005) as server:
        yield server


def rebuild(events: list[Event], feed: BookFeed) -> list[str]:
    """Apply the events as a client would and compare with the venue after each one; the
    event types seen. A delta with no book (after a gap, before a snapshot) fails."""
    book: OrderBook | None = None
    types = []
    for event in events:
        types.append(event.type)
        if event.type == "gap":
            book = None
            continue
        if event.type == "snapshot":
            book = OrderBook(50)
            book.snapshot(event.data["bids"], event.data["asks"])
        else:
            assert event.type == "delta", event
            assert book is not None, f"a delta with no snapshot before it: {event}"
            book.apply(event.data["bids"], event.data["asks"])
        assert event.ts_source is not None
        bids, asks = feed.book_at(event.ts_source, event.data["venueSeq"])
        assert (book.levels("bids"), book.levels("asks")) == (bids, asks), event
        assert not book.crossed()
    return types


async def test_book_events_are_the_venue_book_at_every_step(peer: BybitPeer) -> None:
    async with running(peer) as (source, events):
        await source.subscribe(ch(CHANNEL))
        await events.wait_count(CHANNEL, 60)
    got = events.on(CHANNEL)
    types = rebuild(got, peer.book(TOPIC))
    assert types[0] == "snapshot" and set(types[1:]) == {"delta"}
    assert [e.data["venueSeq"] for e in got] == list(range(got[0].data["venueSeq"],
                                                           got[0].data["venueSeq"] + len(got)))
    assert len(got[0].data["bids"]) == len(got[0].data["asks"]) == 50
    assert source.status().book_resyncs == {}


@pytest.mark.parametrize(("fault", "cause", "said"), [
    ("gap", "sequence", "(expected "), ("crossed", "crossed", "crossed book at update")])
async def test_a_break_is_a_gap_a_resubscribe_and_a_fresh_snapshot(
    peer: BybitPeer, fault: str, cause: str, said: str
) -> None:
    feed = peer.book(TOPIC)
    async with running(peer) as (source, events):
        await source.subscribe(ch(CHANNEL))
        await events.wait_count(CHANNEL, 10)
        feed.inject(fault)
        await events.wait(lambda: "gap" in [e.type for e in events.on(CHANNEL)], "a gap")
        await events.wait(lambda: events.on(CHANNEL)[-1].type == "delta", "data after it")
        status = source.status()
    got = events.on(CHANNEL)
    types = rebuild(got, feed)
    at = types.index("gap")
    assert types[at + 1] == "snapshot" and types.count("gap") == 1
    assert said in got[at].data["reason"] and got[at].data["reason"].startswith(TOPIC)
    assert status.book_resyncs == {cause: 1}
    # The re-sync went upstream: unsubscribe then subscribe on the same socket.
    assert peer.unsubscribe_count(TOPIC) == 1 and peer.subscribe_count(TOPIC) == 2
    assert peer.connections_total["linear"] == 1


@pytest.mark.parametrize("frame_type", ["snapshot", "delta"])
async def test_a_u_1_restart_overwrites_the_book_without_a_resync(
    peer: BybitPeer, frame_type: str
) -> None:
    feed = peer.book(TOPIC)
    async with running(peer) as (source, events):
        await source.subscribe(ch(CHANNEL))
        await events.wait_count(CHANNEL, 5)
        peer.inject_restart(frame_type=frame_type)
        await events.wait(lambda: any(e.data.get("venueSeq") == 3 for e in events.on(CHANNEL)),
                          "updates after the restart")
        status = source.status()
    got = events.on(CHANNEL)
    rebuild(got, feed)
    restart = next(e for e in got if e.data.get("venueSeq") == 1)
    assert restart.type == "snapshot" and len(restart.data["bids"]) == 50
    assert "gap" not in [e.type for e in got]
    assert status.book_resyncs == {}
    assert peer.subscribe_count(TOPIC) == 1


async def test_liquidations_one_event_per_item_exact_strings(peer: BybitPeer) -> None:
    frames = [f for f in load_fixture("linear") if f["topic"] == "allLiquidation.BTCUSDT"]
    expected = [({"symbol": i["s"], "side": i["S"], "price": i["p"], "size": i["v"],
                  "time": i["T"]}, f["ts"]) for f in frames for i in f["data"]]
    async with running(peer) as (source, events):
        await source.subscribe(ch("liquidation:BTCUSDT"))
        await events.wait_count("liquidation:BTCUSDT", len(expected))
    got = events.on("liquidation:BTCUSDT")[: len(expected)]
    assert [(e.data, e.ts_source) for e in got] == expected
    assert {e.type for e in got} == {"update"}


async def test_spot_liquidations_are_refused_before_going_upstream(peer: BybitPeer) -> None:
    async with running(peer) as (source, _):
        with pytest.raises(SourceError, match="Bybit has no liquidations on spot"):
            await source.subscribe(ch("liquidation:BTCUSDT@spot"))
    assert peer.connections_total["spot"] == 0


async def test_trades_are_updates_from_the_first_frame(peer: BybitPeer) -> None:
    async with running(peer) as (source, events):
        await source.subscribe(ch("trade:BTCUSDT"))
        await events.wait_count("trade:BTCUSDT", 3)
    assert {e.type for e in events.on("trade:BTCUSDT")} == {"update"}
