"""/rfq bounds how often quote sessions start (issue 10, item 4): per connection
(``rfq.max_session_starts``) and per API key or, for anonymous clients, per address
(``rfq.max_session_starts_per_key``). Over either, the start gets a 001 error reply and
nothing else happens; other connections, addresses and keys go on."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets
from tests.integration.rfq.conftest import StartHub
from websockets.asyncio.client import ClientConnection

from cryptowire.app.node import Node

pytestmark = pytest.mark.integration
TIMEOUT = 5.0

Start = Callable[..., Awaitable[tuple[Node, str]]]


@pytest.fixture
def rfq_hub(rfq_hub_with: StartHub) -> Start:
    """A hub (demo tickers, SQLite) with ``rfq`` overrides: ``(node, /rfq url)``."""

    async def start(**rfq: Any) -> tuple[Node, str]:
        return await rfq_hub_with(rfq=rfq)

    return start


async def _open(url: str, *, local: str = "127.0.0.1", key: str | None = None,
                ) -> ClientConnection:
    ws = await websockets.connect(url if key is None else f"{url}?api_key={key}",
                                  open_timeout=TIMEOUT, ping_interval=None, proxy=None,
                                  local_addr=(local, 0))
    hello = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    assert "handshake" in hello, hello
    return ws


async def _start(ws: ClientConnection, key: str, curr_from: str = "BTC",
                 curr_to: str = "USDT") -> dict[str, Any]:
    """Start a session; the reply about it (``connected`` or an error naming ``key``)."""
    await ws.send(json.dumps({"rfq": {"action": "startSession", "key": key,
                                      "currFrom": curr_from, "currTo": curr_to,
                                      "amountFrom": "1"}}))
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg: dict[str, Any] = json.loads(await ws.recv())
            if msg.get("action") == "connected" and msg.get("key") == key:
                return msg
            if msg.get("status") == "error":
                return msg


async def _offer(ws: ClientConnection, key: str) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg: dict[str, Any] = json.loads(await ws.recv())
            if msg.get("action") == "offer" and msg.get("key") == key:
                return msg


async def _stop(ws: ClientConnection, key: str) -> None:
    await ws.send(json.dumps({"rfq": {"action": "stopSession", "key": key}}))
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = json.loads(await ws.recv())
            if msg.get("action") == "stopped" and msg.get("key") == key:
                return


def _refusal(limit: str, key: str, reply: dict[str, Any]) -> None:
    error = reply["error"]
    assert reply["status"] == "error"
    assert error["key"] == key
    assert error["message"].startswith(f"Too many quote sessions started: {limit}; "
                                       "try again in ")
    assert 0 < error["retryAfterMs"] <= 60_000


async def test_starts_per_connection_are_bounded(rfq_hub: Start) -> None:
    _, url = await rfq_hub(max_session_starts=3)
    churner = await _open(url)
    try:
        for i in range(3):  # unseen pairs: each makes the sources refuse symbols
            assert (await _start(churner, f"k{i}", f"QQ{i}", f"ZZ{i}"))["action"] == "connected"
            await _stop(churner, f"k{i}")
        _refusal("at most 3 per minute on one connection", "k3",
                 await _start(churner, "k3", "QQ3", "ZZ3"))
        # Moving a session to another pair is a start too.
        await churner.send(json.dumps({"rfq": {"action": "updateSession", "key": "k2",
                                               "currFrom": "QQ9", "currTo": "ZZ9"}}))
        # (k2 was stopped: an update of an unknown key starts it, so it is refused as well)
        _refusal("at most 3 per minute on one connection", "k2",
                 json.loads(await asyncio.wait_for(churner.recv(), TIMEOUT)))
        # Another connection of the same address has its own budget, and quotes flow.
        other = await _open(url)
        try:
            assert (await _start(other, "mine"))["action"] == "connected"
            offer = await _offer(other, "mine")
            assert offer["currFrom"] == "BTC" and offer["currTo"] == "USDT"
        finally:
            await other.close()
    finally:
        await churner.close()


async def test_starts_per_address_are_bounded_and_others_are_unaffected(
        rfq_hub: Start) -> None:
    node, url = await rfq_hub(max_session_starts=100, max_session_starts_per_key=4)
    first, second = await _open(url), await _open(url)
    try:
        for i in range(2):
            for n, ws in enumerate((first, second)):
                key = f"s{n}-{i}"
                assert (await _start(ws, key, f"QQ{n}{i}", "ZZ"))["action"] == "connected"
                await _stop(ws, key)
        for ws in (first, second):  # the address spent its 4 starts on two connections
            _refusal("at most 4 per minute for this address", "late", await _start(ws, "late"))
        # A client from another address starts and gets offers.
        elsewhere = await _open(url, local="127.0.0.2")
        # A client with an API key, from the same address, is counted by its key.
        assert node.store is not None
        plaintext, _ = await node.store.create_key("reader", ["read"])
        keyed = await _open(url, key=plaintext)
        try:
            for ws, key in ((elsewhere, "far"), (keyed, "keyed")):
                assert (await _start(ws, key))["action"] == "connected"
                assert (await _offer(ws, key))["action"] == "offer"
        finally:
            await elsewhere.close()
            await keyed.close()
    finally:
        await first.close()
        await second.close()
