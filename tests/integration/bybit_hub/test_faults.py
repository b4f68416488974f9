"""Upstream faults, end to end: replay peer -> BybitSource -> hub -> real /ws clients."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import orjson
import pytest
from tests.integration.bybit_hub.support import (
    TIMEOUT,
    BybitHub,
    HubFactory,
    call,
    expected_stream,
    recv_json,
    subscribe,
    wait_for,
)
from tests.peers.bybit_peer import BybitPeer
from websockets.asyncio.client import ClientConnection
from websockets.protocol import State

pytestmark = pytest.mark.integration


async def first_data(ws: ClientConnection, channel: str) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = await recv_json(ws)
            if msg.get("channel") == channel and msg["type"] != "gap":
                return msg  # type: ignore[no-any-return]


async def gap_then_fresh(ws: ClientConnection, channels: list[str], timeout: float,
                         ) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Read until every channel got a ``gap`` frame and then a data frame; ``{channel:
    (gap, first data after it)}``. Data of a channel before its gap is skipped."""
    gaps: dict[str, dict[str, Any]] = {}
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    async with asyncio.timeout(timeout):
        while len(out) < len(channels):
            msg = await recv_json(ws, timeout)
            channel = msg.get("channel")
            if channel not in channels or channel in out:
                continue
            if msg["type"] == "gap":
                gaps[channel] = msg
            elif channel in gaps:
                out[channel] = (gaps[channel], msg)
    return out


async def assert_alive(ws: ClientConnection) -> None:
    assert ws.state is State.OPEN
    pong = await call(ws, {"op": "ping"})
    assert pong["op"] == "pong"


async def test_upstream_killed_reconnects_restores_topics_and_marks_the_gap(
    hub: BybitHub, peer: BybitPeer
) -> None:
    plans = {
        "a": ["ticker:BTCUSDT", "trade:BTCUSDT"],
        "b": ["ticker:BTCUSDT", "ticker:ETHUSDT@spot"],
        "c": ["kline:1m:BTCUSDT"],
    }
    clients: dict[str, ClientConnection] = {}
    for name, channels in plans.items():
        clients[name] = await hub.connect()
        reply = await subscribe(clients[name], *channels)
        assert reply["rejected"] is None
        for channel in channels:
            await first_data(clients[name], channel)
    topics = {("linear", "tickers.BTCUSDT"), ("linear", "publicTrade.BTCUSDT"),
              ("spot", "tickers.ETHUSDT"), ("linear", "kline.1.BTCUSDT")}
    assert all(peer.subscribe_requests[t] == 1 for t in topics)
    before = dict(peer.connections_total)

    peer.drop()  # TCP reset mid-stream, no close frame
    dropped_at = time.monotonic()
    results = await asyncio.gather(*(
        gap_then_fresh(clients[name], channels, TIMEOUT) for name, channels in plans.items()
    ))
    elapsed = time.monotonic() - dropped_at
    assert elapsed < TIMEOUT

    for channels, seen in zip(plans.values(), results, strict=True):
        for channel in channels:
            gap, fresh = seen[channel]
            assert gap["type"] == "gap" and gap["source"] == "bybit"
            assert "upstream reconnected" in gap["data"]["reason"]
            assert isinstance(gap["data"]["since"], int)
            # Fresh data: the first frame of the re-subscribed topic, a snapshot (an update
            # for trades: event channels never carry "snapshot").
            assert fresh["type"] == ("update" if channel.startswith("trade:") else "snapshot")
            assert gap["offset"] < fresh["offset"]
    ticker = results[0]["ticker:BTCUSDT"][1]
    assert (ticker["ts"], ticker["data"]) == expected_stream(peer, "linear",
                                                             "tickers.BTCUSDT")[0]
    # Topics restored: one new socket per category, every topic subscribed on it once more.
    assert peer.connections_total["linear"] == before["linear"] + 1
    assert peer.connections_total["spot"] == before["spot"] + 1
    assert all(peer.subscribe_requests[t] == 2 for t in topics)
    assert peer.subscribed("linear") == [{"tickers.BTCUSDT", "publicTrade.BTCUSDT",
                                          "kline.1.BTCUSDT"}]
    assert peer.subscribed("spot") == [{"tickers.ETHUSDT"}]
    # No client was disconnected.
    for ws in clients.values():
        await assert_alive(ws)
    stats = await hub.stats()
    assert stats["connections"] == 3
    assert stats["sources"]["bybit"]["reconnects"] == 2  # one per category
    assert stats["sources"]["bybit"]["state"] == "up"


async def test_repeated_drops_each_reconnect_within_the_contract(hub: BybitHub,
                                                                  peer: BybitPeer) -> None:
    ws = await hub.connect()
    await subscribe(ws, "ticker:BTCUSDT")
    await first_data(ws, "ticker:BTCUSDT")
    for round_ in range(1, 4):
        peer.drop()
        dropped_at = time.monotonic()
        seen = await gap_then_fresh(ws, ["ticker:BTCUSDT"], TIMEOUT)
        assert time.monotonic() - dropped_at < TIMEOUT
        assert seen["ticker:BTCUSDT"][1]["type"] == "snapshot"
        assert peer.subscribe_count("tickers.BTCUSDT") == round_ + 1
    await assert_alive(ws)


async def test_many_topics_are_restored_in_requests_of_at_most_ten(hub: BybitHub,
                                                                     peer: BybitPeer) -> None:
    intervals = ["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "12h", "1d", "1w", "1M"]
    channels = ["ticker:BTCUSDT", *(f"kline:{i}:BTCUSDT" for i in intervals)]
    ws = await hub.connect()
    reply = await subscribe(ws, *channels)
    assert sorted(reply["args"]) == sorted(channels)
    await wait_for(lambda: [len(t) for t in peer.subscribed("linear")] == [len(channels)],
                   "every topic at the peer")
    peer.drop()
    seen = await gap_then_fresh(ws, channels, TIMEOUT)
    assert set(seen) == set(channels)
    for channel in channels[1:]:  # every kline delivered with the interval asked for
        assert seen[channel][1]["data"]["interval"] == channel.split(":")[1]
    [conn] = [c for c in peer.connections if c.category == "linear"]
    requests = [r for r in conn.received if r.get("op") == "subscribe"]
    assert all(len(r["args"]) <= 10 for r in requests)
    assert len(requests) == 2  # 14 topics: 10 + 4
    assert len({t for r in requests for t in r["args"]}) == len(channels)


async def test_silent_upstream_is_replaced_by_the_watchdog(
    hub_factory: HubFactory, peer: BybitPeer
) -> None:
    hub = await hub_factory(source={"ping_interval_s": 0.2, "watchdog_s": 0.6})
    ws = await hub.connect()
    await subscribe(ws, "ticker:BTCUSDT")
    await first_data(ws, "ticker:BTCUSDT")
    assert peer.connections_total["linear"] == 1
    await wait_for(lambda: peer.pings >= 1, "a ping (every 0.2 s while healthy)")

    peer.stall(True)  # the socket stays open; nothing comes, pongs included
    took = await wait_for(lambda: peer.connections_total["linear"] >= 2,
                          "the watchdog to replace the silent socket")
    assert took < TIMEOUT
    stats = await hub.stats()
    assert stats["sources"]["bybit"]["reconnects"] >= 1
    assert "watchdog" in (stats["sources"]["bybit"]["linear"]["last_error"] or "")

    peer.stall(False)
    seen = await gap_then_fresh(ws, ["ticker:BTCUSDT"], TIMEOUT)
    gap, fresh = seen["ticker:BTCUSDT"]
    assert "watchdog" in gap["data"]["reason"]
    assert fresh["type"] == "snapshot"
    await wait_for(lambda: peer.subscribed("linear") == [{"tickers.BTCUSDT"}],
                   "the topic on the new socket only")
    await assert_alive(ws)


async def test_a_topic_the_upstream_rejects_is_that_clients_rejection_only(
    hub: BybitHub, peer: BybitPeer
) -> None:
    peer.reject_topic("tickers.ETHUSDT")
    other = await hub.connect()
    await subscribe(other, "ticker:BTCUSDT")
    await first_data(other, "ticker:BTCUSDT")

    asking = await hub.connect()
    reply = await subscribe(asking, "ticker:ETHUSDT", "trade:ETHUSDT")
    assert reply["success"] is True
    assert reply["args"] == ["trade:ETHUSDT"]
    assert len(reply["rejected"]) == 1
    rejected = reply["rejected"][0]
    assert rejected["arg"] == "ticker:ETHUSDT"
    assert "refused topic 'tickers.ETHUSDT'" in rejected["reason"]
    assert "handler not found" in rejected["reason"]  # Bybit's own words, passed on

    # The client's other topic and the other client's topic flow on; nobody is closed.
    await first_data(asking, "trade:ETHUSDT")
    before = (await first_data(other, "ticker:BTCUSDT"))["offset"]
    after = await first_data(other, "ticker:BTCUSDT")
    assert after["offset"] > before
    await assert_alive(asking)
    stats = await hub.stats()
    assert stats["sources"]["bybit"]["linear"]["rejections"] == 1
    assert stats["sources"]["bybit"]["reconnects"] == 0
    assert "ticker:ETHUSDT" not in stats["upstream_topics"]
    # Asking again is refused again (nothing half-subscribed was left behind).
    again = await subscribe(await hub.connect(), "ticker:ETHUSDT")
    assert again["args"] == [] and again["rejected"][0]["arg"] == "ticker:ETHUSDT"


async def test_a_malformed_upstream_frame_is_counted_and_the_stream_goes_on(
    hub: BybitHub, peer: BybitPeer
) -> None:
    ws = await hub.connect()
    await subscribe(ws, "ticker:BTCUSDT")
    await first_data(ws, "ticker:BTCUSDT")
    bad = [
        "this is not json",
        '{"topic":"tickers.BTCUSDT","type":"delta","ts":"soon","data":{}}',
        # A float where Bybit sends a decimal string: refused, never turned into a string.
        '{"topic":"tickers.BTCUSDT","type":"delta","ts":1,"data":{"lastPrice":1.5}}',
        '{"topic":"tickers.BTCUSDT","type":"delta","ts":2,"data":{"symbol":"ETHUSDT"}}',
        "[1, 2]",
    ]
    for text in bad:
        assert await peer.send_raw(text, "linear") == 1

    async def errors() -> int:
        return int((await hub.stats())["sources"]["bybit"]["errors"])

    deadline = time.monotonic() + TIMEOUT
    while await errors() < len(bad):
        assert time.monotonic() < deadline, "the bad frames were not counted"
        await asyncio.sleep(0.02)
    assert await errors() == len(bad)

    # The stream goes on, still exact: the next messages are frames of the replay.
    expected = dict(expected_stream(peer, "linear", "tickers.BTCUSDT"))
    for _ in range(10):
        msg = await first_data(ws, "ticker:BTCUSDT")
        assert msg["ts"] not in (1, 2)
        assert msg["data"] == expected[msg["ts"]]
    stats = await hub.stats()
    assert stats["sources"]["bybit"]["reconnects"] == 0
    assert stats["sources"]["bybit"]["state"] == "up"
    await assert_alive(ws)


async def test_unknown_symbols_are_rejected_with_a_reason(hub: BybitHub, peer: BybitPeer,
                                                          ) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "ticker:NOPEUSDT", "kline:1h:NOPEUSDT@spot", "ticker:BTCUSDT")
    assert reply["args"] == ["ticker:BTCUSDT"]
    reasons = {r["arg"]: r["reason"] for r in reply["rejected"]}
    assert set(reasons) == {"ticker:NOPEUSDT", "kline:1h:NOPEUSDT@spot"}
    assert reasons["ticker:NOPEUSDT"].startswith("Unknown symbol 'NOPEUSDT' on Bybit linear")
    assert reasons["kline:1h:NOPEUSDT@spot"].startswith("Unknown symbol 'NOPEUSDT' on Bybit spot")
    # Refused from the instruments list: nothing went upstream for it.
    assert peer.subscribe_count("tickers.NOPEUSDT") == 0
    assert peer.subscribe_count("kline.60.NOPEUSDT", "spot") == 0
    assert peer.instrument_requests >= 2


async def test_unknown_symbol_without_instruments_list_gets_bybits_refusal(
    hub_factory: HubFactory, peer: BybitPeer
) -> None:
    peer.fail_instruments(True)
    hub = await hub_factory()
    ws = await hub.connect()
    reply = await subscribe(ws, "ticker:NOPEUSDT", "ticker:BTCUSDT")
    assert reply["args"] == ["ticker:BTCUSDT"]
    [rejected] = reply["rejected"]
    assert rejected["arg"] == "ticker:NOPEUSDT"
    assert "handler not found,topic:tickers.NOPEUSDT" in rejected["reason"]
    await first_data(ws, "ticker:BTCUSDT")
    stats = await hub.stats()
    assert stats["sources"]["bybit"]["instruments"]["linear"]["error"]
    assert orjson.dumps(stats)  # the error text is JSON-safe
