"""Fidelity: every field of every message a /ws client receives equals the replayed frames.

The hub runs as ``cryptowire serve`` builds it (BybitSource alone, ``demo.mode = "off"``)
against the replay peer; one native client subscribes to tickers, trades and klines on both
categories and reads about two replay rounds. The expectation is computed here from the
frames the peer sends (an independent merge, not the source's ``TickerBook``): zero
mismatches, decimal strings byte-identical in the raw frame, ``ts`` the frame's ``ts``,
the kline interval the one asked for, trades one list per upstream frame.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from tests.integration.bybit_hub.support import (
    TIMEOUT,
    BybitHub,
    expected_stream,
    recv_json,
    string_leaves,
    subscribe,
)
from tests.peers.bybit_peer import BybitPeer

#: channel -> (category, Bybit topic, canonical kline interval or None)
CHANNELS: dict[str, tuple[str, str, str | None]] = {
    "ticker:BTCUSDT": ("linear", "tickers.BTCUSDT", None),
    "ticker:ETHUSDT": ("linear", "tickers.ETHUSDT", None),
    "trade:BTCUSDT": ("linear", "publicTrade.BTCUSDT", None),
    "trade:ETHUSDT": ("linear", "publicTrade.ETHUSDT", None),
    "kline:1m:BTCUSDT": ("linear", "kline.1.BTCUSDT", "1m"),
    "kline:5m:BTCUSDT": ("linear", "kline.5.BTCUSDT", "5m"),
    "kline:1h:ETHUSDT": ("linear", "kline.60.ETHUSDT", "1h"),
    # No recording of kline.60.BTCUSDT: the peer re-labels BTCUSDT candles as 1h ones.
    "kline:1h:BTCUSDT": ("linear", "kline.60.BTCUSDT", "1h"),
    "ticker:BTCUSDT@spot": ("spot", "tickers.BTCUSDT", None),
    "ticker:ETHUSDT@spot": ("spot", "tickers.ETHUSDT", None),
    "trade:BTCUSDT@spot": ("spot", "publicTrade.BTCUSDT", None),
    "kline:1m:BTCUSDT@spot": ("spot", "kline.1.BTCUSDT", "1m"),
    "kline:1h:ETHUSDT@spot": ("spot", "kline.60.ETHUSDT", "1h"),
}
ROUNDS = 2

pytestmark = pytest.mark.integration


async def test_every_field_of_every_message_equals_the_merged_frames(
    hub: BybitHub, peer: BybitPeer
) -> None:
    expected = {ch: expected_stream(peer, *spec) for ch, spec in CHANNELS.items()}
    one_round = {ch: len(seq) // 20 for ch, seq in expected.items()}
    ws = await hub.connect()
    reply = await subscribe(ws, *CHANNELS)
    assert reply["rejected"] is None, reply
    assert sorted(reply["args"]) == sorted(CHANNELS)

    got: dict[str, list[tuple[dict[str, Any], bytes]]] = {ch: [] for ch in CHANNELS}
    async with asyncio.timeout(TIMEOUT * 3):
        while any(len(got[ch]) < ROUNDS * one_round[ch] for ch in CHANNELS):
            raw = await ws.recv(decode=False)
            msg = orjson.loads(raw)
            assert "channel" in msg, msg  # nothing but data after the reply
            got[msg["channel"]].append((msg, raw))

    mismatches: list[str] = []
    checked = 0
    for channel, messages in got.items():
        seq = expected[channel]
        first, _ = messages[0]
        # The first message is the topic's first frame (for a ticker or kline a fresh
        # snapshot; a trade is an event, never a snapshot: PROTOCOLS.md 4.2): the hub holds
        # the channel from before it asks the source, so even a frame read together with the
        # subscribe ack reaches the first subscriber (see the test below).
        start = 0
        if (first["ts"], first["data"]) != seq[0]:
            mismatches.append(f"{channel}: first message {first} is not the first frame")
            continue
        if first["type"] != ("update" if channel.startswith("trade:") else "snapshot"):
            mismatches.append(f"{channel}: first message is a {first['type']}")
        for i, (msg, raw) in enumerate(messages):
            ts, data = seq[start + i]
            checked += 1
            if msg["ts"] != ts:
                mismatches.append(f"{channel}[{i}]: ts {msg['ts']} != frame ts {ts}")
            if msg["data"] != data:
                mismatches.append(f"{channel}[{i}]: data {msg['data']} != {data}")
            if msg["source"] != "bybit" or msg["type"] not in ("snapshot", "update"):
                mismatches.append(f"{channel}[{i}]: source/type {msg['source']}/{msg['type']}")
            for key, text in string_leaves(data):
                # Byte-identical: the decimal string as Bybit sent it, inside the raw frame.
                if orjson.dumps(key) + b":" + orjson.dumps(text) not in raw:
                    mismatches.append(f"{channel}[{i}]: {key}={text!r} not verbatim in frame")
    assert mismatches == []
    assert checked >= sum(ROUNDS * n for n in one_round.values())

    # Kline interval asked == interval delivered; trades a list per upstream frame.
    for channel, (_, _, interval) in CHANNELS.items():
        for msg, _ in got[channel]:
            if interval is not None:
                assert msg["data"]["interval"] == interval
            if channel.startswith("trade:"):
                assert isinstance(msg["data"], list) and msg["data"]
    # A linear ticker's delta frames went out as full states (never a made-up "0" or null
    # price), and the snapshot that restarts each round as a "snapshot".
    for msg, _ in got["ticker:BTCUSDT"]:
        assert msg["data"]["price"] not in (None, "0")
        assert msg["data"]["bid"]["price"] is not None
    types = [m["type"] for m, _ in got["ticker:BTCUSDT"][: 2 * one_round["ticker:BTCUSDT"]]]
    assert types.count("snapshot") == 2


async def test_the_frame_right_behind_the_ack_reaches_the_first_subscriber(
    hub: BybitHub, peer: BybitPeer
) -> None:
    peer.first_frame_with_ack()
    for channel, topic in (("trade:BTCUSDT", "publicTrade.BTCUSDT"),
                           ("ticker:ETHUSDT", "tickers.ETHUSDT")):
        ws = await hub.connect()
        reply = await subscribe(ws, channel)
        assert reply["args"] == [channel]
        msg = await recv_json(ws)
        # The first upstream frame: for trades the first batch of trades (an event: an
        # "update"), for a ticker the fresh snapshot.
        assert (msg["ts"], msg["data"]) == expected_stream(peer, "linear", topic)[0]
        assert msg["type"] == ("update" if channel.startswith("trade:") else "snapshot")
