"""Order books and liquidations end to end: replay peer -> BybitSource -> hub -> real /ws clients.

The contract of PROTOCOLS.md 4.1: a client that applies the latest ``snapshot`` and then every
``delta`` in offset order holds exactly the venue's book, cut at depth, at every step. The
peer's :class:`~tests.peers.bybit_books.BookFeed` is the venue and knows its book after every
frame it sent; the client below rebuilds the book from the hub's frames with
:class:`cryptowire.books.OrderBook` and compares after each frame. After a ``gap`` it drops
its book until the next snapshot (a delta in between fails the test). It takes whatever
snapshot comes first (the source's, or one the hub sends from its stored state right after
the subscribe reply), so the tests hold with or without the hub's latest value on subscribe.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.bybit_hub.support import (
    TIMEOUT,
    BybitHub,
    HubFactory,
    string_leaves,
    subscribe,
)
from tests.peers.bybit_books import BookFeed
from tests.peers.bybit_peer import BybitPeer, load_fixture
from websockets.asyncio.client import ClientConnection

from cryptowire.books import OrderBook

pytestmark = pytest.mark.integration

CHANNEL = "book:50:BTCUSDT"
TOPIC = "orderbook.50.BTCUSDT"
FAST_WATCHDOG = {"ping_interval_s": 0.2, "watchdog_s": 0.6}


@dataclass
class BookClient:
    """A client's local book of one channel, checked against the venue after every frame."""

    ws: ClientConnection
    feed: BookFeed
    channel: str = CHANNEL
    book: OrderBook | None = None
    had_book: bool = False
    frames: list[dict[str, Any]] = field(default_factory=list)
    checked: int = 0

    @property
    def types(self) -> list[str]:
        return [f["type"] for f in self.frames]

    def deltas_since(self, kind: str) -> int:
        """Deltas after the last frame of type ``kind`` (-1 if there is none)."""
        types = self.types
        if kind not in types:
            return -1
        return types[len(types) - 1 - types[::-1].index(kind):].count("delta")

    async def read_until(self, done: Callable[[BookClient], bool],
                         timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not done(self):
                self.apply(orjson.loads(await self.ws.recv()))

    def apply(self, msg: dict[str, Any]) -> None:
        if msg.get("channel") != self.channel:
            return
        if self.frames:
            assert msg["offset"] == self.frames[-1]["offset"] + 1, "offsets are contiguous"
        self.frames.append(msg)
        kind, data = msg["type"], msg["data"]
        if kind == "gap":
            assert isinstance(data["reason"], str) and data["reason"]
            self.book = None
            return
        if kind == "snapshot":
            self.book = OrderBook(50)
            self.book.snapshot(data["bids"], data["asks"])
            self.had_book = True
        else:
            assert kind == "delta", msg
            if self.book is None:
                # Only a client that never had a book may see deltas before its snapshot
                # (it joined a running channel); after a gap, none may come.
                assert not self.had_book, f"a delta after a gap, before a snapshot: {msg}"
                return
            self.book.apply(data["bids"], data["asks"])
        assert data["symbol"] == "BTCUSDT"
        venue = self.feed.book_at(msg["ts"], data.get("venueSeq"))
        assert (self.book.levels("bids"), self.book.levels("asks")) == venue, \
            f"the client's book differs from the venue's after {kind} {data.get('venueSeq')}"
        assert not self.book.crossed()
        self.checked += 1


async def resyncs(hub: BybitHub) -> dict[str, float]:
    """``cryptowire_book_resyncs_total`` of the bybit source, by reason, from /metrics."""
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        assert resp.status == 200
        text = await resp.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cryptowire_book_resyncs_total":
                assert sample.labels["source"] == "bybit"
                out[sample.labels["reason"]] = sample.value
    return out


async def book_client(hub: BybitHub, peer: BybitPeer, arg: str = CHANNEL) -> BookClient:
    ws = await hub.connect()
    reply = await subscribe(ws, arg)
    assert reply["args"] == [CHANNEL] and not reply["rejected"], reply
    client = BookClient(ws, peer.book(TOPIC))
    await client.read_until(lambda c: c.deltas_since("snapshot") >= 10)
    return client


async def test_the_client_book_is_the_venue_book_at_every_step(hub: BybitHub,
                                                               peer: BybitPeer) -> None:
    client = await book_client(hub, peer)
    await client.read_until(lambda c: c.checked >= 80)
    first = client.frames[0]
    assert first["type"] == "snapshot" and first["source"] == "bybit"
    assert len(first["data"]["bids"]) == len(first["data"]["asks"]) == 50
    assert "gap" not in client.types
    # Each delta is the upstream delta of the same ts, strings as Bybit sent them (the venue
    # book is 50 levels deep: the depth cut adds nothing), and u is its venueSeq.
    sent = {f["ts"]: f["data"] for f in peer.book(TOPIC).sent}
    for frame in client.frames[1:]:
        upstream = sent[frame["ts"]]
        assert frame["data"] == {"symbol": "BTCUSDT", "bids": upstream["b"],
                                 "asks": upstream["a"], "venueSeq": upstream["u"]}
    assert await resyncs(hub) == {}


@pytest.mark.parametrize(("fault", "cause"), [
    ("gap", "sequence"), ("crossed", "crossed"), ("restart", None), ("restart-delta", None),
    ("drop", None), ("stall", None),
])
async def test_after_each_fault_the_book_is_never_wrong_and_exact_again(
    hub_factory: HubFactory, peer: BybitPeer, fault: str, cause: str | None
) -> None:
    hub = await hub_factory(source=FAST_WATCHDOG)
    client = await book_client(hub, peer)
    connections = peer.connections_total["linear"]
    if fault == "drop":
        peer.drop()
    elif fault == "stall":
        peer.stall(True)
        await peer.wait_until(lambda: peer.connections_total["linear"] > connections,
                              TIMEOUT, "the watchdog to replace the silent socket")
        peer.stall(False)
    else:
        peer.book(TOPIC).inject(fault)
        # The fault and the deltas behind it back to back: those are in flight when the hub
        # sees the fault, and must not reach the client.
        peer.book(TOPIC).burst(6)
    if fault.startswith("restart"):
        # u = 1 overwrites the book: a snapshot, no gap, no re-sync.
        await client.read_until(lambda c: c.deltas_since("snapshot") >= 10 and any(
            f["data"].get("venueSeq") == 1 for f in c.frames))
        restart = next(f for f in client.frames if f["data"].get("venueSeq") == 1)
        assert restart["type"] == "snapshot"
        assert "gap" not in client.types
    else:
        await client.read_until(lambda c: "gap" in c.types and c.deltas_since("snapshot") >= 10
                                and c.types.index("gap") < len(c.types) - 11)
        gap_at = client.types.index("gap")
        assert client.types[gap_at + 1] == "snapshot"  # the fresh book, nothing before it
        gap = client.frames[gap_at]
        assert gap["source"] == "bybit"
        expected = "upstream reconnected" if cause is None else TOPIC
        assert expected in gap["data"]["reason"]
    assert await resyncs(hub) == ({cause: 1.0} if cause else {})
    if cause:
        # Re-synchronised on the same socket: unsubscribe, then subscribe again.
        assert peer.unsubscribe_count(TOPIC) == 1 and peer.subscribe_count(TOPIC) == 2
        assert peer.connections_total["linear"] == connections


async def test_one_upstream_book_for_every_client_and_one_resync(hub: BybitHub,
                                                                 peer: BybitPeer) -> None:
    first = await book_client(hub, peer)
    ws = await hub.connect()
    reply = await subscribe(ws, "orderbook.50.BTCUSDT")  # the Bybit alias, same channel
    assert reply["args"] == [CHANNEL]
    second = BookClient(ws, peer.book(TOPIC))
    assert peer.subscribe_count(TOPIC) == 1
    peer.inject_u_gap()
    for client in (first, second):
        await client.read_until(lambda c: "gap" in c.types and c.deltas_since("snapshot") >= 10
                                and c.types.index("gap") < len(c.types) - 11)
    assert peer.subscribe_count(TOPIC) == 2 and peer.unsubscribe_count(TOPIC) == 1
    assert await resyncs(hub) == {"sequence": 1.0}


async def test_the_alias_through_the_mudrex_dialect_gets_native_book_frames(
    hub_factory: HubFactory, peer: BybitPeer
) -> None:
    """The 003 envelope has no book shape (no delta, no gap): a 003-dialect socket that asks
    for ``orderbook.50.BTCUSDT`` gets the book in native frames, gaps included."""
    hub = await hub_factory(server={"envelope": "mudrex"})
    ws = await hub.connect()
    reply = await subscribe(ws, "orderbook.50.BTCUSDT")
    assert reply["success"] is True and reply["args"] == [CHANNEL]
    assert reply["message"] == "Subscribed to 1 streams"
    client = BookClient(ws, peer.book(TOPIC))
    await client.read_until(lambda c: c.deltas_since("snapshot") >= 10)
    assert all(set(f) >= {"channel", "type", "epoch", "offset", "ts", "data"}
               for f in client.frames)
    peer.inject_crossed()
    await client.read_until(lambda c: "gap" in c.types and c.deltas_since("snapshot") >= 5
                            and c.types.index("gap") < len(c.types) - 6)


async def test_liquidations_arrive_with_the_exact_strings(hub: BybitHub, peer: BybitPeer,
                                                          ) -> None:
    frames = [f for f in load_fixture("linear") if f["topic"] == "allLiquidation.BTCUSDT"]
    expected = [({"symbol": i["s"], "side": i["S"], "price": i["p"], "size": i["v"],
                  "time": i["T"]}, f["ts"]) for f in frames for i in f["data"]]
    ws = await hub.connect()
    reply = await subscribe(ws, "allLiquidation.BTCUSDT", "liquidation:BTCUSDT@spot")
    assert reply["args"] == ["liquidation:BTCUSDT"]
    [refused] = reply["rejected"]
    assert refused["arg"] == "liquidation:BTCUSDT@spot"
    assert "Bybit has no liquidations on spot" in refused["reason"]
    got: list[tuple[dict[str, Any], bytes]] = []
    async with asyncio.timeout(TIMEOUT):
        while len(got) < len(expected):
            raw = await ws.recv(decode=False)
            got.append((orjson.loads(raw), raw))
    assert [(m["data"], m["ts"]) for m, _ in got] == expected
    assert {(m["channel"], m["type"], m["source"]) for m, _ in got} == {
        ("liquidation:BTCUSDT", "update", "bybit")}
    for msg, raw in got:
        for key, text in string_leaves(msg["data"]):
            assert orjson.dumps(key) + b":" + orjson.dumps(text) in raw
    assert peer.subscribe_count("allLiquidation.BTCUSDT", "spot") == 0
