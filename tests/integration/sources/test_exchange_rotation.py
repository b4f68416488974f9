"""Make-before-break socket rotation (sources/exchange/rotation.py) against the fake venue
over real sockets: with a tiny ``max_lifetime_s`` declared, a ticker-like stream and a book
go through several rotations with no gap, every venue frame published exactly once, and the
client's rebuilt book equal to the venue's at every step; a replacement that cannot connect
keeps the old socket (reported in status); a per-connection request budget spills new
streams onto another socket."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import pytest
from tests.integration.sources.test_exchange_supervisor import (
    Events,
    Options,
    canonical,
    ch,
    native,
    requests,
)
from tests.peers.fake_venue import FakeVenuePeer
from tests.waiting import eventually

from cryptowire.books import OrderBook
from cryptowire.core.channels import Channel
from cryptowire.sources.exchange.codec import Ack, BaseState, Break, Data, Item, Pong, Pub
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.exchange.venue import (
    Instruments,
    Limits,
    Market,
    Ping,
    Stream,
    Topic,
    Venue,
    check_kind,
)

pytestmark = pytest.mark.integration

WAIT_S = 10.0
TICKER, BOOK = "ticker:BTCUSDT", "book:50:BTCUSDT"


class TickerState(BaseState):
    """The whole state in every frame: ``snapshot`` first, then ``update``."""

    def __init__(self) -> None:
        self.fresh = True

    def reset(self, streams: Collection[str]) -> None:
        self.fresh = True

    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterator[Pub]:
        kind, self.fresh = "snapshot" if self.fresh else "update", False
        for channel in list(channels):
            yield Pub(channel, kind, {"v": data.frame["v"], "n": data.frame["n"]}, data.ts)


class BookState(BaseState):
    """A validated book: a delta must be the next number after the last one applied (any
    handover mistake would break it, with a gap)."""

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.book = OrderBook()
        self.last: int | None = None

    def reset(self, streams: Collection[str]) -> None:
        self.last = None

    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterator[Pub]:
        frame, n = data.frame, data.frame["n"]
        if frame["type"] == "snapshot":
            self.book.snapshot(frame["b"], frame["a"])
            self.last = n
            body = {**self.book.payload(self.symbol), "venueSeq": n}
            yield from (Pub(c, "snapshot", body, data.ts) for c in list(channels))
            return
        if self.last is None:
            return  # waiting for the snapshot
        if n != self.last + 1:
            self.broken = Break("sequence", f"delta {n} after {self.last}")
            self.last = None
            yield from (Pub(c, "gap", {"reason": "sequence"}, data.ts) for c in list(channels))
            return
        self.book.apply(frame["b"], frame["a"])
        self.last = n
        body = {"symbol": self.symbol, "bids": frame["b"], "asks": frame["a"], "venueSeq": n}
        yield from (Pub(c, "delta", body, data.ts) for c in list(channels))


class SeqCodec:
    """The fake venue's frames, with the venue's frame number as ``Data.seq``."""

    def parse(self, raw: str | bytes) -> Sequence[Item]:
        if raw == "pong":
            return [Pong()]
        obj = orjson.loads(raw)
        if "id" in obj:
            return [Ack(obj["id"], obj["ok"], obj.get("msg", ""))]
        return [Data(obj["s"], obj, obj["ts"], seq=obj["n"])]

    def state(self, topic: Topic, market: Market) -> BaseState:
        return BookState(topic.symbol) if topic.kind == "book" else TickerState()


def topic(channel: Channel, market: Market) -> Topic:
    sym = market.to_native(check_kind(channel, market, "Fake"))
    if channel.kind == "book":
        return Topic(f"k.{sym}", "book", channel.symbol or "", (Stream(f"k.{sym}"),),
                     depth=channel.depth)
    return Topic(f"t.{sym}", "ticker", channel.symbol or "", (Stream(f"t.{sym}"),))


def declare(peer: FakeVenuePeer, limits: Limits) -> Venue:
    market = Market(
        key="linear", label="perps", rest_url=peer.url, codec=SeqCodec(), topic=topic,
        endpoints={"public": peer.ws_url("public")}, requests=requests,
        kinds=frozenset({"ticker", "book"}), book_depths=(50,), to_native=native,
        from_native=canonical, limits=limits,
        ping=Ping(text="ping", interval_s=0.2, watchdog_s=2.0),
        instruments=Instruments(request=lambda cursor: ("/instruments", {}),
                                parse=lambda body: (dict.fromkeys(body["list"], "ok"), "")),
    )
    return Venue(name="fake", title="Fake", markets={"linear": market}, default_market="linear")


#: Rotate at 1 s of age (lifetime 4 s minus a 3 s margin); the handover may take 1.5 s.
ROTATING = Limits(max_lifetime_s=4.0, rotation_margin_s=3.0)


@asynccontextmanager
async def running(limits: Limits) -> AsyncIterator[tuple[ExchangeSource, Events, FakeVenuePeer]]:
    async with FakeVenuePeer() as peer:
        source = ExchangeSource(declare(peer, limits), Options(), backoff_max_s=0.5)
        events = Events()
        await source.start(events)
        try:
            yield source, events, peer
        finally:
            await source.stop()


def rotations(source: ExchangeSource) -> int:
    return int(source.status().extra["linear"]["rotations"])


class Client:
    """A subscriber's view: the book rebuilt from the publications, checked at every step."""

    def __init__(self, peer: FakeVenuePeer) -> None:
        self.peer = peer
        self.book = OrderBook()
        self.seen = 0

    def check(self, events: Events) -> None:
        for event in events.on(BOOK)[self.seen:]:
            assert event.type in ("snapshot", "delta"), event
            if event.type == "snapshot":
                self.book.snapshot(event.data["bids"], event.data["asks"])
            else:
                self.book.apply(event.data["bids"], event.data["asks"])
            want = self.peer.history["k.btc-usdt"][event.data["venueSeq"]]
            assert (self.book.levels("bids"), self.book.levels("asks")) == want
        self.seen = len(events.on(BOOK))


async def pump(peer: FakeVenuePeer, step: int) -> None:
    """One venue tick: a ticker frame and a book change (a level set, moved, removed)."""
    price = str(100 + step % 7)
    await peer.push("t.btc-usdt", str(step))
    await peer.push_book("k.btc-usdt", [[price, str(step)], [str(90 + step % 5), "0"]],
                         [[str(110 + step % 3), f"{step}.5"]])


async def test_two_rotations_lose_and_repeat_nothing() -> None:
    """First rotation: the old socket lags (the replacement is ahead and must wait for it);
    second: the replacement lags (it must catch up before taking over)."""
    async with running(ROTATING) as (source, events, peer):
        await source.subscribe(ch(TICKER))
        await source.subscribe(ch(BOOK))
        await events.wait(lambda: len(events.items) == 2, "the first frames")
        client, step = Client(peer), 0
        lagging: Any = peer.sockets[0]
        peer.hold(lagging)  # the first socket lags from now on
        lag_until = None
        while rotations(source) < 2 or step < 20:
            step += 1
            await pump(peer, step)
            client.check(events)
            if len(peer.sockets) == 3 and lagging is peer.sockets[0]:
                lagging = peer.sockets[2]  # the second replacement lags from its start
                peer.hold(lagging)
                lag_until = step + 10
            elif len(peer.sockets) == 2 and lag_until is None:
                lag_until = step + 10  # the first replacement is up: the old one catches up
            if lag_until is not None and step == lag_until:
                await peer.release(lagging)
            assert step < 5000, "no second rotation"
            await asyncio.sleep(0.005)  # the venue's pace
        await events.wait(lambda: events.on(TICKER)[-1].data["n"] == peer.numbers["t.btc-usdt"]
                          and events.on(BOOK)[-1].data["venueSeq"]
                          == peer.numbers["k.btc-usdt"], "the last frames")
        client.check(events)
        assert [e.type for e in events.items if e.type == "gap"] == []
        numbers = [e.data["n"] for e in events.on(TICKER)]
        assert numbers == list(range(1, peer.numbers["t.btc-usdt"] + 1))  # each exactly once
        seqs = [e.data["venueSeq"] for e in events.on(BOOK)]
        assert seqs == list(range(1, peer.numbers["k.btc-usdt"] + 1))
        assert [e.type for e in events.on(BOOK)][1:] == ["delta"] * (len(seqs) - 1)
        status = source.status()
        assert status.reconnects == 0 and status.book_resyncs == {}
        assert status.extra["linear"]["rotation_error"] is None
        assert len(peer.sockets) >= 3 and len(peer.open_sockets()) == 1
        assert peer.subscribed() == [{"t.btc-usdt", "k.btc-usdt"}]


async def test_a_replacement_that_cannot_connect_keeps_the_old_socket() -> None:
    async with running(ROTATING) as (source, events, peer):
        await source.subscribe(ch(TICKER))
        await events.wait(lambda: len(events.items) == 1, "the first frame")
        first = peer.open_sockets()[0]
        peer.refuse_connections = True
        await eventually(lambda: source.status().extra["linear"]["rotation_error"], WAIT_S,
                         "a failed rotation reported")
        status = source.status().extra["linear"]
        assert "replacement did not connect" in status["rotation_error"]
        assert status["state"] == "up" and status["rotations"] == 0
        assert "rotation failed: replacement did not connect" in source.status().detail
        assert peer.open_sockets() == [first]
        await peer.push("t.btc-usdt", "2")  # the old socket still delivers
        await events.wait(lambda: len(events.on(TICKER)) == 2, "data on the old socket")
        assert [e.type for e in events.on(TICKER)] == ["snapshot", "update"]
        # The venue closes it at its age limit: the ordinary reconnect, with a gap.
        peer.refuse_connections = False
        await first.ws.close()
        await events.wait(lambda: len(events.on(TICKER)) == 4, "gap then fresh data")
        assert [e.type for e in events.on(TICKER)][2:] == ["gap", "snapshot"]


async def test_a_spent_request_budget_spills_new_streams_to_another_socket() -> None:
    limits = Limits(requests_per_connection=2, request_window_s=3600.0)
    async with running(limits) as (source, events, peer):
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            await source.subscribe(ch(f"ticker:{symbol}"))
        assert sorted(map(sorted, peer.subscribed("public"))) == [
            ["t.btc-usdt", "t.eth-usdt"], ["t.sol-usdt"]]
        await events.wait(lambda: len(events.items) == 3, "each ticker's first frame")
        assert len(source.status().extra["linear"]["sockets"]) == 2
        # An unsubscribe on the spent socket waits for the window (sent in the background),
        # and a new stream goes to the socket with budget left.
        await source.unsubscribe(ch("ticker:ETHUSDT"))
        await source.subscribe(ch("ticker:ETHUSDT"))
        await events.wait(lambda: len(events.items) == 4, "ETH again")
        spent, other = peer.open_sockets("public")
        assert [r["args"] for r in spent.received if isinstance(r, dict)] == [
            ["t.btc-usdt"], ["t.eth-usdt"]]
        assert [r["args"] for r in other.received if isinstance(r, dict)] == [
            ["t.sol-usdt"], ["t.eth-usdt"]]


async def test_a_replacement_lost_mid_handover_is_abandoned_without_a_loss() -> None:
    async with running(ROTATING) as (source, events, peer):
        await source.subscribe(ch(TICKER))
        await source.subscribe(ch(BOOK))
        await events.wait(lambda: len(events.items) == 2, "the first frames")
        old = peer.sockets[0]
        peer.hold(old)  # the old socket lags: the replacement cannot take over yet
        client, step = Client(peer), 0
        while len(peer.sockets) < 2:
            step += 1
            await pump(peer, step)
            await asyncio.sleep(0.005)  # the venue's pace
        await peer.sockets[1].ws.close()  # the replacement drops mid-handover
        await eventually(lambda: source.status().extra["linear"]["rotation_error"], WAIT_S,
                         "the abandoned rotation reported")
        assert "replacement lost" in source.status().extra["linear"]["rotation_error"]
        await peer.release(old)
        while rotations(source) < 1:  # the next attempt succeeds
            step += 1
            await pump(peer, step)
            client.check(events)
            assert step < 5000, "no rotation"
            await asyncio.sleep(0.005)  # the venue's pace
        await events.wait(lambda: events.on(BOOK)[-1].data["venueSeq"]
                          == peer.numbers["k.btc-usdt"], "the last frames")
        client.check(events)
        numbers = [e.data["n"] for e in events.on(TICKER)]
        assert numbers == list(range(1, peer.numbers["t.btc-usdt"] + 1))
        assert "gap" not in [e.type for e in events.items]
        assert source.status().reconnects == 0


async def test_a_stream_not_handed_over_in_time_is_resynchronised_with_a_gap() -> None:
    async with running(ROTATING) as (source, events, peer):
        await source.subscribe(ch(BOOK))
        await events.wait(lambda: len(events.items) == 1, "the snapshot")
        peer.hold(peer.sockets[0])  # lags: the replacement's snapshot is ahead of it
        step = 0
        while len(peer.sockets) < 2:
            step += 1
            await pump(peer, step)
            await asyncio.sleep(0.005)  # the venue's pace
        peer.hold(peer.sockets[1])  # and the replacement never follows up
        while rotations(source) < 1:
            step += 1
            await pump(peer, step)
            assert step < 5000, "no rotation"
            await asyncio.sleep(0.005)  # the venue's pace
        def after_gap() -> list[str]:
            types = [e.type for e in events.on(BOOK)]
            return types[types.index("gap"):][:2] if "gap" in types else []

        await events.wait(lambda: after_gap() == ["gap", "snapshot"], "gap then a snapshot")
        gap = next(e for e in events.on(BOOK) if e.type == "gap").data
        assert "socket rotation: handover incomplete" in gap["reason"]
        await peer.wait(lambda: peer.sockets[0].ws.closed, "the old socket closed all the same")


async def test_a_channel_subscribed_mid_rotation_moves_with_it() -> None:
    eth = "ticker:ETHUSDT"
    async with running(ROTATING) as (source, events, peer):
        await source.subscribe(ch(BOOK))
        await events.wait(lambda: len(events.items) == 1, "the snapshot")
        old = peer.sockets[0]
        peer.hold(old)  # the handover waits for it
        client, step = Client(peer), 0
        while len(peer.sockets) < 2:
            step += 1
            await pump(peer, step)
            await asyncio.sleep(0.005)  # the venue's pace
        await source.subscribe(ch(eth))
        assert "t.eth-usdt" in old.streams and "t.eth-usdt" in peer.sockets[1].streams
        assert rotations(source) == 0
        await peer.release(old)
        while rotations(source) < 1:
            step += 1
            await pump(peer, step)
            await peer.push("t.eth-usdt", str(step))
            client.check(events)
            assert step < 5000, "no rotation"
            await asyncio.sleep(0.005)  # the venue's pace
        await peer.push("t.eth-usdt", "last")
        await events.wait(lambda: events.on(eth)[-1].data["v"] == "last", "the last frame")
        client.check(events)
        numbers = [e.data["n"] for e in events.on(eth)]
        assert numbers == list(range(numbers[0], peer.numbers["t.eth-usdt"] + 1))
        assert "gap" not in [e.type for e in events.items]
        assert peer.subscribed() == [{"k.btc-usdt", "t.eth-usdt"}]


async def test_the_old_socket_closed_mid_handover_hands_over_at_once() -> None:
    async with running(ROTATING) as (source, events, peer):
        await source.subscribe(ch(BOOK))
        await events.wait(lambda: len(events.items) == 1, "the snapshot")
        old = peer.sockets[0]
        peer.hold(old)  # the replacement cannot take the book over from it
        step = 0
        while len(peer.sockets) < 2 or not peer.sockets[1].streams:
            step += 1
            await pump(peer, step)
            await asyncio.sleep(0.005)  # the venue's pace
        await old.ws.close()  # the venue's age limit, mid-handover
        await events.wait(lambda: [e.type for e in events.on(BOOK)][-2:] == ["gap", "snapshot"],
                          "the book re-synchronised on the replacement")
        gap = next(e for e in events.on(BOOK) if e.type == "gap").data
        # the reader sees the close, or the ping loop's send fails first: either ends it
        assert re.search(r"socket rotation: (closed by upstream|ping failed)", gap["reason"])
        assert rotations(source) == 1 and source.status().reconnects == 0
