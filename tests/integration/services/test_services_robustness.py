"""Seed 004 sockets when a handler fails: an action that raises is answered and the session
stays (004 paths and the action form on native ``/ws``); a failure before the read loop
closes the socket with 1011 and releases the session."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest
from tests.integration.services.services_hub import RunningHub
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cryptowire.core.session import Session
from cryptowire.server.ws_services import ServicesProtocol
from cryptowire.wire import services004 as s004

pytestmark = pytest.mark.integration
TIMEOUT = 5.0


async def recv_json(ws: ClientConnection) -> dict[str, Any]:
    return json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))  # type: ignore[no-any-return]


async def until(ws: ClientConnection, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = await recv_json(ws)
            if pred(msg):
                return msg


def fail_first_ping(monkeypatch: pytest.MonkeyPatch) -> None:
    """The first ``ping`` action raises inside the handler; later ones are served."""
    original = ServicesProtocol._act
    failed: list[bool] = []

    async def act(self: ServicesProtocol, session: Session, action: s004.Action) -> None:
        if action.action == "ping" and not failed:
            failed.append(True)
            raise RuntimeError("boom")
        await original(self, session, action)

    monkeypatch.setattr(ServicesProtocol, "_act", act)


async def test_a_failing_action_is_answered_and_the_session_stays(
        hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_first_ping(monkeypatch)
    async with connect(f"{hub.ws}/ws/master") as ws:
        await until(ws, lambda m: m.get("type") == "connection_established")
        await ws.send(json.dumps({"action": "ping", "data": 1}))
        err = await until(ws, lambda m: m.get("type") in ("error", "pong"))
        assert err["type"] == "error"
        assert err["data"]["message"] == "Internal error; try again."
        await ws.send(json.dumps({"action": "ping", "data": 2}))
        assert (await until(ws, lambda m: m.get("type") == "pong"))["data"] == 2


async def test_a_failing_action_on_native_ws_is_internal_error_and_the_session_stays(
        hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> None:
    fail_first_ping(monkeypatch)
    async with connect(f"{hub.ws}/ws") as ws:
        await ws.send(json.dumps({"action": "ping", "data": 1}))
        err = await recv_json(ws)
        assert err == {"op": "error", "code": "INTERNAL_ERROR",
                       "message": "Internal error; try again."}
        await ws.send(json.dumps({"action": "ping", "data": 2}))
        assert (await until(ws, lambda m: m.get("type") == "pong"))["data"] == 2
        await ws.send(json.dumps({"op": "ping"}))
        assert (await until(ws, lambda m: "op" in m))["op"] == "pong"


async def test_a_failure_before_the_read_loop_closes_1011_and_releases_the_session(
        hub: RunningHub, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("subscribe failed")

    monkeypatch.setattr(hub.node.hub, "subscribe", broken)
    async with connect(f"{hub.ws}/ws/all") as ws:
        seen: list[dict[str, Any]] = []
        code = None
        async with asyncio.timeout(TIMEOUT):
            try:
                while True:
                    seen.append(await recv_json(ws))
            except ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd is not None else None
    async with asyncio.timeout(TIMEOUT):
        while hub.node.hub.sessions:
            await asyncio.sleep(0.02)
    assert hub.node.connections_by_key == {}
    assert code == 1011
    assert seen[0]["type"] == "connection_established"
