"""Connection resources on real sockets: keyless sockets get a deadline and a share of the
connections, half-sent HTTP requests time out and count toward the limit, client pings
count toward the inbound rate, and the node bounds all outbound buffers together."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

import orjson
import pytest
from tests.integration.server.conftest import (
    TIMEOUT,
    Hub,
    RawClient,
    call,
    expect_close,
    mask_frame,
    subscribe,
)
from websockets.asyncio.client import ClientConnection

from cryptowire import closecodes

pytestmark = pytest.mark.integration


async def _until(predicate: Callable[[], bool], timeout: float = TIMEOUT) -> None:
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.02)


# -- keyless sockets (issue 10, item 10) -------------------------------------------------------


@pytest.mark.hub_settings(server={"anonymous_read": False, "auth_timeout_s": 0.5})
async def test_a_keyless_socket_that_does_not_authenticate_is_closed_4001(hub: Hub) -> None:
    key, _ = await hub.create_key("reader", ("read",))
    silent = await hub.connect()
    prompt = await hub.connect()
    assert (await call(prompt, {"id": 1, "op": "auth", "args": [key]}))["success"] is True
    keyed = await hub.connect(headers={"X-API-Key": key})
    code, seen = await expect_close(silent)
    assert code == closecodes.UNAUTHORIZED.code == 4001
    assert seen == [{"op": "error", "code": "UNAUTHORIZED",
                     "message": 'No API key within 0.5 s: send {"op":"auth","args":["<key>"]} '
                                "first, or connect with a key."}]
    # Past the deadline, the ones that had a key stay.
    for ws in (prompt, keyed):
        assert (await call(ws, {"op": "ping"}))["op"] == "pong"
    await _until(lambda: len(hub.node.hub.sessions) == 2)


@pytest.mark.hub_settings(server={"anonymous_read": True, "auth_timeout_s": 0.5})
async def test_anonymous_readers_have_no_deadline(hub: Hub) -> None:
    reader = await hub.connect()
    await subscribe(reader, "app:open")
    silent = await hub.connect()
    # Longer than auth_timeout_s, measured by the hub's own closing of a /swaps socket.
    swaps = await hub.connect("/swaps")
    code, _ = await expect_close(swaps)
    assert code == 4001
    for ws in (reader, silent):
        assert (await call(ws, {"op": "ping"}))["op"] == "pong"


@pytest.mark.hub_settings(server={"anonymous_read": False, "max_connections": 4,
                                  "unauthenticated_share": 0.5})
async def test_keyless_sockets_cannot_take_the_room_of_keyed_ones(hub: Hub) -> None:
    admin, _ = await hub.create_key("admin", ("admin",))
    keyless = [await hub.connect() for _ in range(2)]
    third = await hub.connect()
    code, seen = await expect_close(third)
    assert code == 4003
    assert seen == [{"op": "error", "code": "LIMIT_EXCEEDED",
                     "message": "Server full for connections without an API key (2); "
                                "connect with a key."}]
    await _until(lambda: len(hub.node.hub.sessions) == 2)
    # The rest of max_connections is there for keys.
    keyed = [await hub.connect(headers={"X-API-Key": admin}) for _ in range(2)]
    for ws in [*keyless, *keyed]:
        assert (await call(ws, {"op": "ping"}))["op"] == "pong"
    # A keyless socket that authenticates leaves the keyless share.
    assert (await call(keyless[0], {"op": "auth", "args": [admin]}))["success"] is True
    assert hub.node.unauthenticated == 1


# -- slow HTTP (item 13) ---------------------------------------------------------------------


async def _half_sent(port: int) -> socket.socket:
    """A connection that sends a request head without its final blank line."""
    loop = asyncio.get_running_loop()
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setblocking(False)
    await loop.sock_connect(sock, ("127.0.0.1", port))
    await loop.sock_sendall(sock, b"GET /ready HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: 1\r\n")
    return sock


async def _read_all(sock: socket.socket, timeout: float = TIMEOUT) -> bytes:
    """Everything the server sends until it closes the connection."""
    loop = asyncio.get_running_loop()
    data = b""
    async with asyncio.timeout(timeout):
        while chunk := await loop.sock_recv(sock, 4096):
            data += chunk
    return data


@pytest.mark.hub_settings(server={"header_timeout_s": 0.5})
async def test_a_half_sent_request_is_closed_after_header_timeout(hub: Hub) -> None:
    sock = await _half_sent(hub.port)
    try:
        assert await _read_all(sock) == b""  # closed, nothing answered
    finally:
        sock.close()
    async with hub.http.get(f"{hub.url}/ready") as resp:  # whole requests are served
        assert resp.status == 200


@pytest.mark.hub_settings(server={"max_connections": 3, "http_headroom": 2})
async def test_pending_http_connections_count_toward_the_connection_limit(hub: Hub) -> None:
    pending = [await _half_sent(hub.port) for _ in range(5)]  # max_connections + headroom
    refused = await _half_sent(hub.port)
    try:
        answer = await _read_all(refused)
        assert answer.startswith(b"HTTP/1.1 503 Service Unavailable\r\n")
        assert answer.endswith(b"Server full: too many open connections; retry later.\n")
        assert hub.node.counters.rejected_connections == 1
    finally:
        refused.close()
        for sock in pending:
            sock.close()
    # Once they are gone, there is room again.
    await _until(lambda: len(hub.runner.server.connections) == 0)  # type: ignore[union-attr]
    ws = await hub.connect()
    assert (await call(ws, {"op": "ping"}))["op"] == "pong"


@pytest.mark.parametrize("path", ["/ws", "/ws/master", "/rfq", "/swaps"])
@pytest.mark.hub_settings(server={"max_inbound_rate": 5})
async def test_client_pings_count_toward_the_inbound_rate(hub: Hub, path: str) -> None:
    client = await RawClient.connect(hub.port, path)
    client.write(b"".join(mask_frame(b"p%d" % i, opcode=0x9) for i in range(30)))
    pongs, code = await client.count_until_close(0xA)
    client.close()
    assert 5 <= pongs < 10  # the bucket's burst (and what it refilled meanwhile), of 30
    assert code == closecodes.RATE_LIMITED.code == 4009
    assert hub.node.counters.rate_limit_closes == 1


# -- outbound buffers, node-wide (item 9) ----------------------------------------------------


@pytest.mark.parametrize("rid", ["x" * 65, "é" * 65])
async def test_a_long_request_id_is_refused_and_not_echoed(hub: Hub, rid: str) -> None:
    ws = await hub.connect()
    reply = await call(ws, {"id": rid, "op": "ping"})
    assert reply == {"op": "error", "code": "INVALID_ARGS",
                     "message": "'id' must be at most 64 characters."}
    assert (await call(ws, {"id": rid[:64], "op": "ping"}))["id"] == rid[:64]


def _buffered(hub: Hub) -> int:
    """What the open sessions' transports hold right now (the memory the bound is about)."""
    return sum(s.transport.get_write_buffer_size() for s in hub.node.hub.sessions.values()
               if not s.closed)


BUDGET = 1024 * 1024


@pytest.mark.hub_settings(server={"outbound_buffer_bytes": 32 * 1024 * 1024,
                                  "max_outbound_bytes": BUDGET})
async def test_the_node_bounds_all_outbound_buffers_largest_first(hub: Hub) -> None:
    channel = "app:firehose"
    watcher = await hub.connect()
    await subscribe(watcher, channel)
    # Sockets that never read, as in the review: each would be let grow to 32 MiB.
    stalled = []
    for _ in range(4):
        raw = await RawClient.connect(hub.port, rcvbuf=4096)
        raw.send_json({"op": "subscribe", "args": [channel]})
        assert (await raw.read_json())["op"] == "subscribe"
        raw.pause()
        stalled.append(raw)

    received: list[int] = []
    progress = asyncio.Event()

    async def read(ws: ClientConnection) -> None:
        async for raw in ws:
            received.append(orjson.loads(raw)["offset"])
            progress.set()

    reader = asyncio.create_task(read(watcher))
    published: list[int] = []
    peak = 0
    stats = hub.node.hub.stats
    try:
        async with asyncio.timeout(60):
            while stats.outbound_budget_closes < 4:
                for _ in range(4):
                    pub = await hub.publish(channel, {"pad": "x" * 32_000})
                    published.append(pub.offset)
                while not received or received[-1] < published[-1]:  # the watcher keeps up
                    progress.clear()
                    await progress.wait()
                peak = max(peak, _buffered(hub))
                # 16 MiB to each stalled socket at most: far below its own 32 MiB bound.
                assert len(published) < 512, "the node-wide bound never cut anyone"
    finally:
        reader.cancel()
    # Every stalled socket was cut by the node's bound, the largest first, and nobody else.
    assert stats.outbound_budget_closes == stats.slow_consumer_closes == 4
    assert peak <= BUDGET + 64 * 1024  # + the close frames and pongs written since
    assert received == list(range(published[0], published[-1] + 1))
    assert (await call(watcher, {"op": "ping"}))["op"] == "pong"
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        text = await resp.text()
    assert "cryptowire_outbound_budget_closes_total 4.0" in text
    for raw in stalled:
        raw.resume()
        assert await raw.read_to_end(timeout=10) in (None, 4008)
        raw.close()
    await _until(lambda: len(hub.node.hub.sessions) == 1)
    assert hub.node.hub.outbound_bytes >= 0


@pytest.mark.parametrize("path", ["/ws", "/ws/master", "/rfq"])  # /swaps: test_swaps_robustness
@pytest.mark.hub_settings(server={"max_inbound_rate": 5})
async def test_a_text_flood_closes_4009_and_is_counted_on_every_socket(hub: Hub,
                                                                         path: str) -> None:
    # /rfq closed its floods without counting them in rate_limit_closes (/stats).
    ws = await hub.connect(path)
    for _ in range(30):
        await ws.send("nope")
    code, _seen = await expect_close(ws)
    assert code == closecodes.RATE_LIMITED.code
    assert hub.node.counters.rate_limit_closes == 1
