"""The seed 000 socket (``/swaps``) under misbehaving clients: frames while streaming, floods,
sockets that never send their key, too many sockets from one address, foreign origins, and
a command that fails unexpectedly. The demo source's swaps feed the streaming sessions."""

from __future__ import annotations

import asyncio
import json
from decimal import Decimal
from typing import Any

import orjson
import pytest
from tests.integration.server.conftest import TIMEOUT, Hub, expect_close, recv_json
from tests.waiting import eventually
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import InvalidStatus

from cryptowire.sources.evm.tokens import TokenAdmin

pytestmark = pytest.mark.integration


async def _until(predicate: Any, timeout: float = TIMEOUT) -> None:
    await eventually(predicate, timeout)


async def _streaming(hub: Hub) -> ClientConnection:
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect("/swaps")
    await ws.send(key)
    await ws.send("swaps")
    first = await recv_json(ws)
    assert set(first) == {"data"}, first  # a batched push of the demo's buys
    return ws


async def test_frames_while_streaming_get_one_clear_error_and_the_pushes_go_on(hub: Hub,
                                                                              ) -> None:
    ws = await _streaming(hub)
    await ws.send(b"\x00\x01binary")
    await ws.send("a text frame")
    await ws.send(b"\x02")
    errors: list[Any] = []
    pushes_after = 0
    async with asyncio.timeout(TIMEOUT):
        while pushes_after < 3:
            msg = await recv_json(ws)
            if "data" in msg:
                pushes_after += 1 if errors else 0
                assert msg["data"]["events"], msg
            else:
                errors.append(msg)
    assert errors == [{"status": 400,
                       "message": "This connection streams; client frames are ignored."}]
    assert len(hub.node.hub.sessions) == 1


@pytest.mark.hub_settings(server={"max_inbound_rate": 5})
async def test_a_flood_is_refused_then_closed_4009(hub: Hub) -> None:
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect("/swaps")
    await ws.send(key)
    for _ in range(30):
        await ws.send("nope")
    code, seen = await expect_close(ws)
    assert code == 4009
    statuses = [m["status"] for m in seen]
    assert statuses[:4] == [400] * 4  # the key took one token; unknown commands answered
    assert 429 in statuses[4:-1]
    assert seen[-1] == {"status": 429, "message": "Flooding: closing."}
    assert hub.node.counters.rate_limit_closes == 1


@pytest.mark.hub_settings(server={"max_connections_per_key": 2})
async def test_sockets_per_address_are_limited_before_the_key(hub: Hub) -> None:
    first = await hub.connect("/swaps")
    await hub.connect("/swaps")
    third = await hub.connect("/swaps")  # no key sent on any of them
    code, seen = await expect_close(third)
    assert code == 4003
    assert seen == [{"status": 503,
                     "message": "Too many connections for this address (max 2)."}]
    await _until(lambda: len(hub.node.hub.sessions) == 2)
    await first.close()
    await _until(lambda: len(hub.node.hub.sessions) == 1)
    assert hub.node.connections_by_key == {"ip:127.0.0.1": 1}


@pytest.mark.hub_settings(server={"auth_timeout_s": 0.3})
async def test_a_socket_without_its_key_in_time_is_closed_4001(hub: Hub) -> None:
    key, _ = await hub.create_key("reader", ("read",))
    # The prompt socket opens first, so its deadline falls before the idle one's: once the
    # idle socket is closed, the prompt's deadline has passed too (one loop, timers in order).
    prompt = await hub.connect("/swaps")
    idle = await hub.connect("/swaps")
    await prompt.send(key)
    code, seen = await expect_close(idle)
    assert code == 4001
    assert seen == [{"status": 401, "message": "No API key within 0.3 s: send it as the "
                                               "first frame."}]
    await prompt.send("nope")
    reply = await recv_json(prompt)
    assert reply["status"] == 400 and "Unknown event 'nope'" in reply["message"]
    await _until(lambda: len(hub.node.hub.sessions) == 1)


@pytest.mark.hub_settings(server={"allowed_origins": ["https://good.example"]})
async def test_origin_not_allowed_is_refused_before_upgrade(hub: Hub) -> None:
    with pytest.raises(InvalidStatus) as info:
        await hub.connect("/swaps", origin="https://evil.example")
    assert info.value.response.status_code == 403
    ok = await hub.connect("/swaps", origin="https://good.example")
    await ok.send("not-a-key")
    code, _ = await expect_close(ok)
    assert code == 4001


async def test_an_unexpected_failure_is_answered_and_the_session_stays(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    async def symbol(self: TokenAdmin, payload: Any) -> str:
        calls.append(payload)
        if len(calls) == 1:
            raise RuntimeError("boom")
        return "PEPE"

    monkeypatch.setattr(TokenAdmin, "symbol", symbol)
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect("/swaps")
    await ws.send(key)
    await ws.send("token_symbol")
    payload = orjson.dumps({"chain": 1, "address": "0x" + "11" * 20}).decode()
    await ws.send(payload)
    assert await recv_json(ws) == {"status": 500, "message": "Internal error; try again."}
    await ws.send(payload)  # the same session, still waiting for its payload
    assert await recv_json(ws) == {"status": 200, "message": None,
                                   "data": {"symbol": "PEPE"}}
    code, _ = await expect_close(ws)
    assert code == 1000


@pytest.mark.parametrize(("event", "fields"), [
    ("swap", {"txHash", "purchased", "token_price", "swapped", "taker"}),
    ("burn", {"txHash", "amount", "from", "to"}),
])
async def test_the_readmes_singular_event_names_stream_too(hub: Hub, event: str,
                                                           fields: set[str]) -> None:
    # Seed 000 README: "the event you want to subscribe (swap, burn...)".
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect("/swaps")
    await ws.send(key)
    await ws.send(event)
    push = await recv_json(ws)
    assert set(push) == {"data"}, push  # a batched push, not "Unknown event"
    (entry, *_) = push["data"]["events"].values()
    assert set(entry["txs"][0]) == fields
    await _until(lambda: len(hub.node.hub.sessions) == 1)
    (session,) = hub.node.hub.sessions.values()
    assert session.channels and all(c.startswith(f"{event}:") for c in session.channels)


_EXACT_TX = "0x" + "ab" * 32
_EXACT = {
    "swaps": ("swap:eth", {
        "chain": 1, "pair": "0x" + "22" * 20, "token": "0x" + "33" * 20, "symbol": "BIG",
        "side": "buy", "token_amount": "123456789012345678.123456789012345678",
        "paired_amount": "98765432109876543210", "price_in_paired": "1.234567890123E-18",
        "taker": "0x" + "44" * 20, "tx_hash": _EXACT_TX, "log_index": 0, "block": 1,
        "time": 1}, {
        "purchased": b"123456789012345678.123456789012345678",
        "swapped": b"98765432109876543210",
        "token_price": b"0.000000000000000001234567890123"}),
    "burns": ("burn:eth", {
        "chain": 1, "token": "0x" + "33" * 20, "symbol": "BIG",
        "amount": "115792089237316195423570985008687907853269984665640564039457."
                  "584007913129639935",
        "from": "0x" + "44" * 20, "to": "0x000000000000000000000000000000000000dEaD",
        "tx_hash": _EXACT_TX, "log_index": 0, "block": 1, "time": 1}, {
        "amount": b"115792089237316195423570985008687907853269984665640564039457."
                  b"584007913129639935"}),
}


@pytest.mark.parametrize("command", sorted(_EXACT))
async def test_amounts_reach_the_socket_with_every_digit(hub: Hub, command: str) -> None:
    # Seed 000 sends JSON numbers; they are written from the decimal strings, never through a
    # float, so an 18-decimal amount, a uint256 and a 1e-18 price keep every digit.
    channel, data, expected = _EXACT[command]
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect("/swaps")
    await ws.send(key)
    await ws.send(command)
    await recv_json(ws)  # the demo's pushes flow: the session is subscribed
    await hub.publish(channel, data)
    async with asyncio.timeout(TIMEOUT):
        while True:
            raw = await ws.recv()
            assert isinstance(raw, str)
            if _EXACT_TX in raw:
                break
    frame = raw.encode()
    for field, token in expected.items():
        assert b'"' + field.encode() + b'":' + token + b"," in frame, (field, frame)
    txs = json.loads(frame, parse_float=Decimal)["data"]["events"][data["token"]]["txs"]
    (tx,) = [t for t in txs if t["txHash"] == _EXACT_TX]
    for field, token in expected.items():
        assert tx[field] == Decimal(token.decode())
