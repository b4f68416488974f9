"""The OKX replay peer over real sockets, read with the OKX codec: acks, errors, text
ping/pong, REST instruments, every recorded push, and ``books`` rebuilt by
:class:`~cryptowire.sources.venues.okx.book.OkxBook` equal to the peer's book at every
``seqId``, through each fault (lost update, wrong checksum, sequence reset, disconnect, stall).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
from tests.peers.okx_peer import OkxPeer, key_of
from tests.waiting import eventually

from cryptowire.sources.exchange.codec import BookBreak
from cryptowire.sources.venues.okx.book import OkxBook
from cryptowire.sources.venues.okx.instruments import Instrument, parse_instruments
from cryptowire.sources.venues.okx.protocol import (
    Ack,
    ErrorReply,
    Pong,
    Push,
    channel_args,
    parse_frame,
    request,
)

pytestmark = pytest.mark.integration
SWAP = Instrument("BTCUSDT", "BTC-USDT-SWAP", "okx", "live", Decimal("0.01"))
SPOT = Instrument("BTCUSDT", "BTC-USDT", "okx-spot", "live")


@pytest.fixture
async def peer() -> AsyncIterator[OkxPeer]:
    async with OkxPeer(interval_s=0.005) as server:
        yield server


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


class Reader:
    """Frames of one socket, classified by the codec."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.frames: list[Any] = []
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        async for msg in self.ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                self.frames.append(parse_frame(msg.data))

    def pushes(self, channel: str) -> list[Push]:
        return [f for f in self.frames if isinstance(f, Push) and f.channel == channel]


async def open_reader(session: aiohttp.ClientSession, url: str) -> Reader:
    return Reader(await session.ws_connect(url, autoping=True))


async def test_acks_errors_and_text_ping(peer: OkxPeer, session: aiohttp.ClientSession) -> None:
    reader = await open_reader(session, peer.ws_url("public"))
    args = channel_args("ticker", "okx", "BTC-USDT-SWAP") + [
        {"channel": "tickers", "instId": "BTC-USDT-SWAPP"}]
    await reader.ws.send_str(request("subscribe", args, "7"))
    await reader.ws.send_str("ping")
    await eventually(lambda: any(isinstance(f, Pong) for f in reader.frames))
    await eventually(lambda: len([f for f in reader.frames if isinstance(f, Ack)]) == 3)
    errors = [f for f in reader.frames if isinstance(f, ErrorReply)]
    assert len(errors) == 1 and errors[0].code == "60018" and errors[0].req_id == "7"
    assert "BTC-USDT-SWAPP" in errors[0].msg and peer.pings == 1
    # candles are refused on /public, served on /business
    await reader.ws.send_str(request("subscribe", channel_args("kline", "okx", "BTC-USDT-SWAP",
                                                                 "1m")))
    await eventually(lambda: len([f for f in reader.frames if isinstance(f, ErrorReply)]) == 2)
    await reader.ws.send_str(request("unsubscribe", args[:1], "8"))
    await eventually(lambda: any(isinstance(f, Ack) and f.op == "unsubscribe"
                                 for f in reader.frames))
    assert key_of(args[0]) not in peer.subscribed()[0]
    await reader.ws.close()


@pytest.mark.parametrize(("path", "channel", "inst"), [
    ("public", "tickers", "BTC-USDT-SWAP"), ("public", "trades", "BTC-USDT"),
    ("public", "funding-rate", "BTC-USDT-SWAP"), ("public", "mark-price", "BTC-USDT-SWAP"),
    ("business", "candle1m", "BTC-USDT-SWAP"), ("business", "candle1m", "BTC-USDT")])
async def test_recorded_pushes_loop_with_ts_moved_on(
        peer: OkxPeer, session: aiohttp.ClientSession, path: str, channel: str, inst: str,
) -> None:
    reader = await open_reader(session, peer.ws_url(path))
    await reader.ws.send_str(request("subscribe", [{"channel": channel, "instId": inst}]))
    frames = peer.frames_for((channel, inst))
    await eventually(lambda: len(reader.pushes(channel)) >= 2 * len(frames))
    got = reader.pushes(channel)
    span = peer.round_span_ms((channel, inst))
    for index, push in enumerate(got[:2 * len(frames)]):
        src = frames[index % len(frames)]
        shift = span * (index // len(frames))
        assert push.arg == src["arg"]
        for item, orig in zip(push.data, src["data"], strict=True):
            if isinstance(orig, list):
                assert item == [str(int(orig[0]) + shift), *orig[1:]]
            else:
                assert {**item, "ts": orig["ts"]} == orig
                assert int(item["ts"]) == int(orig["ts"]) + shift
    await reader.ws.close()


async def test_rest_instruments_and_book(peer: OkxPeer, session: aiohttp.ClientSession) -> None:
    async with session.get(f"{peer.rest_url}/api/v5/public/instruments",
                           params={"instType": "SWAP"}) as resp:
        swaps = parse_instruments("okx", await resp.json())
    assert swaps.get("BTCUSDT") == SWAP
    peer.set_state("ETH-USDT-SWAP", "suspend")
    async with session.get(f"{peer.rest_url}/api/v5/public/instruments",
                           params={"instType": "SWAP"}) as resp:
        assert parse_instruments("okx", await resp.json()).refusal("ETHUSDT") is not None
    peer.fail_instruments()
    async with session.get(f"{peer.rest_url}/api/v5/public/instruments",
                           params={"instType": "SPOT"}) as resp:
        assert resp.status == 503
    async with session.get(f"{peer.rest_url}/api/v5/market/books",
                           params={"instId": "BTC-USDT"}) as resp:
        body = await resp.json()
    assert body["data"][0]["seqId"] == peer.book("BTC-USDT").seq
    assert len(body["data"][0]["bids"]) == 400 and peer.instrument_requests == 3


def check_book(reader: Reader, peer: OkxPeer, inst: Instrument, depth: int = 400
               ) -> list[str]:
    """Rebuild every ``book:<depth>`` publication as a client would and compare it with the
    peer's book at the same ``seqId``; the publication types (and break causes) seen."""
    book, client, seen = OkxBook(inst, (depth,)), None, []
    feed = peer.book(inst.inst_id)
    for push in reader.pushes("books"):
        result = book.apply(push)
        if isinstance(result, BookBreak):
            seen.append(f"break:{result.cause}")
            client = None
            continue
        if result is None or depth not in result:
            continue
        change = result[depth]
        seen.append(change.type)
        if change.type == "snapshot":
            client = {s: {p: z for p, z in change.data[s]} for s in ("bids", "asks")}
        else:
            assert client is not None
            for side in ("bids", "asks"):
                for price, size in change.data[side]:
                    if Decimal(size) == 0:
                        client[side].pop(price, None)
                    else:
                        client[side][price] = size
        assert client is not None
        venue = feed.book_at(change.data["venueSeq"])
        for side in ("bids", "asks"):
            expected = [[p, inst.base_size(z)] for p, z in venue[side][:depth]]
            rebuilt = sorted(client[side].items(), key=lambda kv: Decimal(kv[0]),
                             reverse=side == "bids")
            assert [list(kv) for kv in rebuilt] == expected
    return seen


async def resubscribe_books(reader: Reader, inst_id: str) -> None:
    args = [{"channel": "books", "instId": inst_id}]
    await reader.ws.send_str(request("unsubscribe", args))
    await reader.ws.send_str(request("subscribe", args))


@pytest.mark.parametrize("inst", [SWAP, SPOT], ids=["swap", "spot"])
async def test_books_equal_the_venue_at_every_step_through_faults(
        session: aiohttp.ClientSession, inst: Instrument) -> None:
    async with OkxPeer(interval_s=0.005, checksum=True) as peer:
        reader = await open_reader(session, peer.ws_url())
        await resubscribe_books(reader, inst.inst_id)
        feed = peer.book(inst.inst_id)
        await eventually(lambda: feed.sent >= 40)  # past the end of the fixture: it loops
        peer.inject_reset(inst.inst_id)
        await eventually(lambda: feed.seq < 1000 and feed.sent >= 45)
        peer.inject_checksum(inst.inst_id)
        await eventually(lambda: "break:checksum" in check_book(reader, peer, inst))
        await resubscribe_books(reader, inst.inst_id)
        await eventually(lambda: check_book(reader, peer, inst).count("snapshot") == 2)
        peer.inject_gap(inst.inst_id)
        await eventually(lambda: "break:sequence" in check_book(reader, peer, inst))
        await resubscribe_books(reader, inst.inst_id)
        await eventually(lambda: check_book(reader, peer, inst).count("snapshot") == 3)
        seen = check_book(reader, peer, inst)
        assert seen.count("delta") > 40 and peer.subscribe_requests[("books", inst.inst_id)] == 3
        await reader.ws.close()


async def test_stall_and_disconnect(peer: OkxPeer, session: aiohttp.ClientSession) -> None:
    reader = await open_reader(session, peer.ws_url())
    await reader.ws.send_str(request("subscribe", [{"channel": "books", "instId": "BTC-USDT"}]))
    await eventually(lambda: len(reader.pushes("books")) >= 5)
    peer.stall()
    count, seq = len(reader.pushes("books")), peer.book("BTC-USDT").seq
    await reader.ws.send_str("ping")
    await eventually(lambda: peer.pings == 1)
    assert len(reader.pushes("books")) <= count + 1 and peer.book("BTC-USDT").seq <= seq + 1
    assert not any(isinstance(f, Pong) for f in reader.frames)  # no pong while stalled
    peer.stall(False)
    await eventually(lambda: len(reader.pushes("books")) >= count + 5)
    peer.drop()
    await eventually(lambda: reader.task.done() and not peer.connections)
    reader2 = await open_reader(session, peer.ws_url())
    await reader2.ws.send_str(request("subscribe", [{"channel": "books", "instId": "BTC-USDT"}]))
    await eventually(lambda: len(reader2.pushes("books")) >= 3)
    assert reader2.pushes("books")[0].action == "snapshot"
    assert check_book(reader2, peer, SPOT)[0] == "snapshot"
    assert peer.connections_total["public"] == 2
    assert peer.subscribed() == [{("books", "BTC-USDT")}]
    await reader2.ws.close()


async def test_liquidation_orders_by_inst_type(peer: OkxPeer,
                                               session: aiohttp.ClientSession) -> None:
    reader = await open_reader(session, peer.ws_url())
    arg = {"channel": "liquidation-orders", "instType": "SWAP"}
    await reader.ws.send_str(request("subscribe", [arg, {**arg, "instType": "SPOT"}], "9"))
    await eventually(lambda: len(reader.pushes("liquidation-orders")) >= 4)
    errors = [f for f in reader.frames if isinstance(f, ErrorReply)]
    assert len(errors) == 1 and errors[0].req_id == "9"  # no liquidation stream of SPOT
    inst_ids = [p.data[0]["instId"] for p in reader.pushes("liquidation-orders")[:4]]
    assert inst_ids == ["BTC-USDT-SWAP", "ETH-USDT-SWAP"] * 2
    second = reader.pushes("liquidation-orders")[2].data[0]["details"][0]
    first = peer.frames_for(("liquidation-orders", "SWAP"))[0]["data"][0]["details"][0]
    span = peer.round_span_ms(("liquidation-orders", "SWAP"))
    assert int(second["ts"]) == int(first["ts"]) + span and span > 0
    await reader.ws.close()
