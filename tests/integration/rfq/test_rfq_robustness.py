"""/rfq under limits and faults: connection limits, the channel form's subscription limit,
and a handler failure before the read loop (the session must not leak)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
import websockets
from tests.integration.rfq.conftest import StartHub
from tests.waiting import eventually
from websockets.exceptions import ConnectionClosed

from cryptowire.app.node import Node
from cryptowire.server import ws_rfq

pytestmark = pytest.mark.integration
TIMEOUT = 5.0

Start = Callable[..., Awaitable[tuple[Node, str]]]


@pytest.fixture
def rfq_hub(rfq_hub_with: StartHub) -> Start:
    """A hub (demo tickers, SQLite) with ``server`` overrides: ``(node, /rfq url)``."""

    async def start(**server: Any) -> tuple[Node, str]:
        return await rfq_hub_with(server=server)

    return start


async def recv(ws: Any) -> dict[str, Any]:
    msg: dict[str, Any] = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
    return msg


async def closed_with(ws: Any) -> tuple[int | None, list[dict[str, Any]]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT):
        try:
            while True:
                seen.append(json.loads(await ws.recv()))
        except ConnectionClosed as exc:
            return (exc.rcvd.code if exc.rcvd is not None else None), seen


async def until(predicate: Callable[[], bool]) -> None:
    await eventually(predicate, TIMEOUT)


async def test_connection_limits_close_4003(rfq_hub: Start) -> None:
    node, url = await rfq_hub(max_connections_per_key=1)
    async with websockets.connect(url) as first:
        assert "handshake" in await recv(first)
        async with websockets.connect(url) as second:
            code, seen = await closed_with(second)
            assert code == 4003
            assert seen == [{"status": "error", "error": {
                "message": "Too many connections for this address (max 1)."}}]
        assert node.counters.rejected_connections == 1
        await first.send(json.dumps({"current": "ticker:BTCUSDT"}))
        assert (await recv(first))["current"] == "ticker:BTCUSDT"


async def test_the_channel_form_keeps_to_max_subscriptions(rfq_hub: Start) -> None:
    node, url = await rfq_hub(max_subscriptions=2)
    async with websockets.connect(url) as ws:
        await recv(ws)  # handshake
        await ws.send(json.dumps({"subscribe": ["ticker:BTCUSDT", "ticker:ETHUSDT",
                                                "ticker:SOLUSDT", "ticker:BTCUSDT"]}))
        replies: list[dict[str, Any]] = []
        async with asyncio.timeout(TIMEOUT):
            while len(replies) < 4:
                msg = await recv(ws)
                if "channel" not in msg or "subscribe" in msg or "status" in msg:
                    replies.append(msg)
        assert replies[0] == {"subscribe": "ticker:BTCUSDT", "status": "ok"}
        assert replies[1] == {"subscribe": "ticker:ETHUSDT", "status": "ok"}
        assert replies[2] == {"status": "error", "error": {
            "message": "Subscription limit reached: at most 2 channels per connection.",
            "channel": "ticker:SOLUSDT"}}
        assert replies[3]["status"] == "error"  # already subscribed: not a third channel
        (session,) = node.hub.sessions.values()
        assert session.channels == {"ticker:BTCUSDT", "ticker:ETHUSDT"}
        # After an unsubscribe there is room again.
        await ws.send(json.dumps({"unsubscribe": "ticker:ETHUSDT"}))
        await ws.send(json.dumps({"subscribe": "ticker:SOLUSDT"}))
        async with asyncio.timeout(TIMEOUT):
            while (await recv(ws)).get("subscribe") != "ticker:SOLUSDT":
                pass
        assert session.channels == {"ticker:BTCUSDT", "ticker:SOLUSDT"}


async def test_a_failure_before_the_read_loop_does_not_leak_the_session(
        rfq_hub: Start, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(self: ws_rfq.RfqSocket) -> Any:
        raise RuntimeError("rates unavailable")

    monkeypatch.setattr(ws_rfq.RfqSocket, "_rates", broken)
    node, url = await rfq_hub()
    async with websockets.connect(url) as ws:
        code, seen = await closed_with(ws)
    await until(lambda: not node.hub.sessions)
    assert node.connections_by_key == {}
    assert code == 1011  # the socket is closed as an internal error, after what was sent
    assert "handshake" in seen[0]
