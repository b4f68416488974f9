"""Faults on real sockets: oversized frames, floods, connection limits, revoked keys, slow
consumers, shutdown. After each, the server is up and the other clients still receive."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable

import orjson
import pytest
from tests.integration.server.conftest import (
    TIMEOUT,
    Hub,
    HubFactory,
    RawClient,
    assert_alive,
    call,
    expect_close,
    mask_frame,
    recv_json,
    subscribe,
)
from tests.waiting import eventually
from websockets.asyncio.client import ClientConnection

from cryptowire.store.sql import SqlStore

pytestmark = pytest.mark.integration


async def _wait_for(predicate: Callable[[], Awaitable[bool]], timeout: float = TIMEOUT) -> None:
    """Poll ``predicate`` until it holds (a state to reach, never a speed to assert)."""
    await eventually(predicate, timeout)


# -- frame size ------------------------------------------------------------------------------


@pytest.mark.hub_settings(server={"max_frame_bytes": 4096})
async def test_frame_over_max_frame_bytes_closes_1009(hub: Hub, watcher: ClientConnection,
                                                      ) -> None:
    ws = await hub.connect()
    ok = '{"op":"ping","pad":"' + "x" * 3000 + '"}'
    assert (await call(ws, ok))["op"] == "pong"
    await ws.send('{"op":"ping","pad":"' + "x" * 5000 + '"}')
    code, seen = await expect_close(ws)
    assert code == 1009
    assert seen == []
    await assert_alive(hub, watcher)


@pytest.mark.hub_settings(server={"max_frame_bytes": 4096})
async def test_max_frame_bytes_is_the_largest_frame_accepted(hub: Hub) -> None:
    head, tail = '{"op":"ping","pad":"', '"}'
    exact = head + "x" * (4096 - len(head) - len(tail)) + tail
    assert len(exact) == 4096
    ws = await hub.connect()
    assert (await call(ws, exact))["op"] == "pong"
    await ws.send(exact[:-2] + 'x"}')
    code, _ = await expect_close(ws)
    assert code == 1009


@pytest.mark.hub_settings(server={"max_frame_bytes": 4096})
async def test_fragmented_message_over_max_frame_bytes_closes_1009(hub: Hub) -> None:
    # The bound is on the message, not on each fragment.
    raw = await RawClient.connect(hub.port)
    raw.write(mask_frame(b'{"op":"ping","pad":"' + b"x" * 3000, opcode=0x1, fin=False))
    raw.write(mask_frame(b"y" * 3000 + b'"}', opcode=0x0, fin=True))
    assert await raw.read_to_end() == 1009
    raw.close()


async def test_fragmented_message_within_the_limit_is_one_message(hub: Hub) -> None:
    raw = await RawClient.connect(hub.port)
    raw.write(mask_frame(b'{"id":7,"op":', opcode=0x1, fin=False))
    raw.write(mask_frame(b'"pi', opcode=0x0, fin=False))
    raw.write(mask_frame(b'ng"}', opcode=0x0, fin=True))
    reply = await raw.read_json()
    assert reply["op"] == "pong" and reply["id"] == 7
    raw.close()


async def test_abrupt_disconnect_releases_the_session(hub: Hub, watcher: ClientConnection,
                                                      ) -> None:
    raw = await RawClient.connect(hub.port)
    raw.send_json({"op": "subscribe", "args": ["ticker:BTCUSDT", "app:gone"]})
    assert (await raw.read_json())["args"] == ["ticker:BTCUSDT", "app:gone"]
    assert hub.node.demand.count("ticker:BTCUSDT") == 1
    raw.close()  # TCP reset, no close frame

    async def released() -> bool:
        stats = await hub.stats()
        return bool(stats["connections"] == 1 and "app:gone" not in stats["channels"]
                    and hub.node.demand.count("ticker:BTCUSDT") == 0)

    await _wait_for(released)
    await assert_alive(hub, watcher)


# -- inbound rate ----------------------------------------------------------------------------


@pytest.mark.hub_settings(server={"max_inbound_rate": 5})
async def test_over_the_rate_gets_errors_but_stays_open(hub: Hub) -> None:
    ws = await hub.connect()
    # 5 in the burst are allowed, the 2 after are refused, which is not yet a flood.
    for i in range(7):
        await ws.send(orjson.dumps({"id": i, "op": "ping"}).decode())
    replies = [await recv_json(ws) for _ in range(7)]
    assert [r["op"] for r in replies[:5]] == ["pong"] * 5
    assert [r["id"] for r in replies[:5]] == list(range(5))
    for err in replies[5:]:
        assert err["op"] == "error" and err["code"] == "RATE_LIMIT_EXCEEDED"
        assert err["message"] == "More than 5 messages per second; this one was dropped."
    assert (await hub.stats())["rate_limited"] == 2

    # The bucket refills: after a pause the same session is served again.
    async def served() -> bool:
        await asyncio.sleep(0.25)  # pacing, not synchronisation: a faster poll spends tokens
        reply = await call(ws, {"op": "ping"})
        return bool(reply["op"] == "pong")

    await _wait_for(served)


@pytest.mark.hub_settings(server={"max_inbound_rate": 5})
async def test_flood_over_twice_the_rate_closes_4009(hub: Hub, watcher: ClientConnection,
                                                     ) -> None:
    ws = await hub.connect()
    for i in range(30):
        await ws.send(orjson.dumps({"id": i, "op": "ping"}).decode())
    code, seen = await expect_close(ws)
    assert code == 4009
    pongs = [m for m in seen if m["op"] == "pong"]
    errors = [m["code"] for m in seen if m["op"] == "error"]
    assert len(pongs) >= 5
    # Refused ones are answered until the refusals pass the rate; the last says why it closes.
    assert errors and set(errors) == {"RATE_LIMIT_EXCEEDED"}
    assert seen[-1]["op"] == "error" and "Flooding" in seen[-1]["message"]
    stats = await hub.stats()
    assert stats["rate_limited"] >= 6
    await assert_alive(hub, watcher)


# -- connection limits -----------------------------------------------------------------------


@pytest.mark.hub_settings(server={"max_connections": 2})
async def test_server_full_closes_4003(hub: Hub) -> None:
    first = await hub.connect()
    await subscribe(first, "app:watch")
    await hub.connect()
    third = await hub.connect()
    code, seen = await expect_close(third)
    assert code == 4003
    assert seen == [{"op": "error", "code": "LIMIT_EXCEEDED",
                     "message": "Server full: 2 connections."}]
    await assert_alive(hub, first)
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        text = await resp.text()
    assert re.search(r"^cryptowire_rejected_connections_total 1\.0$", text, re.M)

    # Once the refused one is gone, there is room for one again.
    async def counted_out() -> bool:
        return len(hub.node.hub.sessions) == 2

    await _wait_for(counted_out)
    await first.close()

    async def room() -> bool:
        return len(hub.node.hub.sessions) == 1

    await _wait_for(room)
    again = await hub.connect()
    assert (await call(again, {"op": "ping"}))["op"] == "pong"


@pytest.mark.hub_settings(server={"max_connections_per_key": 1})
async def test_too_many_connections_for_one_key_closes_4003(hub: Hub) -> None:
    key, _ = await hub.create_key("bot", ("read",))
    other, _ = await hub.create_key("other", ("read",))
    first = await hub.connect(headers={"X-API-Key": key})
    await subscribe(first, "app:watch")
    second = await hub.connect(headers={"X-API-Key": key})
    code, seen = await expect_close(second)
    assert code == 4003
    assert seen == [{"op": "error", "code": "LIMIT_EXCEEDED",
                     "message": "Too many connections for this API key (max 1)."}]
    # Authenticating an open session with the busy key is refused the same way.
    ws = await hub.connect()
    await ws.send(orjson.dumps({"id": 1, "op": "auth", "args": [key]}).decode())
    code, seen = await expect_close(ws)
    assert code == 4003
    assert seen == [{"id": 1, "op": "error", "code": "LIMIT_EXCEEDED",
                     "message": "Too many connections for this API key (max 1)."}]
    # Other keys count separately.
    other_ws = await hub.connect(headers={"X-API-Key": other})
    assert (await call(other_ws, {"op": "ping"}))["op"] == "pong"
    await assert_alive(hub, first)


@pytest.mark.hub_settings(server={"max_connections_per_key": 2})
async def test_anonymous_clients_count_per_address(hub: Hub) -> None:
    a = await hub.connect()
    await hub.connect()
    third = await hub.connect()
    code, seen = await expect_close(third)
    assert code == 4003
    assert seen[0]["message"] == "Too many connections for this address (max 2)."
    assert (await call(a, {"op": "ping"}))["op"] == "pong"


@pytest.mark.hub_settings(server={"allowed_origins": ["https://good.example"]})
async def test_origin_not_allowed_is_refused_before_upgrade(hub: Hub) -> None:
    from websockets.exceptions import InvalidStatus

    with pytest.raises(InvalidStatus) as info:
        await hub.connect(origin="https://evil.example")
    assert info.value.response.status_code == 403
    ok = await hub.connect(origin="https://good.example")
    assert (await call(ok, {"op": "ping"}))["op"] == "pong"


# -- revoked keys ----------------------------------------------------------------------------


async def test_revoke_via_rest_closes_live_sessions_4010_at_once(
    hub: Hub, watcher: ClientConnection
) -> None:
    admin, _ = await hub.create_key("admin", ("admin",))
    key, record = await hub.create_key("doomed", ("read",))
    a = await hub.connect(headers={"X-API-Key": key})
    b = await hub.connect()
    assert (await call(b, {"op": "auth", "args": [key]}))["success"] is True
    await subscribe(a, "app:x")
    async with hub.http.delete(f"{hub.url}/api/v1/keys/{record.id}",
                               headers={"X-API-Key": admin}) as resp:
        assert resp.status == 200
        body = await resp.json()
    # Closed by the request itself, not by a later poll.
    assert body == {"revoked": record.id, "sessions_closed": 2}
    for ws in (a, b):
        code, _ = await expect_close(ws)
        assert code == 4010
    # The key no longer opens a session.
    c = await hub.connect(headers={"X-API-Key": key})
    code, seen = await expect_close(c)
    assert code == 4001 and seen[0]["code"] == "UNAUTHORIZED"
    await assert_alive(hub, watcher)


async def test_revoke_by_prefix_via_rest(hub: Hub) -> None:
    admin, _ = await hub.create_key("admin", ("admin",))
    key, record = await hub.create_key("doomed", ("read",))
    ws = await hub.connect(headers={"X-API-Key": key})
    async with hub.http.delete(f"{hub.url}/api/v1/keys/{record.prefix}",
                               headers={"X-API-Key": admin}) as resp:
        assert resp.status == 200
        assert (await resp.json())["sessions_closed"] == 1
    code, _ = await expect_close(ws)
    assert code == 4010


async def test_revoke_in_the_store_by_another_process_closes_within_5s(
    hub: Hub, watcher: ClientConnection
) -> None:
    key, record = await hub.create_key("doomed", ("read",))
    ws = await hub.connect(headers={"X-API-Key": key})
    await subscribe(ws, "app:x")
    # What `cryptowire keys revoke` does: its own store connection to the same database.
    other = await SqlStore.open(hub.node.settings.store.url)
    try:
        assert await other.revoke_key(record.id)
    finally:
        await other.close()
    code, _ = await expect_close(ws, timeout=5.0)
    assert code == 4010
    await assert_alive(hub, watcher)


# -- slow consumer ---------------------------------------------------------------------------


async def _metric(hub: Hub, name: str) -> float:
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        text = await resp.text()
    match = re.search(rf"^{name}(?:_total)? (\S+)$", text, re.M)
    assert match, f"{name} not in /metrics"
    return float(match.group(1))


@pytest.mark.hub_settings(server={"outbound_buffer_bytes": 64 * 1024})
async def test_slow_consumer_is_cut_and_200_others_get_everything(hub: Hub) -> None:
    channel = "app:firehose"
    n_clients = 200
    clients = await asyncio.gather(*(hub.connect() for _ in range(n_clients)))
    replies = await asyncio.gather(*(subscribe(ws, channel) for ws in clients))
    assert all(r["args"] == [channel] for r in replies)

    # The slow one: a bare TCP client with a tiny receive window that stops reading.
    slow = await RawClient.connect(hub.port, rcvbuf=4096)
    slow.send_json({"op": "subscribe", "args": [channel]})
    assert (await slow.read_json())["op"] == "subscribe"
    slow.pause()

    received: list[list[int]] = [[] for _ in clients]
    last_seen = [0] * n_clients
    progress = asyncio.Event()

    async def reader(i: int, ws: ClientConnection) -> None:
        async for raw in ws:
            msg = orjson.loads(raw)
            received[i].append(msg["offset"])
            last_seen[i] = msg["offset"]
            progress.set()
            if msg["data"].get("end"):
                return

    readers = [asyncio.create_task(reader(i, ws)) for i, ws in enumerate(clients)]
    payload = "x" * 4000
    burst = 4  # 16 KB per burst, well under the 64 KiB bound of a client that keeps up
    published: list[int] = []
    after_close = 0
    try:
        async with asyncio.timeout(60):
            while after_close < 5:
                for _ in range(burst):
                    pub = await hub.publish(channel, {"pad": payload})
                    published.append(pub.offset)
                # Pace by the healthy clients (a slow one must not hold this up).
                while min(last_seen) < published[-1]:
                    progress.clear()
                    await progress.wait()
                if hub.node.hub.stats.slow_consumer_closes:
                    after_close += 1
                assert len(published) < 5000, "the client that never reads was never cut"
            end = await hub.publish(channel, {"end": True})
            published.append(end.offset)
            await asyncio.gather(*readers)
    finally:
        for task in readers:
            task.cancel()

    stats = await hub.stats()
    assert stats["slow_consumer_closes"] == 1  # the raw client, and nobody else
    assert await _metric(hub, "cryptowire_slow_consumer_closes") == 1.0
    # Every healthy client got every message, in order, none missed, none twice.
    for offsets in received:
        assert offsets == list(range(published[0], published[-1] + 1))
    # The slow client's connection is gone (closed after its pending data, or aborted).
    slow.resume()
    code = await slow.read_to_end(timeout=10)
    assert code in (None, 4008)
    slow.close()

    async def only_healthy_left() -> bool:
        return len(hub.node.hub.sessions) == n_clients

    await _wait_for(only_healthy_left)


# -- shutdown --------------------------------------------------------------------------------


async def test_shutdown_closes_sessions_1001(hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    a = await hub.connect()
    b = await hub.connect()
    await subscribe(a, "ticker:BTCUSDT")
    key, _ = await hub.create_key()
    c = await hub.connect(headers={"X-API-Key": key})
    stopping = asyncio.create_task(hub.stop())
    for ws in (a, b, c):
        code, _ = await expect_close(ws)
        assert code == 1001
        assert ws.close_reason == "Server shutting down"
    await asyncio.wait_for(stopping, 10)
    assert not hub.node.hub.sessions
    with pytest.raises(OSError):
        await hub.connect()
