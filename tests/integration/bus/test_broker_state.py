"""``Broker.state`` (PROTOCOLS.md 4.2), one contract for the memory and the Redis broker: the
state of a ticker, kline or book channel as one ``snapshot`` at the offset of the last
publication it includes, ``None`` when unknown; on Redis readable by every node (the
state key, book checkpoints and the stream entries after them, bus/redis_state.py)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
import pytest
from tests.waiting import eventually

from cryptowire.books import OrderBook
from cryptowire.bus.base import Broker
from cryptowire.bus.memory import MemoryBroker
from cryptowire.bus.redis import RedisBroker
from cryptowire.events import Event, Publication
from cryptowire.settings import BusSettings, HistorySettings

pytestmark = pytest.mark.integration

BOOK = "book:50:BTCUSDT"
Factory = Callable[..., Any]


@pytest.fixture(params=["memory", "redis"])
async def make_broker(request: pytest.FixtureRequest) -> AsyncIterator[Factory]:
    """``await make_broker(size=...)`` -> a started broker; Redis ones share a prefix (nodes
    of one cluster); a memory "second node" is the same broker (one process)."""
    brokers: list[Broker] = []
    url = prefix = None
    if request.param == "redis":
        url = request.getfixturevalue("redis_url")
        prefix = request.getfixturevalue("prefix")

    async def make(size: int = 100) -> Broker:
        history = HistorySettings(size=size)
        broker: Broker
        if request.param == "memory":
            if brokers:
                return brokers[0]
            broker = MemoryBroker(history)
        else:
            assert url is not None and prefix is not None
            broker = RedisBroker(url, history, BusSettings(url=url, prefix=prefix))
        await broker.start(lambda pub: None)
        if isinstance(broker, RedisBroker):
            await eventually(broker.healthy)
        brokers.append(broker)
        return broker

    yield make
    for broker in brokers:
        await broker.stop()


def book_event(type_: str, bids: list[list[str]], asks: list[list[str]],
               seq: int | None = None) -> Event:
    data: dict[str, Any] = {"symbol": "BTCUSDT", "bids": bids, "asks": asks}
    if seq is not None:
        data["venueSeq"] = seq
    return Event(channel=BOOK, data=data, type=type_, source="test")


def data_of(pub: Publication | None) -> Any:
    assert pub is not None
    return orjson.loads(pub.data_json)


async def test_ticker_state_is_the_last_publication(make_broker: Factory) -> None:
    a = await make_broker()
    b = await make_broker()
    assert await b.state("ticker:BTCUSDT") is None  # nothing published yet
    await a.publish(Event("ticker:BTCUSDT", {"symbol": "BTCUSDT", "price": "1.10"},
                          type="snapshot", source="test"))
    last = await a.publish(Event("ticker:BTCUSDT", {"symbol": "BTCUSDT", "price": "1.20"},
                                 source="test"))
    state = await b.state("ticker:BTCUSDT")
    assert state is not None
    assert (state.type, state.epoch, state.offset, state.source) == (
        "snapshot", last.epoch, last.offset, "test")
    assert state.data_json == b'{"symbol":"BTCUSDT","price":"1.20"}'  # the digits as sent


async def test_a_ticker_keeps_its_last_value_through_a_gap(make_broker: Factory) -> None:
    """A gap (a leader takeover, an upstream reconnect) does not make a full-state channel
    unknown: its last value still follows a subscribe, on memory and on Redis alike."""
    a = await make_broker()
    b = await make_broker()
    await a.publish(Event("ticker:BTCUSDT", {"symbol": "BTCUSDT", "price": "1.20"},
                          source="test"))
    gap = await a.publish(Event("ticker:BTCUSDT", {"reason": "upstream reconnected"},
                                type="gap", source="test"))
    state = await b.state("ticker:BTCUSDT")
    assert state is not None and state.type == "snapshot"
    assert state.data_json == b'{"symbol":"BTCUSDT","price":"1.20"}'
    assert (state.epoch, state.offset) == (gap.epoch, gap.offset)  # it includes the gap


async def test_event_channels_have_no_state(make_broker: Factory) -> None:
    a = await make_broker()
    await a.publish(Event("trade:BTCUSDT", {"id": "1"}, source="test"))
    await a.publish(Event("app:x", {"n": 1}, source="test"))
    assert await a.state("trade:BTCUSDT") is None
    assert await a.state("app:x") is None


async def test_book_state_follows_snapshots_deltas_and_gaps(make_broker: Factory) -> None:
    a = await make_broker()
    b = await make_broker()
    await a.publish(book_event("snapshot", [["100", "1"]], [["101", "1"]], seq=7))
    last = await a.publish(book_event("delta", [["99.5", "2"]], [["101", "0"], ["102", "3"]],
                                      seq=8))
    state = await b.state(BOOK)
    assert state is not None and state.offset == last.offset
    assert data_of(state) == {"symbol": "BTCUSDT", "bids": [["100", "1"], ["99.5", "2"]],
                              "asks": [["102", "3"]], "venueSeq": 8}
    await a.publish(Event(BOOK, {"reason": "resync"}, type="gap", source="test"))
    assert await b.state(BOOK) is None
    await a.publish(book_event("delta", [["100", "5"]], []))
    assert await b.state(BOOK) is None  # unknown until the next snapshot
    again = await a.publish(book_event("snapshot", [["90", "1"]], [["91", "1"]]))
    state = await b.state(BOOK)
    assert state is not None and state.offset == again.offset
    assert data_of(state)["bids"] == [["90", "1"]]


@pytest.mark.parametrize("size", [8, 100, 1000])
async def test_book_state_is_exact_after_many_deltas(make_broker: Factory, size: int) -> None:
    """Hundreds of deltas, past the checkpoint cadence and (size 8) the history: the state
    read on another node is the publisher's book at every step checked (whether or not the
    checkpoint that follows a publication has landed yet)."""
    a = await make_broker(size=size)
    b = await make_broker(size=size)
    rnd = random.Random(size)
    book = OrderBook(50)
    bids = [[f"{100 - i}.5", "1"] for i in range(10)]
    asks = [[f"{101 + i}.5", "1"] for i in range(10)]
    book.snapshot(bids, asks)
    await a.publish(book_event("snapshot", bids, asks))
    for step in range(300):
        d_bids = [[f"{rnd.randint(80, 100)}.5", rnd.choice(["0", "2", "0.125"])]]
        d_asks = [[f"{rnd.randint(101, 120)}.5", rnd.choice(["0", "3", "0.5"])]]
        book.apply(d_bids, d_asks)
        pub = await a.publish(book_event("delta", d_bids, d_asks, seq=step))
        if step % 37 == 0 or step == 299:
            state = await b.state(BOOK)
            assert state is not None and state.offset == pub.offset
            got = data_of(state)
            assert (got["bids"], got["asks"]) == (book.levels("bids"), book.levels("asks"))
            assert got["venueSeq"] == step


async def test_redis_state_is_rebuilt_from_the_checkpoint_and_the_stream(
        redis_url: str, prefix: str) -> None:
    """What the state key holds on Redis: the snapshot's own payload, then a checkpoint
    every ``every`` deltas; a stream that no longer reaches back to it means no state,
    never a wrong one; a new epoch takes the key with it."""
    bus = BusSettings(url=redis_url, prefix=prefix)
    a = RedisBroker(redis_url, HistorySettings(size=40), bus)  # a checkpoint every 10
    await a.start(lambda pub: None)
    try:
        await eventually(a.healthy)
        key = f"{prefix}:state:{BOOK}"
        snap = await a.publish(book_event("snapshot", [["100", "1"]], [["101", "1"]]))
        assert int(await a.redis.hget(key, "o")) == snap.offset
        for i in range(12):
            await a.publish(book_event("delta", [[f"{80 + i}", "1"]], []))
        await eventually(lambda: a.stats()["state_checkpoints"] == 1)
        await eventually(lambda: a.redis.hget(key, "o"), what="checkpoint written")
        assert int(await a.redis.hget(key, "o")) == snap.offset + 10
        state = await a.state(BOOK)
        assert state is not None and state.offset == snap.offset + 12
        await a.redis.xdel(f"{prefix}:stream:{BOOK}", f"{snap.offset + 11}-0")
        assert await a.state(BOOK) is None  # a hole after the checkpoint: no state
        await a.redis.delete(f"{prefix}:meta:{BOOK}")
        await a.position(BOOK)  # a new epoch
        assert not await a.redis.exists(key)
        assert await a.state(BOOK) is None
    finally:
        await a.stop()
