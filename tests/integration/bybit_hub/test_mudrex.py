"""The seed 003 (Mudrex proxy) dialect on /ws, with ``server.envelope = "mudrex"``.

The client is written exactly as the 003 README's example (``websockets.connect``, one
subscribe, ``async for message in ws``); the replies and data frames are compared with the
shapes the 003 README documents.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

import pytest
import websockets
from tests.integration.bybit_hub.support import (
    TIMEOUT,
    BybitHub,
    HubFactory,
    call,
    expected_stream,
    recv_json,
    subscribe,
)
from tests.peers.bybit_peer import BybitPeer

from cryptowire.settings import load_settings

pytestmark = pytest.mark.integration

WILDCARD_REASON = ("Wildcards (e.g. tickers.*) are not supported. Use specific symbols like "
                   "tickers.BTCUSDT or ticker:ETHUSDT.")
ENVELOPE_KEYS = {"stream", "type", "data", "timestamp", "source"}


@pytest.fixture
async def mudrex_hub(hub_factory: HubFactory) -> BybitHub:
    return await hub_factory(server={"envelope": "mudrex"})


async def test_a_client_written_like_the_003_readme(mudrex_hub: BybitHub, peer: BybitPeer,
                                                    ) -> None:
    expected = {sym: dict(expected_stream(peer, "linear", f"tickers.{sym}"))
                for sym in ("BTCUSDT", "ETHUSDT")}
    received: list[dict[str, Any]] = []

    async def main() -> None:  # the 003 README's client, verbatim but for the URL and the end
        async with websockets.connect(mudrex_hub.ws_url) as ws:
            await ws.send(json.dumps({
                "op": "subscribe",
                "args": ["ticker:BTCUSDT", "ticker:ETHUSDT"]
            }))
            async for message in ws:
                received.append(json.loads(message))
                if len(received) > 40:
                    break

    await asyncio.wait_for(main(), TIMEOUT * 2)
    reply, data = received[0], received[1:]
    assert reply == {
        "op": "subscribe", "success": True, "args": ["ticker:BTCUSDT", "ticker:ETHUSDT"],
        "message": "Subscribed to 2 streams", "rejected": None,
        "positions": reply["positions"],  # cryptowire's addition, for recovery
    }
    streams = set()
    for msg in data:
        assert set(msg) == ENVELOPE_KEYS, msg
        assert msg["type"] in ("snapshot", "update") and msg["source"] == "mudrex"
        symbol = msg["stream"].removeprefix("mudrex.futures.ticker.")
        assert msg["stream"] == f"mudrex.futures.ticker.{symbol}"
        streams.add(symbol)
        # The full merged ticker of the frame whose ts is the timestamp (never a partial
        # delta with a made-up "0" price, the seed 003 bug).
        assert msg["data"] == expected[symbol][msg["timestamp"]]
        assert msg["data"]["price"] not in (None, "0")
        assert set(msg["data"]) >= {"symbol", "price", "markPrice", "high24h", "low24h",
                                    "volume24h", "change24hPercent", "bid", "ask",
                                    "fundingRate"}
    assert streams == {"BTCUSDT", "ETHUSDT"}


async def test_aliases_klines_and_trades_in_the_003_envelope(mudrex_hub: BybitHub,
                                                             peer: BybitPeer) -> None:
    ws = await mudrex_hub.connect()
    reply = await subscribe(ws, "tickers.ETHUSDT", "kline:1h:BTCUSDT", "trade:BTCUSDT")
    assert reply["success"] is True and reply["rejected"] is None
    assert reply["message"] == "Subscribed to 3 streams"
    assert sorted(reply["args"]) == ["kline:1h:BTCUSDT", "ticker:ETHUSDT", "trade:BTCUSDT"]
    eth = dict(expected_stream(peer, "linear", "tickers.ETHUSDT"))
    seen: dict[str, dict[str, Any]] = {}
    async with asyncio.timeout(TIMEOUT):
        while len(seen) < 3:
            msg = await recv_json(ws)
            assert set(msg) == ENVELOPE_KEYS
            seen.setdefault(msg["stream"], msg)
    assert set(seen) == {"mudrex.futures.ticker.ETHUSDT", "mudrex.futures.kline.60.BTCUSDT",
                         "mudrex.futures.trade.BTCUSDT"}
    ticker = seen["mudrex.futures.ticker.ETHUSDT"]
    assert ticker["data"] == eth[ticker["timestamp"]]
    assert seen["mudrex.futures.kline.60.BTCUSDT"]["data"]["interval"] == "1h"  # as asked
    trades = seen["mudrex.futures.trade.BTCUSDT"]["data"]
    assert isinstance(trades, list) and trades[0]["symbol"] == "BTCUSDT"

    unsub = await call(ws, {"op": "unsubscribe", "args": ["tickers.ETHUSDT"]})
    assert unsub["op"] == "unsubscribe" and unsub["success"] is True
    assert unsub["args"] == ["ticker:ETHUSDT"]

    # An upstream reconnect: a 003 client knows only snapshot/update, so it gets no gap
    # frame, but the fresh snapshot after the reconnect, in the same envelope.
    peer.drop()
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = await recv_json(ws)
            assert msg["type"] in ("snapshot", "update")
            # after the first frames, a snapshot only comes with the re-subscribe
            if msg["type"] == "snapshot":
                assert set(msg) == ENVELOPE_KEYS
                assert msg["stream"] in ("mudrex.futures.kline.60.BTCUSDT",
                                         "mudrex.futures.trade.BTCUSDT")
                break


async def test_the_exact_003_replies(mudrex_hub: BybitHub) -> None:
    ws = await mudrex_hub.connect()
    before = int(time.time() * 1000)
    pong = await call(ws, {"op": "ping"})
    assert set(pong) == {"op", "timestamp"} and pong["op"] == "pong"
    assert before <= pong["timestamp"] <= int(time.time() * 1000)

    error = await call(ws, "{not json")
    assert set(error) == {"op", "code", "message"}
    assert error["op"] == "error" and error["code"] == "INVALID_JSON"

    reply = await subscribe(ws, "tickers.*", "ticker:BTCUSDT")
    assert reply["success"] is True
    assert reply["args"] == ["ticker:BTCUSDT"]
    assert reply["message"] == "Subscribed to 1 streams"
    assert reply["rejected"] == [{"arg": "tickers.*", "reason": WILDCARD_REASON}]

    only_bad = await subscribe(await mudrex_hub.connect(), "tickers.*")
    assert only_bad["success"] is False and only_bad["args"] == []
    assert only_bad["rejected"] == [{"arg": "tickers.*", "reason": WILDCARD_REASON}]


async def test_the_003_limits(mudrex_hub: BybitHub) -> None:
    ws = await mudrex_hub.connect()
    # 100 subscriptions per client (app channels: no upstream needed to count them).
    reply = await subscribe(ws, *(f"app:c{i}" for i in range(101)))
    assert len(reply["args"]) == 100
    assert reply["rejected"] == [{
        "arg": "app:c100",
        "reason": "Subscription limit reached: at most 100 channels per connection.",
    }]
    # 100 client messages per second: a burst of 150 gets ~100 answers, the rest refused.
    other = await mudrex_hub.connect()
    for _ in range(150):
        await other.send('{"op":"ping"}')
    pongs = errors = 0
    async with asyncio.timeout(TIMEOUT):
        while pongs + errors < 150:
            msg = await recv_json(other)
            if msg["op"] == "pong":
                pongs += 1
            else:
                assert msg["code"] == "RATE_LIMIT_EXCEEDED"
                errors += 1
    assert 100 <= pongs < 150 and errors > 0
    assert (await call(ws, {"op": "ping"}))["op"] == "pong"


def test_the_003_limits_are_the_default_settings(tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no ./cryptowire.toml
    for name in list(os.environ):
        if name.startswith("CRYPTOWIRE_"):
            monkeypatch.delenv(name)
    settings = load_settings(None)
    assert settings.server.max_subscriptions == 100  # MAX_SUBSCRIPTIONS_PER_CLIENT
    assert settings.server.max_connections == 10_000  # MAX_CLIENTS_TOTAL
    assert settings.server.max_inbound_rate == 100  # MAX_MESSAGE_RATE_PER_CLIENT
    assert settings.server.envelope == "native"  # the 003 envelope is opt-in
    assert settings.bybit.linear_url == "wss://stream.bybit.com/v5/public/linear"
    assert settings.bybit.spot_url == "wss://stream.bybit.com/v5/public/spot"
