"""The client's address behind a balancer (PROXY protocol v1/v2, trusted X-Forwarded-For),
and the REST rate per key/address: what per-address limits see on the wire."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from typing import Any

import pytest
from aiohttp import ClientSession, TCPConnector
from tests.integration.server.conftest import TIMEOUT, Hub, HubFactory, call, expect_close
from websockets.asyncio.client import ClientConnection, connect

pytestmark = pytest.mark.integration

#: haproxy's doc/proxy-protocol.txt, section 2.2.
V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"

LIMIT_ONE = {"max_connections_per_key": 1}


def v1(source: str) -> bytes:
    return f"PROXY TCP4 {source} 127.0.0.1 40000 8000\r\n".encode()


def v2(source: str) -> bytes:
    block = ipaddress.ip_address(source).packed + bytes([127, 0, 0, 1])
    block += struct.pack("!HH", 40000, 8000)
    return V2_SIGNATURE + struct.pack("!BBH", 0x21, 0x11, len(block)) + block


async def proxied_socket(hub: Hub, header: bytes) -> socket.socket:
    """A connected socket whose first bytes are ``header`` (what haproxy sends)."""
    loop = asyncio.get_running_loop()
    sock = socket.socket()
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", hub.port))
    await loop.sock_sendall(sock, header)
    return sock


async def ws_via(hub: Hub, header: bytes, **kwargs: Any) -> ClientConnection:
    sock = await proxied_socket(hub, header)
    ws = await connect(hub.ws_url(), sock=sock, open_timeout=TIMEOUT, ping_interval=None,
                       proxy=None, **kwargs)
    hub.clients.append(ws)
    return ws


async def assert_second_refused(hub: Hub, header: bytes) -> None:
    code, seen = await expect_close(await ws_via(hub, header))
    assert code == 4003, seen
    assert seen[0]["message"] == "Too many connections for this address (max 1)."


async def test_proxy_protocol_v1_and_v2_give_each_client_its_own_limit(
        hub_factory: HubFactory) -> None:
    hub = await hub_factory(server={**LIMIT_ONE, "proxy_protocol": True})
    a = await ws_via(hub, v1("203.0.113.7"))
    b = await ws_via(hub, v2("198.51.100.9"))  # another client through the same balancer
    for ws in (a, b):
        assert (await call(ws, {"op": "ping"}))["op"] == "pong"
    remotes = sorted(s.remote for s in hub.node.hub.sessions.values())
    assert remotes == ["198.51.100.9", "203.0.113.7"]
    await assert_second_refused(hub, v2("203.0.113.7"))  # the same client again: its limit
    # REST sees the client too (request.remote)
    reader, writer = await asyncio.open_connection(sock=await proxied_socket(
        hub, v1("192.0.2.1") + b"GET /ready HTTP/1.0\r\n\r\n"))
    assert (await asyncio.wait_for(reader.read(), TIMEOUT)).startswith(b"HTTP/1.0 200")
    writer.close()


@pytest.mark.parametrize("first", [b"GET /ready HTTP/1.0\r\n\r\n", b"PROXY TCP4 1.2.3.4\r\n",
                                   V2_SIGNATURE + b"\x11\x11\x00\x00"])
async def test_without_a_valid_header_the_connection_is_dropped(
        hub_factory: HubFactory, first: bytes) -> None:
    hub = await hub_factory(server={"proxy_protocol": True})
    reader, writer = await asyncio.open_connection(
        sock=await proxied_socket(hub, first))
    try:
        assert await asyncio.wait_for(reader.read(), TIMEOUT) == b""  # nothing answered
    except ConnectionResetError:
        pass  # aborted: as dropped
    finally:
        writer.close()
    assert not hub.node.hub.sessions


async def test_x_forwarded_for_only_from_trusted_proxies(hub_factory: HubFactory) -> None:
    trusting = await hub_factory(server={**LIMIT_ONE, "trusted_proxies": ["127.0.0.0/8"]})
    a = await trusting.connect(headers={"X-Forwarded-For": "203.0.113.7, 127.0.0.5"})
    b = await trusting.connect(headers={"X-Forwarded-For": "198.51.100.9"})
    for ws in (a, b):
        assert (await call(ws, {"op": "ping"}))["op"] == "pong"
    again = await trusting.connect(headers={"X-Forwarded-For": "10.9.9.9, 203.0.113.7"})
    code, _ = await expect_close(again)
    assert code == 4003
    assert sorted(s.remote for s in trusting.node.hub.sessions.values()) == ["198.51.100.9",
                                                                    "203.0.113.7"]
    # From anyone else the header is the client's own claim: ignored.
    other = await hub_factory(server={**LIMIT_ONE, "trusted_proxies": ["10.0.0.0/8"]})
    c = await other.connect(headers={"X-Forwarded-For": "203.0.113.7"})
    assert (await call(c, {"op": "ping"}))["op"] == "pong"
    code, _ = await expect_close(await other.connect(
        headers={"X-Forwarded-For": "198.51.100.9"}))
    assert code == 4003


async def flood(http: ClientSession, url: str, n: int,
                headers: dict[str, str] | None = None) -> list[tuple[int, str | None]]:
    out = []
    for _ in range(n):
        async with http.get(url, headers=headers) as resp:
            out.append((resp.status, resp.headers.get("Retry-After")))
    return out


@pytest.mark.hub_settings(server={"max_rest_rate": 5})
async def test_a_rest_flood_gets_429_and_others_are_unaffected(hub: Hub) -> None:
    admin, _ = await hub.create_key("admin", ("admin",))
    url = f"{hub.url}/api/v1/keys"
    answers = await flood(hub.http, url, 40)  # anonymous, from 127.0.0.1
    statuses = [s for s, _ in answers]
    assert statuses[:5] == [401] * 5 and 429 in statuses
    assert {r for s, r in answers if s == 429} == {"1"}
    async with hub.http.get(url) as resp:
        body = await resp.json()
    if resp.status == 429:
        assert body["error"]["code"] == "RATE_LIMIT_EXCEEDED"
    # A key counts on its own...
    assert [s for s, _ in await flood(hub.http, url, 5, {"X-API-Key": admin})] == [200] * 5
    # ...and so does another address.
    async with ClientSession(connector=TCPConnector(local_addr=("127.0.0.2", 0))) as other:
        assert [s for s, _ in await flood(other, url, 5)] == [401] * 5
    # Publishing is not a REST read: it is bounded by its own limits.
    async with hub.http.post(f"{hub.url}/api/v1/publish", headers={"X-API-Key": admin},
                             json={"channel": "app:x", "data": 1}) as resp:
        assert resp.status == 200
