"""A seventh dialect is a sans-I/O frames object plus one ``sockets.register`` line: the one
socket handler gives it Origin/Host, the key, the limits and the inbound rate."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.integration.hubkit import serve_app
from tests.integration.server.conftest import Hub, expect_close, hub_settings, recv_json
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus
from websockets.typing import Origin

from cryptowire import closecodes
from cryptowire.app.node import Node
from cryptowire.core.session import Session
from cryptowire.server import sockets
from cryptowire.server.app import create_app
from cryptowire.wire.frames import text_frame
from cryptowire.wire.native import NativeEncoder


class EchoDialect:
    """Sans-I/O: what the client sent, back as ``{"echo": ...}``."""

    name = "echo"

    def encoder(self) -> NativeEncoder:
        return NativeEncoder()

    def refused(self, code: str, message: str) -> bytes:
        return text_frame(b'{"refused":"%s"}' % code.encode())

    def no_key(self, timeout_s: float) -> None:
        return None

    def dropped(self, rate: int) -> bytes:
        return text_frame(b'{"dropped":%d}' % rate)

    def flooding(self) -> bytes:
        return text_frame(b'{"flooding":true}')

    def binary(self) -> None:
        return None

    def new_state(self) -> None:
        return None

    def parse(self, text: str, state: None) -> bytes:
        return text.encode()


class Echo(sockets.BaseKind[None]):
    """The server side: no state, no greeting."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self.dialect = EchoDialect()
        self.encoder = self.dialect.encoder()

    def denied(self, principal: object) -> None:
        return None

    async def accept(self, session: Session, request: object) -> None:
        return None

    async def on_text(self, session: Session, state: None, text: str) -> None:
        self.send(session, text_frame(b'{"echo":' + self.dialect.parse(text, state) + b"}"))

    async def end(self, session: Session, state: None) -> None:
        return None


@pytest.fixture
async def echo_hub(tmp_path: Path) -> Hub:
    node = Node(hub_settings(tmp_path, server={"max_inbound_rate": 5}))
    app = create_app(node)
    sockets.register(app, node, "/echo7", Echo(node))  # the one registration line
    runner, port = await serve_app(app)
    return Hub(node=node, runner=runner, port=port, http=None)  # type: ignore[arg-type]


async def test_a_registered_echo_dialect_answers_and_gets_every_socket_rule(
        echo_hub: Hub) -> None:
    url = f"ws://127.0.0.1:{echo_hub.port}/echo7"
    try:
        async with connect(url, proxy=None) as ws:
            await ws.send('{"hello":1}')
            assert await recv_json(ws) == {"echo": {"hello": 1}}
        async with connect(url + "?api_key=cw_wrong", proxy=None) as ws:  # the key rule
            code, seen = await expect_close(ws)
            assert (code, seen) == (closecodes.UNAUTHORIZED.code, [{"refused": "UNAUTHORIZED"}])
        async with connect(url, proxy=None) as ws:  # the inbound rate
            for _ in range(30):
                await ws.send("1")
            code, seen = await expect_close(ws)
            assert code == closecodes.RATE_LIMITED.code
            assert {"dropped": 5} in seen and seen[-1] == {"flooding": True}
            assert echo_hub.node.counters.rate_limit_closes == 1
        with pytest.raises(InvalidStatus) as refused:  # the Origin rule
            await connect(url, proxy=None, origin=Origin("https://evil.example"))
        assert refused.value.response.status_code == 403
    finally:
        await echo_hub.runner.cleanup()
