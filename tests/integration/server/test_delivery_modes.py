"""Delivery modes over real sockets (PROTOCOLS.md 4.1 contract, 4.2, 4.3), on one node (memory
bus) and on two nodes sharing the real Redis.

The channels are served by :class:`QuietSource`, a source that accepts ticker, kline, book
and trade channels and publishes nothing itself: the tests publish through the node's broker
what a venue source would (the book conventions of the brief: ``snapshot``, ``delta`` with
size ``"0"`` removing, ``gap``). A client-side :class:`~cryptowire.books.OrderBook` applies
the frames it receives in offset order and is compared with the publisher's book.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession
from tests.integration.hubkit import serve, stop_all
from tests.integration.server.conftest import TIMEOUT, Hub, call, hub_settings, recv_json
from tests.waiting import eventually, subscribed
from websockets.asyncio.client import ClientConnection

from cryptowire.app.node import Node
from cryptowire.books import OrderBook
from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.events import Event, Publication

pytestmark = pytest.mark.integration

BOOK = "book:50:BTCUSDT"


class QuietSource:
    """Serves market channels on demand and publishes nothing (the test does)."""

    name = "quiet"
    kinds = frozenset({"ticker", "kline", "book", "trade", "liquidation"})

    def __init__(self) -> None:
        self.topics: set[str] = set()

    async def start(self, publish: PublishFn) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, channel: Channel) -> None:
        self.topics.add(channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        self.topics.discard(channel.name)

    def status(self) -> SourceStatus:
        return SourceStatus(name=self.name, state="up", topics=len(self.topics))


Start = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def quiet_hubs(tmp_path: Path) -> AsyncIterator[Start]:
    hubs: list[Hub] = []
    http = ClientSession()

    async def start(**overrides: Any) -> Hub:
        directory = tmp_path / f"hub{len(hubs)}"
        directory.mkdir()
        settings = hub_settings(directory, **{"demo": {"mode": "off"}, **overrides})
        node = Node(settings, sources=[QuietSource()])
        runner, port = await serve(node)
        hub = Hub(node=node, runner=runner, port=port, http=http)
        hubs.append(hub)
        return hub

    try:
        yield start
    finally:
        await stop_all(hubs, http)


class Publisher:
    """Publishes a book as a venue source would, keeping the book it published."""

    def __init__(self, hub: Hub, channel: str = BOOK) -> None:
        self.hub = hub
        self.channel = channel
        self.book = OrderBook(50)
        #: offset -> the publisher's book right after that publication
        self.history: dict[int, tuple[list[list[str]], list[list[str]]]] = {}

    async def send(self, type_: str, data: Any) -> Publication:
        return await self.hub.node.broker.publish(Event(channel=self.channel, type=type_,
                                                        data=data, source="test"))

    async def snapshot(self, bids: list[list[str]], asks: list[list[str]]) -> Publication:
        self.book.snapshot(bids, asks)
        pub = await self.send("snapshot", {"symbol": "BTCUSDT", "bids": bids, "asks": asks})
        self.history[pub.offset] = self.levels()
        return pub

    async def delta(self, bids: list[list[str]], asks: list[list[str]]) -> Publication:
        self.book.apply(bids, asks)
        pub = await self.send("delta", {"symbol": "BTCUSDT", "bids": bids, "asks": asks})
        self.history[pub.offset] = self.levels()
        return pub

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        return self.book.levels("bids"), self.book.levels("asks")


class ClientBook:
    """What a client holds: the latest snapshot, then every delta in offset order."""

    def __init__(self) -> None:
        self.book = OrderBook(50)
        self.offset: int | None = None

    def apply(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "snapshot":
            self.book.snapshot(frame["data"]["bids"], frame["data"]["asks"])
        else:
            assert frame["type"] == "delta", frame
            assert frame["offset"] == self.offset + 1 if self.offset else True, frame
            self.book.apply(frame["data"]["bids"], frame["data"]["asks"])
        self.offset = frame["offset"]

    def levels(self) -> tuple[list[list[str]], list[list[str]]]:
        return self.book.levels("bids"), self.book.levels("asks")


async def request(ws: ClientConnection, frame: dict[str, Any], count: int) -> list[Any]:
    """Send ``frame``; the next ``count`` frames exactly as they come (reply included)."""
    await ws.send(orjson.dumps(frame).decode())
    return [await recv_json(ws) for _ in range(count)]


async def nothing_more(hub: Hub, ws: ClientConnection) -> None:
    """Nothing else was queued for ``ws``: a ping's pong is the very next frame."""
    assert (await request(ws, {"op": "ping"}, 1))[0]["op"] == "pong"


async def scrape(hub: Hub) -> dict[str, float]:
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        text = await resp.text()
    return {name: float(value) for name, value in (
        line.rsplit(" ", 1) for line in text.splitlines() if line and line[0] != "#")}


async def test_snapshot_follows_the_reply_on_ticker_book_and_kline(quiet_hubs: Start) -> None:
    hub = await quiet_hubs()
    pub = Publisher(hub)
    await pub.snapshot([["100.0", "1"], ["99.5", "2"]], [["100.5", "3"]])
    book_top = await pub.delta([["99.5", "0"]], [["101.00", "1.250"]])
    await hub.node.broker.publish(Event("ticker:BTCUSDT", {"symbol": "BTCUSDT", "price": "1.1"},
                                        type="snapshot"))
    ticker = await hub.node.broker.publish(Event("ticker:BTCUSDT",
                                                 {"symbol": "BTCUSDT", "price": "1.20"}))
    kline = await hub.node.broker.publish(Event("kline:1m:BTCUSDT", {"close": "1.20"}))
    ws = await hub.connect()
    reply, *snaps = await request(ws, {"id": 1, "op": "subscribe", "args": [
        "ticker:BTCUSDT", "orderbook.50.BTCUSDT", "kline:1m:BTCUSDT"]}, 4)
    assert reply["id"] == 1 and reply["success"] is True
    by_channel = {s["channel"]: s for s in snaps}
    assert [s["type"] for s in snaps] == ["snapshot"] * 3
    assert by_channel["ticker:BTCUSDT"]["data"] == {"symbol": "BTCUSDT", "price": "1.20"}
    assert by_channel["ticker:BTCUSDT"]["offset"] == ticker.offset
    assert by_channel["kline:1m:BTCUSDT"]["offset"] == kline.offset
    assert by_channel[BOOK]["offset"] == book_top.offset
    assert by_channel[BOOK]["data"] == {"symbol": "BTCUSDT", "bids": [["100.0", "1"]],
                                        "asks": [["100.5", "3"], ["101.00", "1.250"]]}
    # The reply's positions are where the snapshots stand; live frames continue after them.
    for name, snap in by_channel.items():
        assert reply["positions"][name] == {"epoch": snap["epoch"], "offset": snap["offset"]}
    nxt = await pub.delta([["100.0", "2"]], [])
    frame = await recv_json(ws)
    assert (frame["channel"], frame["type"], frame["offset"]) == (BOOK, "delta", nxt.offset)


async def test_event_channels_get_no_snapshot(quiet_hubs: Start) -> None:
    hub = await quiet_hubs()
    await hub.node.broker.publish(Event("trade:BTCUSDT", {"id": "1", "price": "1.5"}))
    await hub.node.broker.publish(Event("app:x", {"n": 1}))
    ws = await hub.connect()
    [reply] = await request(ws, {"op": "subscribe", "args": ["trade:BTCUSDT", "app:x"]}, 1)
    assert reply["args"] == ["trade:BTCUSDT", "app:x"]
    await nothing_more(hub, ws)


async def test_an_unknown_book_gets_no_snapshot(quiet_hubs: Start) -> None:
    """After a gap the book is unknown until the next snapshot: none is sent rather than a
    wrong one, and the next snapshot reaches the subscriber live."""
    hub = await quiet_hubs()
    pub = Publisher(hub)
    await pub.snapshot([["100", "1"]], [["101", "1"]])
    await pub.send("gap", {"reason": "resync"})
    ws = await hub.connect()
    [reply] = await request(ws, {"op": "subscribe", "args": [BOOK]}, 1)
    assert reply["positions"][BOOK]["offset"] == 2
    await nothing_more(hub, ws)
    snap = await pub.snapshot([["90", "1"]], [["91", "1"]])
    frame = await recv_json(ws)
    assert (frame["type"], frame["offset"]) == ("snapshot", snap.offset)


async def follow(ws: ClientConnection, client: ClientBook, pub: Publisher, steps: int) -> None:
    """Publish ``steps`` deltas; after each, the client's book is the publisher's."""
    for i in range(steps):
        await pub.delta([[f"{95 + i % 5}.5", str(i % 3)]], [[f"{102 + i % 4}", str(i % 2)]])
        client.apply(await recv_json(ws))
        assert client.levels() == pub.levels()


async def test_book_recover_true_replays_the_deltas_only(quiet_hubs: Start) -> None:
    hub = await quiet_hubs()
    pub = Publisher(hub)
    await pub.snapshot([["100", "1"], ["99", "1"]], [["101", "1"]])
    ws = await hub.connect()
    client = ClientBook()
    reply, snap = await request(ws, {"op": "subscribe", "args": [BOOK]}, 2)
    client.apply(snap)
    await follow(ws, client, pub, 5)
    await ws.close()
    for i in range(4):  # missed while away
        await pub.delta([[f"{90 + i}", "1"]], [["101", str(i + 2)]])
    ws2 = await hub.connect()
    reply, *missed = await request(ws2, {"op": "subscribe", "args": [BOOK], "recover": {
        BOOK: {"epoch": snap["epoch"], "offset": client.offset}}}, 5)
    assert reply["recovered"] == {BOOK: True}
    assert [m["type"] for m in missed] == ["delta"] * 4  # no snapshot
    for frame in missed:
        client.apply(frame)
    assert client.levels() == pub.levels()
    await follow(ws2, client, pub, 3)


async def test_book_recover_false_is_followed_by_the_snapshot(quiet_hubs: Start) -> None:
    hub = await quiet_hubs()
    pub = Publisher(hub)
    await pub.snapshot([["100", "1"]], [["101", "1"]])
    top = await pub.delta([["99", "2"]], [])
    ws = await hub.connect()
    reply, snap = await request(ws, {"op": "subscribe", "args": [BOOK], "recover": {
        BOOK: {"epoch": "not-this-one", "offset": 1}}}, 2)
    assert reply["recovered"] == {BOOK: False}
    assert (snap["type"], snap["offset"]) == ("snapshot", top.offset)
    client = ClientBook()
    client.apply(snap)
    assert client.levels() == pub.levels()
    await follow(ws, client, pub, 3)


async def test_interval_batch_carries_every_event_in_order(quiet_hubs: Start) -> None:
    hub = await quiet_hubs()
    ws = await hub.connect()
    [reply] = await request(ws, {"op": "subscribe", "args": ["trade:BTCUSDT"],
                                 "interval_ms": 100}, 1)
    assert reply["args"] == ["trade:BTCUSDT"]
    sent = [await hub.node.broker.publish(Event("trade:BTCUSDT", {"id": str(i),
                                                                  "price": f"1.{i}0"},
                                                source="test")) for i in range(6)]
    frame = await recv_json(ws)
    got = [frame]
    while got[-1]["offsets"][1] < sent[-1].offset:  # an interval boundary fell in between
        got.append(await recv_json(ws))
    assert all(f["type"] == "batch" and f["channel"] == "trade:BTCUSDT" for f in got)
    assert [d for f in got for d in f["data"]] == [
        {"id": str(i), "price": f"1.{i}0"} for i in range(6)]
    assert got[0]["offsets"][0] == sent[0].offset
    for before, after in zip(got, got[1:], strict=False):
        assert after["offsets"][0] == before["offsets"][1] + 1  # contiguous, none twice
    assert got[-1]["ts"] == sent[-1].ts and got[-1]["source"] == "test"
    metrics = await scrape(hub)
    assert metrics["cryptowire_conflated_sessions"] == 1.0
    assert metrics["cryptowire_conflation_groups"] == 1.0
    assert metrics["cryptowire_conflated_frames_total"] == len(got)


async def test_interval_book_snapshot_is_the_publishers_book(quiet_hubs: Start) -> None:
    hub = await quiet_hubs()
    pub = Publisher(hub)
    await pub.snapshot([["100", "1"], ["99", "1"]], [["101", "1"]])
    ws = await hub.connect()
    reply, first = await request(ws, {"op": "subscribe", "args": [BOOK],
                                      "interval_ms": 200}, 2)
    assert first["type"] == "snapshot"  # the latest value at once (4.2)
    for i in range(5):
        top = await pub.delta([[f"{98 - i}", "3"]], [["101", str(i + 1)]])
    frame = await recv_json(ws)
    while frame["offset"] < top.offset:  # an interval boundary fell in between
        frame = await recv_json(ws)
    assert (frame["type"], frame["offset"]) == ("snapshot", top.offset)
    assert (frame["data"]["bids"], frame["data"]["asks"]) == pub.levels()


@pytest.mark.parametrize("value", [49, 60_001, 250.5, "250", True, None])
async def test_invalid_interval_is_refused_and_nothing_subscribed(
        quiet_hubs: Start, value: Any) -> None:
    hub = await quiet_hubs()
    ws = await hub.connect()
    [err] = await request(ws, {"id": 7, "op": "subscribe", "args": ["app:x"],
                               "interval_ms": value}, 1)
    assert err == {"id": 7, "op": "error", "code": "INVALID_ARGS", "message": (
        "'interval_ms' must be an integer from 50 to 60000 (milliseconds), not "
        f"{orjson.dumps(value).decode()}.")}
    assert hub.node.hub.subscribers("app:x") == 0
    await hub.node.broker.publish(Event("app:x", {"n": 1}))
    await nothing_more(hub, ws)


async def test_two_nodes_on_redis_late_subscriber_gets_the_latest_book(
        quiet_hubs: Start, redis_url: str, prefix: str) -> None:
    bus = {"url": redis_url, "prefix": prefix}
    a = await quiet_hubs(bus=bus)
    b = await quiet_hubs(bus=bus)
    pub = Publisher(a)
    await pub.snapshot([[f"{100 - i}", "1"] for i in range(10)],
                       [[f"{101 + i}", "1"] for i in range(10)])
    for i in range(150):  # past the checkpoint cadence: the state is key + stream replay
        await pub.delta([[f"{91 + i % 9}", str(i % 4)]], [[f"{101 + i % 7}", str(1 + i % 3)]])
    top = await pub.send("delta", {"symbol": "BTCUSDT", "bids": [], "asks": []})
    late = await b.connect()
    reply, snap = await request(late, {"op": "subscribe", "args": [BOOK]}, 2)
    assert (snap["type"], snap["offset"]) == ("snapshot", top.offset)
    client = ClientBook()
    client.apply(snap)
    assert client.levels() == pub.levels()
    # Live from node a's publications, contiguous after the snapshot.
    await subscribed(b.node.hub, BOOK)
    await follow(late, client, pub, 10)
    # A recover on node b after missing some: the deltas from the Redis stream.
    await late.close()
    for i in range(3):
        await pub.delta([[f"{80 + i}", "1"]], [])
    again = await b.connect()
    reply, *missed = await request(again, {"op": "subscribe", "args": [BOOK], "recover": {
        BOOK: {"epoch": snap["epoch"], "offset": client.offset}}}, 4)
    assert reply["recovered"] == {BOOK: True}
    for frame in missed:
        client.apply(frame)
    assert client.levels() == pub.levels()
    # A recover that fails: the snapshot, from the state key and the stream after it.
    lost = await b.connect()
    reply, snap = await request(lost, {"op": "subscribe", "args": [BOOK], "recover": {
        BOOK: {"epoch": "gone", "offset": 3}}}, 2)
    assert reply["recovered"] == {BOOK: False}
    fresh = ClientBook()
    fresh.apply(snap)
    assert fresh.offset == missed[-1]["offset"] and fresh.levels() == pub.levels()


async def test_subscribers_joining_during_a_stream_of_deltas_are_exact_at_every_step(
        quiet_hubs: Start, redis_url: str, prefix: str) -> None:
    """Node a publishes deltas without pause while clients subscribe on node b (Redis):
    each client's first frame after the reply is a snapshot, then deltas with contiguous
    offsets, and its book equals the publisher's at every offset it sees."""
    bus = {"url": redis_url, "prefix": prefix}
    a = await quiet_hubs(bus=bus)
    b = await quiet_hubs(bus=bus)
    pub = Publisher(a)
    await pub.snapshot([[f"{100 - i}", "1"] for i in range(5)], [["101", "1"]])
    done = asyncio.Event()

    async def publish() -> None:
        i = 0
        while not done.is_set():
            await pub.delta([[f"{90 + i % 10}", str(i % 3)]], [[f"{102 + i % 5}", "1"]])
            i += 1

    async def client() -> int:
        ws = await b.connect()
        [reply] = await request(ws, {"op": "subscribe", "args": [BOOK]}, 1)
        book = ClientBook()
        seen = 0
        async with asyncio.timeout(TIMEOUT):
            while seen < 40:
                frame = await recv_json(ws)
                assert seen or frame["type"] == "snapshot", frame
                book.apply(frame)  # asserts contiguous offsets
                assert book.levels() == pub.history[frame["offset"]]
                seen += 1
        assert reply["positions"][BOOK]["offset"] < book.offset  # type: ignore[operator]
        # Read what is still coming up to the unsubscribe's reply, so the close is quick.
        assert (await call(ws, {"op": "unsubscribe", "args": [BOOK]}))["args"] == [BOOK]
        await ws.close()
        return seen

    task = asyncio.create_task(publish())
    try:
        for _ in range(2):
            counts = await asyncio.gather(*(client() for _ in range(3)))
            assert counts == [40, 40, 40]
    finally:
        done.set()
        await task


async def test_two_nodes_on_redis_ticker_and_conflated_trades(
        quiet_hubs: Start, redis_url: str, prefix: str) -> None:
    bus = {"url": redis_url, "prefix": prefix}
    a = await quiet_hubs(bus=bus)
    b = await quiet_hubs(bus=bus)
    last = None
    for price in ("1.10", "1.20"):
        last = await a.node.broker.publish(Event("ticker:ETHUSDT", {"price": price}))
    assert last is not None
    ws = await b.connect()
    reply, snap = await request(ws, {"op": "subscribe", "args": ["ticker:ETHUSDT",
                                                                 "trade:ETHUSDT"],
                                     "interval_ms": 50}, 2)
    assert (snap["channel"], snap["offset"], snap["data"]) == (
        "ticker:ETHUSDT", last.offset, {"price": "1.20"})
    await subscribed(b.node.hub, "trade:ETHUSDT")
    sent = await asyncio.gather(*(a.node.broker.publish(Event("trade:ETHUSDT", {"i": i}))
                                  for i in range(20)))
    got: list[Any] = []
    async with asyncio.timeout(TIMEOUT):
        while len(got) < len(sent):
            frame = await recv_json(ws)
            assert frame["type"] == "batch"
            got.extend(frame["data"])
    assert got == [{"i": i} for i in range(20)]
    await eventually(lambda: b.node.hub.conflation.frames > 0)
