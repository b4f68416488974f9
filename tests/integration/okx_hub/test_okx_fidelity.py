"""OKX fidelity through a served hub: every field of every message a /ws client receives
equals the OKX frames the replay peer sent, read here independently of the codec (the
mapping of ``tests/fixtures/okx/README.md``): zero mismatches, strings verbatim in the raw
frame (sizes of swaps: contracts x ``ctVal``, exactly), ``ts`` the push's, ``source`` okx."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from tests.integration.bybit_hub.support import TIMEOUT, BybitHub, string_leaves, subscribe
from tests.peers.okx_peer import OkxPeer

pytestmark = pytest.mark.integration

CT_VAL = {"BTC-USDT-SWAP": Decimal("0.01"), "BTC-USDT": None}
#: hub channel -> (instId, the OKX channels feeding it)
CHANNELS: dict[str, tuple[str, tuple[str, ...]]] = {
    "ticker:BTCUSDT@okx": ("BTC-USDT-SWAP", ("tickers", "funding-rate", "mark-price")),
    "ticker:BTCUSDT@okx-spot": ("BTC-USDT", ("tickers",)),
    "trade:BTCUSDT@okx": ("BTC-USDT-SWAP", ("trades",)),
    "trade:BTCUSDT@okx-spot": ("BTC-USDT", ("trades",)),
    "kline:1m:BTCUSDT@okx": ("BTC-USDT-SWAP", ("candle1m",)),
    "kline:1m:BTCUSDT@okx-spot": ("BTC-USDT", ("candle1m",)),
    "kline:1h:BTCUSDT@okx": ("BTC-USDT-SWAP", ("candle1H",)),
    "liquidation:BTCUSDT@okx": ("BTC-USDT-SWAP", ("liquidation-orders",)),
}
PER_CHANNEL = 8


def size(text: str, inst_id: str) -> str:
    ct = CT_VAL[inst_id]
    return text if ct is None else format(Decimal(text) * ct, "f")


def expected_messages(channel: str, sent: list[str]) -> list[tuple[int | None, Any]]:
    """``(ts, data)`` of each message ``channel`` should carry, from the frames sent."""
    inst_id, feeds = CHANNELS[channel]
    spot = CT_VAL[inst_id] is None
    latest: dict[str, dict[str, Any]] = {}
    out: list[tuple[int | None, Any]] = []
    for text in sent:
        frame = json.loads(text)
        arg = frame["arg"]
        if arg["channel"] not in feeds or arg.get("instId", "SWAP") not in (inst_id, "SWAP"):
            continue
        if channel.startswith("ticker:"):
            latest[arg["channel"]] = frame["data"][0]
            if "tickers" in latest:
                out.append((int(frame["data"][0]["ts"]), ticker(latest, inst_id, spot)))
        elif channel.startswith("trade:"):
            trades = [{"id": t["tradeId"], "symbol": "BTCUSDT", "price": t["px"],
                       "quantity": size(t["sz"], inst_id), "side": t["side"],
                       "time": int(t["ts"]), "isBlockTrade": False} for t in frame["data"]]
            out.append((trades[-1]["time"], trades))
        elif channel.startswith("kline:"):
            span = 60_000 if ":1m:" in channel else 3_600_000
            out += [(None, {"symbol": "BTCUSDT", "interval": channel.split(":")[1],
                            "openTime": int(c[0]), "closeTime": int(c[0]) + span - 1,
                            "open": c[1], "high": c[2], "low": c[3], "close": c[4],
                            "volume": c[5] if spot else c[6], "turnover": c[7],
                            "confirmed": c[8] == "1"}) for c in frame["data"]]
        else:
            for item in frame["data"]:
                if item["instId"] == inst_id:
                    out += [(int(d["ts"]), {"symbol": "BTCUSDT",
                                            "side": {"sell": "Buy", "buy": "Sell"}[d["side"]],
                                            "price": d["bkPx"], "size": size(d["sz"], inst_id),
                                            "time": int(d["ts"])}) for d in item["details"]]
    return out


def ticker(latest: dict[str, dict[str, Any]], inst_id: str, spot: bool) -> dict[str, Any]:
    t = latest["tickers"]
    out: dict[str, Any] = {
        "symbol": "BTCUSDT", "price": t["last"], "high24h": t["high24h"], "low24h": t["low24h"],
        "prevPrice24h": t["open24h"], "volume24h": t["vol24h"] if spot else t["volCcy24h"],
        "bid": {"price": t["bidPx"], "size": size(t["bidSz"], inst_id)},
        "ask": {"price": t["askPx"], "size": size(t["askSz"], inst_id)}}
    if spot:
        out["turnover24h"] = t["volCcy24h"]
    if "mark-price" in latest:
        out["markPrice"] = latest["mark-price"]["markPx"]
    if "funding-rate" in latest:
        out["fundingRate"] = latest["funding-rate"]["fundingRate"]
        out["nextFundingTime"] = latest["funding-rate"]["fundingTime"]
    return out


async def test_every_field_of_every_message_equals_the_frames_sent(
        hub: BybitHub, peer: OkxPeer) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, *CHANNELS)
    assert reply["rejected"] is None, reply
    got: dict[str, list[tuple[dict[str, Any], bytes]]] = {ch: [] for ch in CHANNELS}
    async with asyncio.timeout(TIMEOUT * 2):
        while any(len(got[ch]) < PER_CHANNEL for ch in CHANNELS):
            raw = await ws.recv(decode=False)
            msg = orjson.loads(raw)
            assert "channel" in msg, msg
            got[msg["channel"]].append((msg, raw))
    sent = [text for _, text in peer.sent]
    mismatches: list[str] = []
    for channel, messages in got.items():
        expected = expected_messages(channel, sent)
        assert len(expected) >= len(messages), channel
        for i, (msg, raw) in enumerate(messages):
            ts, data = expected[i]
            if msg["data"] != data:
                mismatches.append(f"{channel}[{i}]: {msg['data']} != {data}")
            if ts is not None and msg["ts"] != ts:
                mismatches.append(f"{channel}[{i}]: ts {msg['ts']} != {ts}")
            state = channel.startswith(("ticker:", "kline:"))
            kind = ("snapshot" if i == 0 else "update") if state else "update"
            if (msg["source"], msg["type"]) != ("okx", kind):
                mismatches.append(f"{channel}[{i}]: {msg['source']}/{msg['type']}")
            for key, text in string_leaves(data):
                if orjson.dumps(key) + b":" + orjson.dumps(text) not in raw:
                    mismatches.append(f"{channel}[{i}]: {key}={text!r} not verbatim")
    assert mismatches == []
    # the swap sizes really were converted, the liquidation of ETH-USDT-SWAP filtered out
    first_trade = got["trade:BTCUSDT@okx"][0][0]["data"][0]
    assert first_trade["quantity"] == "0.125"
    assert all(m["data"]["symbol"] == "BTCUSDT" for m, _ in got["liquidation:BTCUSDT@okx"])


async def test_unknown_symbols_and_kinds_are_rejected_with_a_reason(hub: BybitHub) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "ticker:NOPEUSDT@okx", "ticker:BTCUSD@okx",
                            "liquidation:BTCUSDT@okx-spot", "ticker:LUNCUSDT@okx-spot",
                            "book:7:BTCUSDT@okx", "trade:BTCUSDT@okx")
    assert reply["args"] == ["trade:BTCUSDT@okx"]
    reasons = {r["arg"]: r["reason"] for r in reply["rejected"]}
    assert set(reasons) == {"ticker:NOPEUSDT@okx", "ticker:BTCUSD@okx",
                            "liquidation:BTCUSDT@okx-spot", "ticker:LUNCUSDT@okx-spot",
                            "book:7:BTCUSDT@okx"}
    assert "Unknown symbol 'NOPEUSDT' on OKX" in reasons["ticker:NOPEUSDT@okx"]
    assert "BTCUSD" in reasons["ticker:BTCUSD@okx"]
    assert "liquidation" in reasons["liquidation:BTCUSDT@okx-spot"]
    assert "suspended" in reasons["ticker:LUNCUSDT@okx-spot"]
    assert "400" in reasons["book:7:BTCUSDT@okx"]
