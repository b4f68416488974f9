"""OKX order books end to end: OKX replay peer -> ExchangeSource(OKX) -> hub -> real /ws
clients. The client rebuilds each ``book:<depth>`` channel from the hub's frames and compares
it, after every frame, with the peer's book at the frame's ``venueSeq`` (OKX's ``seqId``),
cut at the depth, sizes in base units: equal at every step, through a lost update
(``prevSeqId`` break), a wrong checksum, a disconnect and a stall (``gap`` then ``snapshot``;
nothing in between, never a wrong book)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families
from tests.integration.bybit_hub.support import TIMEOUT, BybitHub, HubFactory, subscribe
from tests.peers.okx_books import OkxBookFeed
from tests.peers.okx_peer import OkxPeer
from websockets.asyncio.client import ClientConnection

from cryptowire.books import OrderBook

pytestmark = pytest.mark.integration
CT_VAL = {"BTC-USDT-SWAP": Decimal("0.01"), "BTC-USDT": None}
FAST_WATCHDOG = {"ping_interval_s": 0.2, "watchdog_s": 0.6}


@dataclass
class OkxBookClient:
    """A client's books of several channels, each checked against the venue after each frame."""

    ws: ClientConnection
    feeds: dict[str, tuple[OkxBookFeed, int, Decimal | None]]  # channel -> feed, depth, ctVal
    books: dict[str, OrderBook | None] = field(default_factory=dict)
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    checked: int = 0

    def types(self, channel: str) -> list[str]:
        return [f["type"] for f in self.frames.get(channel, [])]

    def after_last(self, channel: str, kind: str) -> list[str]:
        types = self.types(channel)
        if kind not in types:
            return []
        return types[len(types) - types[::-1].index(kind):]

    async def read_until(self, done: Callable[[OkxBookClient], bool],
                         timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not done(self):
                self.apply(orjson.loads(await self.ws.recv()))

    def apply(self, msg: dict[str, Any]) -> None:
        channel = msg.get("channel")
        if channel not in self.feeds:
            return
        frames = self.frames.setdefault(channel, [])
        if frames:
            assert msg["offset"] == frames[-1]["offset"] + 1, "offsets are contiguous"
        frames.append(msg)
        kind, data = msg["type"], msg["data"]
        assert msg["source"] == "okx"
        if kind == "gap":
            assert isinstance(data["reason"], str) and data["reason"]
            self.books[channel] = None
            return
        if kind == "snapshot":
            self.books[channel] = OrderBook()
            self.books[channel].snapshot(data["bids"], data["asks"])  # type: ignore[union-attr]
        else:
            assert kind == "delta", msg
            book = self.books.get(channel)
            assert book is not None, f"a delta with no snapshot before it: {msg}"
            book.apply(data["bids"], data["asks"])
        self.check(channel, data["venueSeq"])

    def check(self, channel: str, seq: int) -> None:
        feed, depth, ct = self.feeds[channel]
        book = self.books[channel]
        assert book is not None
        venue = feed.book_at(seq)
        for side in ("bids", "asks"):
            expected = [[p, z if ct is None else format(Decimal(z) * ct, "f")]
                        for p, z in venue[side][:depth]]
            assert book.levels(side) == expected, (channel, seq, side)
        self.checked += 1


async def resyncs(hub: BybitHub) -> dict[str, float]:
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        text = await resp.text()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "cryptowire_book_resyncs_total" and \
                    sample.labels.get("source") == "okx":
                out[sample.labels["reason"]] = out.get(sample.labels["reason"], 0) + sample.value
    return out


async def open_client(hub: BybitHub, peer: OkxPeer, channels: dict[str, tuple[str, int]]
                      ) -> OkxBookClient:
    ws = await hub.connect()
    reply = await subscribe(ws, *channels)
    assert reply["rejected"] is None, reply
    feeds = {ch: (peer.book(inst), depth, CT_VAL[inst]) for ch, (inst, depth) in channels.items()}
    return OkxBookClient(ws, feeds)


def synced(channel: str, deltas: int) -> Callable[[OkxBookClient], bool]:
    return lambda c: len(c.after_last(channel, "snapshot")) >= deltas


SWAP50, SWAP400, SPOT5 = "book:50:BTCUSDT@okx", "book:400:BTCUSDT@okx", "book:5:BTCUSDT@okx-spot"
CHANNELS = {SWAP50: ("BTC-USDT-SWAP", 50), SWAP400: ("BTC-USDT-SWAP", 400),
            SPOT5: ("BTC-USDT", 5)}


async def test_books_equal_the_venue_at_every_step(hub: BybitHub, peer: OkxPeer) -> None:
    client = await open_client(hub, peer, CHANNELS)
    await client.read_until(lambda c: all(len(c.after_last(ch, "snapshot")) >= 40
                                          for ch in (SWAP50, SWAP400)), TIMEOUT * 2)
    assert client.types(SWAP50)[0] == "snapshot" and "gap" not in client.types(SWAP50)
    assert client.checked > 80 and peer.subscribe_requests[("books", "BTC-USDT-SWAP")] == 1
    assert client.frames[SPOT5], "the spot book:5 got its snapshot (deltas when its top moves)"
    assert await resyncs(hub) == {}


@pytest.mark.parametrize("fault", ["sequence", "checksum"])
async def test_a_break_is_a_gap_then_a_fresh_snapshot(
        hub: BybitHub, peer: OkxPeer, fault: str) -> None:
    peer.checksum = fault == "checksum"
    client = await open_client(hub, peer, {SWAP50: CHANNELS[SWAP50], SWAP400: CHANNELS[SWAP400]})
    await client.read_until(synced(SWAP50, 5))
    (peer.inject_gap if fault == "sequence" else peer.inject_checksum)("BTC-USDT-SWAP")
    await client.read_until(lambda c: "gap" in c.types(SWAP400) and "gap" in c.types(SWAP50))
    await client.read_until(lambda c: synced(SWAP50, 5)(c) and synced(SWAP400, 5)(c)
                            and c.types(SWAP50).count("snapshot") == 2)
    for channel in (SWAP50, SWAP400):
        types = client.types(channel)
        gap = types.index("gap")
        assert types[gap + 1] == "snapshot", types  # nothing between the gap and the snapshot
        reason = client.frames[channel][gap]["data"]["reason"]
        assert ("prevSeqId" if fault == "sequence" else "checksum") in reason
    assert await resyncs(hub) == {fault: 1.0}
    assert peer.subscribe_requests[("books", "BTC-USDT-SWAP")] == 2


async def test_a_sequence_reset_is_no_break(hub: BybitHub, peer: OkxPeer) -> None:
    client = await open_client(hub, peer, {SWAP50: CHANNELS[SWAP50]})
    await client.read_until(synced(SWAP50, 3))
    peer.inject_reset("BTC-USDT-SWAP")
    await client.read_until(lambda c: c.frames[SWAP50][-1]["data"]["venueSeq"] < 1000)
    await client.read_until(synced(SWAP50, 10))
    assert "gap" not in client.types(SWAP50) and await resyncs(hub) == {}


async def test_disconnect_and_stall_are_gaps_then_snapshots(
        hub_factory: HubFactory, peer: OkxPeer) -> None:
    hub = await hub_factory(source=FAST_WATCHDOG)
    client = await open_client(hub, peer, {SWAP50: CHANNELS[SWAP50], SPOT5: CHANNELS[SPOT5]})
    await client.read_until(synced(SWAP50, 3))
    peer.drop()
    await client.read_until(lambda c: "gap" in c.types(SWAP50) and "gap" in c.types(SPOT5))
    await client.read_until(lambda c: c.types(SWAP50).count("snapshot") == 2
                            and synced(SWAP50, 3)(c))
    peer.stall()
    await client.read_until(lambda c: c.types(SWAP50).count("gap") == 2, TIMEOUT * 2)
    peer.stall(False)
    await client.read_until(lambda c: c.types(SWAP50).count("snapshot") == 3
                            and synced(SWAP50, 3)(c), TIMEOUT * 2)
    for channel in (SWAP50, SPOT5):
        # after a gap only gaps until the next snapshot (a stalled peer may also have
        # swallowed the snapshot of the new socket: then its first update is one more break)
        text = "".join({"gap": "g", "snapshot": "s", "delta": "d"}[t]
                       for t in client.types(channel))
        assert "gd" not in text, text
    reasons = [f["data"]["reason"] for f in client.frames[SWAP50] if f["type"] == "gap"]
    assert "upstream reconnected" in reasons[0] and "watchdog" in reasons[1], reasons
    assert client.checked > 10


async def test_a_service_upgrade_notice_replaces_the_socket(hub: BybitHub, peer: OkxPeer) -> None:
    client = await open_client(hub, peer, {SWAP50: CHANNELS[SWAP50]})
    await client.read_until(synced(SWAP50, 3))
    assert await peer.notice() == 1
    await client.read_until(lambda c: c.types(SWAP50).count("snapshot") == 2
                            and synced(SWAP50, 3)(c))
    gap = client.frames[SWAP50][client.types(SWAP50).index("gap")]
    assert "upstream notice" in gap["data"]["reason"] and "64008" in gap["data"]["reason"]
    assert peer.connections_total["public"] == 2
