"""A real cryptowire app on a free loopback port, and the clients that talk to it.

``hub`` starts one node (SQLite store in ``tmp_path``, memory bus, demo source on a fast
tick) behind aiohttp's ``AppRunner``/``TCPSite`` and stops it after the test. A test changes
settings with ``@pytest.mark.hub_settings(server={"max_subscriptions": 3})`` (merged into the
defaults below), or starts more hubs, or stops one itself, through ``hub_factory``.

Clients are real: :mod:`websockets` for well-behaved ones, :class:`RawClient` (a bare asyncio
TCP connection that does the RFC 6455 handshake by hand) for the ones that misbehave at the
byte level or never read.
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
import pytest
from aiohttp import ClientSession
from tests.integration.hubkit import ServedHub, serve, stop_all
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from cryptowire.app.node import Node
from cryptowire.events import Event, Publication
from cryptowire.settings import Settings, load_settings
from cryptowire.store.keys import ApiKey

pytestmark = pytest.mark.integration

#: Generous bound for anything that should happen "at once" on loopback.
TIMEOUT = 5.0


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "hub_settings(**overrides): settings merged into the test hub's defaults"
    )


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def hub_settings(tmp_path: Path, **overrides: Any) -> Settings:
    """Test defaults + ``overrides``; an empty config file keeps a stray ./cryptowire.toml out."""
    config = tmp_path / "cryptowire.toml"
    config.touch()
    defaults: dict[str, Any] = {
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'cryptowire.db'}"},
        "bus": {"url": "memory://"},
        "demo": {"mode": "on", "interval_s": 0.05},
        "demand": {"linger_s": 0.05},
        "bybit": {"enabled": False},
        "evm": {"enabled": False},
        "server": {"shutdown_grace_s": 2.0},
    }
    return load_settings(config, **_merge(defaults, overrides))


@dataclass
class Hub(ServedHub):
    """One running node and its address, with helpers for tests."""

    def ws_url(self, path: str = "/ws", **query: str) -> str:
        qs = f"?{urlencode(query)}" if query else ""
        return f"ws://127.0.0.1:{self.port}{path}{qs}"

    async def create_key(self, name: str = "test", scopes: tuple[str, ...] = ("read",),
                         ) -> tuple[str, ApiKey]:
        """A new API key in the node's own store: ``(plaintext, record)``."""
        assert self.node.store is not None
        return await self.node.store.create_key(name, scopes)

    async def connect(self, path: str = "/ws", *, headers: dict[str, str] | None = None,
                      **kwargs: Any) -> ClientConnection:
        """A websockets client (closed at teardown)."""
        query = kwargs.pop("query", {})
        ws = await connect(self.ws_url(path, **query), additional_headers=headers,
                           open_timeout=TIMEOUT, ping_interval=None, proxy=None,
                           max_size=2**24, **kwargs)
        self.clients.append(ws)
        return ws

    async def publish(self, channel: str, data: Any) -> Publication:
        """Publish in-process, as a source would."""
        return await self.node.broker.publish(Event(channel=channel, data=data, source="test"))



HubFactory = Callable[..., Awaitable[Hub]]


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    """Start hubs with settings overrides; all are stopped at teardown."""
    hubs: list[Hub] = []
    http = ClientSession()

    async def start(**overrides: Any) -> Hub:
        directory = tmp_path / f"hub{len(hubs)}"
        directory.mkdir()
        node = Node(hub_settings(directory, **overrides))
        runner, port = await serve(node)
        hub = Hub(node=node, runner=runner, port=port, http=http)
        hubs.append(hub)
        return hub

    try:
        yield start
    finally:
        await stop_all(hubs, http)


@pytest.fixture
async def hub(request: pytest.FixtureRequest, hub_factory: HubFactory) -> Hub:
    marker = request.node.get_closest_marker("hub_settings")
    overrides = marker.kwargs if marker else {}
    return await hub_factory(**overrides)


# -- websockets client helpers ----------------------------------------------------------


async def recv_json(ws: ClientConnection, timeout: float = TIMEOUT) -> Any:
    raw = await asyncio.wait_for(ws.recv(), timeout)
    return orjson.loads(raw)


async def call(ws: ClientConnection, frame: dict[str, Any] | str,
               timeout: float = TIMEOUT) -> Any:
    """Send ``frame`` and return the next message that is not a data frame."""
    await ws.send(frame if isinstance(frame, str) else orjson.dumps(frame).decode())
    while True:
        msg = await recv_json(ws, timeout)
        if not (isinstance(msg, dict) and "channel" in msg and "offset" in msg):
            return msg


async def subscribe(ws: ClientConnection, *channels: str, **extra: Any) -> Any:
    reply = await call(ws, {"op": "subscribe", "args": list(channels), **extra})
    assert reply["op"] == "subscribe", reply
    return reply


async def next_data(ws: ClientConnection, channel: str | None = None,
                    timeout: float = TIMEOUT) -> dict[str, Any]:
    """The next data frame (of ``channel`` if given), skipping replies and other channels."""
    async with asyncio.timeout(timeout):
        while True:
            msg = await recv_json(ws, timeout)
            if isinstance(msg, dict) and "offset" in msg and (
                channel is None or msg.get("channel") == channel
            ):
                return msg  # type: ignore[no-any-return]


async def expect_close(ws: ClientConnection, timeout: float = TIMEOUT,
                       ) -> tuple[int | None, list[Any]]:
    """Read until the server closes; return its close code and what came before."""
    seen: list[Any] = []
    async with asyncio.timeout(timeout):
        try:
            while True:
                seen.append(orjson.loads(await ws.recv()))
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            return code, seen


async def assert_alive(hub: Hub, watcher: ClientConnection, channel: str = "app:watch",
                       ) -> None:
    """The server still answers, and a subscriber still receives what is published."""
    reply = await call(watcher, {"op": "ping"})
    assert reply["op"] == "pong"
    pub = await hub.publish(channel, {"alive": True})
    msg = await next_data(watcher, channel)
    assert msg["offset"] == pub.offset
    async with hub.http.get(f"{hub.url}/ready") as resp:
        assert resp.status == 200


@pytest.fixture
async def watcher(hub: Hub) -> ClientConnection:
    """A well-behaved client subscribed to ``app:watch``, for "the others are fine" checks."""
    ws = await hub.connect()
    reply = await subscribe(ws, "app:watch")
    assert reply["args"] == ["app:watch"]
    return ws


# -- a raw client ------------------------------------------------------------------------


def mask_frame(payload: bytes, opcode: int = 0x1, fin: bool = True) -> bytes:
    """A client frame (masked, RFC 6455 section 5.3)."""
    head = (0x80 if fin else 0) | opcode
    n = len(payload)
    if n < 126:
        header = bytes((head, 0x80 | n))
    elif n < 65536:
        header = struct.pack("!BBH", head, 0x80 | 126, n)
    else:
        header = struct.pack("!BBQ", head, 0x80 | 127, n)
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return header + key + masked


class _RawProtocol(asyncio.Protocol):
    def __init__(self) -> None:
        self.buffer = bytearray()
        self.transport: asyncio.Transport | None = None
        self.changed = asyncio.Event()
        self.eof = False
        self.error: BaseException | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        self.changed.set()

    def eof_received(self) -> bool | None:
        self.eof = True
        self.changed.set()
        return None

    def connection_lost(self, exc: BaseException | None) -> None:
        self.eof = True
        self.error = exc
        self.changed.set()


class RawClient:
    """A WebSocket client built from a bare TCP socket: handshake, masked frames, and reading
    only when asked (``pause()`` stops reading from the kernel altogether)."""

    def __init__(self, protocol: _RawProtocol) -> None:
        self.protocol = protocol

    @classmethod
    async def connect(cls, port: int, path: str = "/ws", *, rcvbuf: int | None = None,
                      headers: dict[str, str] | None = None) -> RawClient:
        loop = asyncio.get_running_loop()
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf is not None:
            # Before connect, so the window the client advertises is small from the start.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        sock.setblocking(False)
        await loop.sock_connect(sock, ("127.0.0.1", port))
        _, protocol = await loop.create_connection(_RawProtocol, sock=sock)
        client = cls(protocol)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [f"GET {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Upgrade: websocket",
                 "Connection: Upgrade", f"Sec-WebSocket-Key: {key}",
                 "Sec-WebSocket-Version: 13"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        client.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await client._read_until(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        assert b" 101 " in status, head
        return client

    def write(self, data: bytes) -> None:
        assert self.protocol.transport is not None
        self.protocol.transport.write(data)

    def send_text(self, text: str | bytes) -> None:
        self.write(mask_frame(text.encode() if isinstance(text, str) else text, 0x1))

    def send_json(self, obj: Any) -> None:
        self.send_text(orjson.dumps(obj))

    def pause(self) -> None:
        """Stop reading: from now on the kernel buffers fill and the server's backs up."""
        assert self.protocol.transport is not None
        self.protocol.transport.pause_reading()

    def resume(self) -> None:
        assert self.protocol.transport is not None
        self.protocol.transport.resume_reading()

    async def _wait(self, timeout: float) -> None:
        if self.protocol.eof:
            raise EOFError("connection closed")
        self.protocol.changed.clear()
        await asyncio.wait_for(self.protocol.changed.wait(), timeout)

    async def _read_until(self, marker: bytes, timeout: float = TIMEOUT) -> bytes:
        async with asyncio.timeout(timeout):
            while True:
                idx = self.protocol.buffer.find(marker)
                if idx >= 0:
                    out = bytes(self.protocol.buffer[: idx + len(marker)])
                    del self.protocol.buffer[: idx + len(marker)]
                    return out
                await self._wait(timeout)

    async def _read_exact(self, n: int, timeout: float) -> bytes:
        async with asyncio.timeout(timeout):
            while len(self.protocol.buffer) < n:
                await self._wait(timeout)
            out = bytes(self.protocol.buffer[:n])
            del self.protocol.buffer[:n]
            return out

    async def count_until_close(self, opcode: int,
                                timeout: float = TIMEOUT) -> tuple[int, int | None]:
        """Read frames until the server's close: how many had ``opcode``, and the close code."""
        seen, code = 0, None
        async with asyncio.timeout(timeout):
            while code is None:
                got, payload = await self.read_frame()
                if got == opcode:
                    seen += 1
                elif got == 0x8:
                    code = struct.unpack("!H", payload[:2])[0]
        return seen, code

    async def read_frame(self, timeout: float = TIMEOUT) -> tuple[int, bytes]:
        """``(opcode, payload)`` of the next server frame; EOFError once the server is gone."""
        b0, b1 = await self._read_exact(2, timeout)
        assert not b1 & 0x80, "server frames are never masked"
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", await self._read_exact(2, timeout))
        elif n == 127:
            (n,) = struct.unpack("!Q", await self._read_exact(8, timeout))
        return b0 & 0x0F, await self._read_exact(n, timeout)

    async def read_json(self, timeout: float = TIMEOUT) -> Any:
        while True:
            opcode, payload = await self.read_frame(timeout)
            if opcode == 0x1:
                return orjson.loads(payload)

    async def read_to_end(self, timeout: float = TIMEOUT) -> int | None:
        """Read every frame until the connection ends; the close code if a close frame came."""
        code = None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    opcode, payload = await self.read_frame(timeout)
                    if opcode == 0x8 and len(payload) >= 2:
                        code = struct.unpack("!H", payload[:2])[0]
        except (EOFError, ConnectionError):
            pass
        return code

    def close(self) -> None:
        if self.protocol.transport is not None:
            self.protocol.transport.abort()
