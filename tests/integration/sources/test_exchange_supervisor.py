"""The shared supervisor (sources/exchange) against a tiny made-up venue over real sockets:
ack matching, refusals, sharding, text ping keep-alive, gap markers before the re-subscribe,
a topic spanning two endpoints, REST snapshot resync, symbol mapping and instruments.

The declaration below is also the smallest complete example of declaring a venue."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Collection, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from tests.peers.fake_venue import FakeVenuePeer
from tests.waiting import eventually

from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.errors import SourceError
from cryptowire.events import Event
from cryptowire.sources.exchange.codec import Ack, BaseState, Break, Data, Item, Pong, Pub
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.exchange.venue import (
    Instruments,
    Limits,
    Market,
    Op,
    Ping,
    Stream,
    Topic,
    Venue,
    check_kind,
)

pytestmark = pytest.mark.integration

GRAMMAR = ChannelGrammar()
WAIT_S = 5.0


# -- the fake venue, declared ----------------------------------------------------------------


class FakeState(BaseState):
    """``snapshot`` first (for ticker/book), then ``update``; a book frame ``"break"`` breaks
    the book (resync by REST snapshot), which waits for a snapshot before publishing."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.fresh = True
        self.synced = topic.resync != "snapshot"

    def reset(self, streams: Collection[str]) -> None:
        self.fresh = True
        self.synced = self.topic.resync != "snapshot"

    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterator[Pub]:
        value = data.frame["v"]
        if value == "break":
            self.broken = Break("sequence", f"{self.topic.key}: a frame went missing")
            self.synced = False
            yield from (Pub(c, "gap", {"reason": "missing"}, data.ts) for c in list(channels))
            return
        if not self.synced:
            return  # buffered by a real venue; dropped here
        kind = "snapshot" if self.fresh and self.topic.kind != "trade" else "update"
        self.fresh = False
        for channel in list(channels):
            yield Pub(channel, kind, {"stream": data.stream, "v": value}, data.ts)

    def snapshot_request(self) -> str | None:
        return None if self.synced else f"/snapshot?stream={self.topic.streams[0].key}"

    def on_snapshot(self, body: Any, channels: Mapping[str, Channel]) -> Iterator[Pub]:
        self.synced, self.fresh = True, False
        for channel in list(channels):
            yield Pub(channel, "snapshot", {"seq": body["seq"]})


class FakeCodec:
    def parse(self, raw: str | bytes) -> Sequence[Item]:
        if raw == "pong":
            return [Pong()]
        obj = orjson.loads(raw)
        if "id" in obj:
            return [Ack(obj["id"], obj["ok"], obj.get("msg", ""))]
        if "s" in obj:
            return [Data(obj["s"], obj, obj["ts"])]
        raise ValueError("not a fake venue frame")

    def state(self, topic: Topic, market: Market) -> FakeState:
        return FakeState(topic)


def native(symbol: str) -> str:  # BTCUSDT -> btc-usdt
    return f"{symbol[:-4]}-{symbol[-4:]}".lower()


def canonical(text: str) -> str | None:  # btc-usdt -> BTCUSDT
    return text.replace("-", "").upper() if text.endswith("-usdt") else None


def topic(channel: Channel, market: Market) -> Topic:
    symbol = check_kind(channel, market, "Fake")
    sym = market.to_native(symbol)
    if channel.kind == "trade":  # one channel, two streams on two endpoints
        streams = (Stream(f"a.{sym}"), Stream(f"b.{sym}", endpoint="extra"))
        return Topic(f"trade.{sym}", "trade", symbol, streams)
    if channel.kind == "book":
        return Topic(f"book.{sym}", "book", symbol, (Stream(f"d.{sym}"),), depth=channel.depth,
                     resync="snapshot")
    return Topic(f"t.{sym}", "ticker", symbol, (Stream(f"t.{sym}"),))


def requests(op: Op, args: Sequence[Any], n: int) -> tuple[str, Any]:
    return str(n), {"id": str(n), "op": "sub" if op == "subscribe" else "unsub",
                    "args": list(args)}


def declare(peer: FakeVenuePeer, cap: int | None = None) -> Venue:
    market = Market(
        key="linear", label="perps", rest_url=peer.url, codec=FakeCodec(), topic=topic,
        endpoints={"public": peer.ws_url("public"), "extra": peer.ws_url("extra")},
        requests=requests, kinds=frozenset({"ticker", "trade", "book"}),
        book_depths=(50,), to_native=native, from_native=canonical,
        limits=Limits(streams_per_connection=cap, args_per_request=5),
        ping=Ping(text="ping", interval_s=0.1, watchdog_s=0.5),
        instruments=Instruments(request=lambda cursor: ("/instruments", {}),
                                parse=lambda body: (dict.fromkeys(body["list"], "ok"), "")),
    )
    return Venue(name="fake", title="Fake", markets={"linear": market}, default_market="linear")


@dataclass
class Options:
    enabled: bool = True


class Events:
    def __init__(self) -> None:
        self.items: list[Event] = []

    async def __call__(self, event: Event) -> None:
        self.items.append(event)

    def on(self, channel: str) -> list[Event]:
        return [e for e in self.items if e.channel == channel]

    async def wait(self, predicate: Callable[[], bool], what: str) -> None:
        await eventually(predicate, WAIT_S, what)


@asynccontextmanager
async def running(cap: int | None = None, **kwargs: Any
                  ) -> AsyncIterator[tuple[ExchangeSource, Events, FakeVenuePeer]]:
    async with FakeVenuePeer() as peer:
        source = ExchangeSource(declare(peer, cap), Options(), backoff_max_s=0.5, **kwargs)
        events = Events()
        await source.start(events)
        try:
            yield source, events, peer
        finally:
            await source.stop()


def ch(name: str) -> Channel:
    return GRAMMAR.parse(name)


# -- tests -------------------------------------------------------------------------------------


async def test_subscribe_waits_for_the_matching_ack_and_publishes() -> None:
    async with running() as (source, events, peer):
        await source.subscribe(ch("ticker:BTCUSDT"))
        assert peer.requests("sub") == [["t.btc-usdt"]]  # the symbol mapped to the venue's
        await events.wait(lambda: len(events.on("ticker:BTCUSDT")) == 1, "the first frame")
        first = events.on("ticker:BTCUSDT")[0]
        assert (first.type, first.data, first.source) == (
            "snapshot", {"stream": "t.btc-usdt", "v": "1"}, "fake")
        await source.subscribe(ch("ticker:BTCUSDT"))  # one upstream subscription per topic
        assert await peer.push("t.btc-usdt", "2") == 1
        await events.wait(lambda: len(events.on("ticker:BTCUSDT")) == 2, "the pushed frame")
        assert events.on("ticker:BTCUSDT")[1].type == "update"
        assert peer.requests("sub") == [["t.btc-usdt"]]
        assert source.status().topics == 1 and source.status().state == "up"


async def test_a_refused_stream_raises_with_the_venues_reason_and_is_dropped() -> None:
    async with running() as (source, events, peer):
        peer.refused.add("t.eth-usdt")
        with pytest.raises(SourceError, match="unknown stream t.eth-usdt"):
            await source.subscribe(ch("ticker:ETHUSDT"))
        await source.subscribe(ch("ticker:BTCUSDT"))
        status = source.status()
        assert status.topics == 1
        assert status.extra["linear"]["rejections"] == 1
        with pytest.raises(SourceError, match="Unknown symbol 'XRPUSDT' on Fake perps"):
            await source.subscribe(ch("ticker:XRPUSDT"))  # not in the instruments list
        assert peer.requests("sub") == [["t.eth-usdt"], ["t.btc-usdt"]]


async def test_a_capped_market_shards_its_streams_over_several_sockets() -> None:
    async with running(cap=2) as (source, events, peer):
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            await source.subscribe(ch(f"ticker:{symbol}"))
        assert sorted(map(sorted, peer.subscribed("public"))) == [
            ["t.btc-usdt", "t.eth-usdt"], ["t.sol-usdt"]]
        for symbol in ("BTCUSDT", "ETHUSDT", "SOLUSDT"):
            await events.wait(lambda s=symbol: bool(events.on(f"ticker:{s}")), f"{symbol} data")
        assert len(source.status().extra["linear"]["sockets"]) == 2
        # A freed slot is reused before another socket opens.
        await source.unsubscribe(ch("ticker:ETHUSDT"))
        await source.subscribe(ch("ticker:ETHUSDT"))
        assert len(peer.open_sockets("public")) == 2


async def test_text_pings_keep_a_quiet_socket_alive() -> None:
    async with running() as (source, events, peer):
        await source.subscribe(ch("ticker:BTCUSDT"))
        # No data after the first frame: only the pongs to the client's "ping" come back.
        # 12 pings at 0.1 s span more than twice the 0.5 s watchdog.
        await peer.wait(lambda: peer.pings >= 12, "12 pings")
        assert len(peer.sockets) == 1 and source.status().reconnects == 0


async def test_a_silent_socket_is_replaced_with_a_gap_then_fresh_data() -> None:
    async with running() as (source, events, peer):
        await source.subscribe(ch("ticker:BTCUSDT"))
        peer.mute()  # no pong, no data: the watchdog replaces the socket
        await peer.wait(lambda: len(peer.sockets) >= 2, "a new socket")
        await events.wait(lambda: events.on("ticker:BTCUSDT")[-1].type == "snapshot"
                          and len(events.on("ticker:BTCUSDT")) >= 3, "gap then fresh data")
        kinds = [e.type for e in events.on("ticker:BTCUSDT")]
        assert kinds[:3] == ["snapshot", "gap", "snapshot"]
        assert "watchdog" in events.on("ticker:BTCUSDT")[1].data["reason"]


async def test_a_dropped_socket_publishes_gaps_before_the_resubscribed_data() -> None:
    async with running() as (source, events, peer):
        await source.subscribe(ch("ticker:BTCUSDT"))
        await source.subscribe(ch("ticker:ETHUSDT"))
        await events.wait(lambda: len(events.items) == 2, "first frames")
        await peer.drop()
        await peer.wait(lambda: peer.subscribed("public") == [{"t.btc-usdt", "t.eth-usdt"}],
                        "streams restored")
        await events.wait(lambda: len(events.items) == 6, "gaps and fresh frames")
        after = events.items[2:]
        assert [e.type for e in after[:2]] == ["gap", "gap"]  # both before any new data
        assert {e.channel for e in after[:2]} == {"ticker:BTCUSDT", "ticker:ETHUSDT"}
        assert "upstream reconnected" in after[0].data["reason"]
        assert isinstance(after[0].data["since"], int)
        assert [e.type for e in after[2:]] == ["snapshot", "snapshot"]
        assert peer.requests("sub")[-1] == ["t.btc-usdt", "t.eth-usdt"]  # one batch
        assert source.status().reconnects == 1


async def test_one_channel_on_streams_of_two_endpoints() -> None:
    async with running() as (source, events, peer):
        await source.subscribe(ch("trade:BTCUSDT"))
        assert peer.subscribed("public") == [{"a.btc-usdt"}]
        assert peer.subscribed("extra") == [{"b.btc-usdt"}]
        await events.wait(lambda: len(events.on("trade:BTCUSDT")) == 2, "both streams")
        assert {e.data["stream"] for e in events.on("trade:BTCUSDT")} == {"a.btc-usdt",
                                                                          "b.btc-usdt"}
        await source.unsubscribe(ch("trade:BTCUSDT"))
        await peer.wait(lambda: peer.subscribed() == [set(), set()], "both unsubscribed")
        assert source.status().topics == 0


async def test_a_snapshot_resync_fetches_rest_and_counts_the_break() -> None:
    async with running() as (source, events, peer):
        await source.subscribe(ch("book:50:BTCUSDT"))
        name = "book:50:BTCUSDT"
        await events.wait(lambda: len(events.on(name)) == 1, "the REST snapshot")
        assert events.on(name)[0].type == "snapshot" and events.on(name)[0].data == {"seq": 1}
        await peer.push("d.btc-usdt", "2")
        await events.wait(lambda: len(events.on(name)) == 2, "an update")
        await peer.push("d.btc-usdt", "break")
        await events.wait(lambda: len(events.on(name)) == 4, "gap then a new snapshot")
        assert [e.type for e in events.on(name)[2:]] == ["gap", "snapshot"]
        assert events.on(name)[3].data == {"seq": 2}
        assert peer.snapshots["d.btc-usdt"] == 2
        assert source.status().book_resyncs == {"sequence": 1}
        assert source.status().extra["linear"]["book_resyncs"] == {"sequence": 1}


async def test_unanswered_subscribe_times_out_and_is_withdrawn() -> None:
    async with running(ack_timeout_s=0.3) as (source, events, peer):
        await source.subscribe(ch("ticker:BTCUSDT"))
        peer.mute()
        with pytest.raises(SourceError, match="did not acknowledge topic 't.eth-usdt'"):
            await source.subscribe(ch("ticker:ETHUSDT"))
        assert source.status().topics == 1


async def test_foreign_kinds_and_venues_are_refused_with_a_reason() -> None:
    async with running() as (source, _, _peer):
        with pytest.raises(SourceError, match="Fake serves ticker, trade and book channels"):
            await source.subscribe(ch("kline:1h:BTCUSDT"))
        with pytest.raises(SourceError, match="Fake has no venue 'okx'"):
            await source.subscribe(ch("ticker:BTCUSDT@okx"))
    assert source.venues == {"linear"} and source.kinds == {"ticker", "trade", "book"}
