"""Seed 002 against the real Postgres: trigger -> NOTIFY -> JWT sockets, pg: channels, REST.

Each test gets its own database (``pg_url``, dropped afterwards); the hub's store is that
database, so the LISTEN connection, the mirror table and the trigger all live in it.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import jwt
import pytest
from sqlalchemy.engine import make_url
from tests.integration.hubkit import serve
from tests.waiting import subscribed
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from cryptowire.app.node import Node
from cryptowire.settings import load_settings
from cryptowire.sources.pgnotify import PgNotifySource

pytestmark = pytest.mark.integration
TIMEOUT = 5.0
SECRET = "econia_0000000000000000000000000_test"

# The seed's DSS published rows this way (see docs/postgres.md).
SCHEMA = """
CREATE TABLE fill_events (
  txn_version numeric(20) NOT NULL, event_idx numeric(20) NOT NULL,
  emit_address text NOT NULL, time timestamptz NOT NULL, maker_address text NOT NULL,
  maker_custodian_id numeric(20) NOT NULL, maker_order_id numeric(39) NOT NULL,
  maker_side boolean NOT NULL, market_id numeric(20) NOT NULL, price numeric(20) NOT NULL,
  sequence_number_for_trade numeric(20) NOT NULL, size numeric(20) NOT NULL,
  taker_address text NOT NULL, taker_custodian_id numeric(20) NOT NULL,
  taker_order_id numeric(39) NOT NULL, taker_quote_fees_paid numeric(20) NOT NULL,
  PRIMARY KEY (txn_version, event_idx));
CREATE FUNCTION notify_fill_event() RETURNS trigger AS $$
BEGIN
  PERFORM pg_notify('econiaws', json_build_object('channel', 'fill_event',
                                                  'payload', NEW)::text);
  RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER fill_events_notify AFTER INSERT ON fill_events
  FOR EACH ROW EXECUTE FUNCTION notify_fill_event();
"""


def token(channels: list[str], exp: float | None = None, mode: str = "r",
          secret: str = SECRET) -> str:
    claims: dict[str, Any] = {"mode": mode, "channels": channels}
    if exp is not None:
        claims["exp"] = int(exp)
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class PgHub:
    node: Node
    port: int
    db: asyncpg.Connection

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def source(self) -> PgNotifySource:
        return next(s for s in self.node.sources if isinstance(s, PgNotifySource))

    async def insert(self, n: int, market_id: int = 1) -> None:
        await self.db.execute(
            "INSERT INTO fill_events VALUES ($1, 0, '0x1', '1970-01-01T00:00:00Z', '0x1', 0, "
            "340282366920938463463374607431768211455, true, $2, 1500, 0, 25, '0x2', 0, 7, 3)",
            n, market_id)


@pytest.fixture
async def pg_hub(pg_url: str, tmp_path: Path) -> AsyncIterator[PgHub]:
    plain = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    db = await asyncpg.connect(plain)
    await db.execute(SCHEMA)
    settings = load_settings(
        None, store={"url": pg_url}, demo={"mode": "off"}, bybit={"enabled": False},
        services={"enabled": False}, auth={"jwt_secret": SECRET}, demand={"linger_s": 0.05},
        pgnotify={"enabled": True, "mirror": True, "keepalive_s": 1.0, "backoff_cap_s": 0.5})
    node = Node(settings)
    runner, port = await serve(node)
    hub = PgHub(node, port, db)
    try:
        await wait_up(hub)
        yield hub
    finally:
        await runner.cleanup()
        await db.close()


async def wait_up(hub: PgHub, not_pid: int | None = None) -> float:
    started = time.monotonic()
    async with asyncio.timeout(TIMEOUT):
        while True:
            src = hub.source()
            if src.status().state == "up" and src.backend_pid not in (None, not_pid):
                return time.monotonic() - started
            await asyncio.sleep(0.02)


async def recv_text(ws: ClientConnection, timeout: float = TIMEOUT) -> str:
    msg = await asyncio.wait_for(ws.recv(), timeout)
    assert isinstance(msg, str)
    return msg


async def test_a_trigger_row_reaches_jwt_socket_native_channel_and_rest(pg_hub: PgHub) -> None:
    async with connect(f"{pg_hub.ws}/pg/{token(['fill_event'])}") as jwt_ws, \
            connect(f"{pg_hub.ws}/pg/fill_event/{token(['fill_event', 'x'])}") as path_ws, \
            connect(f"{pg_hub.ws}/pg/{token(['cancel_order_event'])}") as other_ws, \
            connect(f"{pg_hub.ws}/ws") as native_ws, \
            connect(f"{pg_hub.ws}/ws") as anonymous_ws:
        # Postgres rows are an application's own: no anonymous reads on any socket
        await anonymous_ws.send(json.dumps({"op": "subscribe", "args": ["pg:fill_event"]}))
        refused = json.loads(await recv_text(anonymous_ws))
        assert refused["args"] == [] and "API key" in refused["rejected"][0]["reason"]
        assert pg_hub.node.store is not None
        key, _ = await pg_hub.node.store.create_key("reader", ["read"])
        await native_ws.send(json.dumps({"op": "auth", "args": [key]}))
        assert json.loads(await recv_text(native_ws))["success"] is True
        await native_ws.send(json.dumps({"op": "subscribe", "args": ["pg:fill_event"]}))
        assert json.loads(await recv_text(native_ws))["success"] is True
        # The JWT sockets subscribe right after the upgrade: the two on fill_event, the
        # native one, and the one on cancel_order_event.
        await subscribed(pg_hub.node.hub, "pg:fill_event", 3)
        await subscribed(pg_hub.node.hub, "pg:cancel_order_event", 1)
        await pg_hub.insert(1)
        text = await recv_text(jwt_ws)
        assert await recv_text(path_ws) == text
        native = json.loads(await recv_text(native_ws))
        async with aiohttp.ClientSession(headers={"X-API-Key": key}) as http:
            async with http.get(f"http://127.0.0.1:{pg_hub.port}/fill_events") as resp:
                assert resp.status == 200
                rest = await resp.read()
        # Its token does not allow fill_event: a notification of its own channel sent after
        # the row is the next thing it receives (one source, delivered in order).
        mark = json.dumps({"channel": "cancel_order_event", "payload": {"mark": 1}})
        await pg_hub.db.execute("SELECT pg_notify('econiaws', $1)", mark)
        assert json.loads(await recv_text(other_ws))["payload"] == {"mark": 1}
    prefix = '{"channel":"fill_event","payload":'
    assert text.startswith(prefix) and text.endswith("}")
    payload = text[len(prefix):-1]
    assert rest == f"[{payload}]".encode()  # the socket payload is one REST row, byte for byte
    row = json.loads(payload)
    assert native["channel"] == "pg:fill_event" and native["data"] == row
    assert list(row) == ["txn_version", "event_idx", "emit_address", "time", "maker_address",
                         "maker_custodian_id", "maker_order_id", "maker_side", "market_id",
                         "price", "sequence_number_for_trade", "size", "taker_address",
                         "taker_custodian_id", "taker_order_id", "taker_quote_fees_paid"]
    # numeric(39) beyond 64 bits travels as the digits Postgres wrote
    assert '"maker_order_id":340282366920938463463374607431768211455' in payload
    assert row["time"] == "1970-01-01T00:00:00+00:00" and row["maker_side"] is True


async def test_rest_mirror_limit_and_filters(pg_hub: PgHub) -> None:
    for n, market in ((1, 1), (2, 2), (3, 1)):
        await pg_hub.insert(n, market)
    base = f"http://127.0.0.1:{pg_hub.port}/fill_events"
    assert pg_hub.node.store is not None  # the mirror is read like pg: channels: with a key
    key, _ = await pg_hub.node.store.create_key("reader", ["read"])
    async with aiohttp.ClientSession(headers={"X-API-Key": key}) as http:
        async with asyncio.timeout(TIMEOUT):
            while True:
                async with http.get(base) as resp:
                    rows = await resp.json()
                if len(rows) == 3:
                    break
                await asyncio.sleep(0.05)
        assert [r["txn_version"] for r in rows] == [1, 2, 3]  # newest last
        async with http.get(base, params={"limit": "1"}) as resp:
            assert [r["txn_version"] for r in await resp.json()] == [3]
        async with http.get(base, params={"market_id": "1"}) as resp:
            assert [r["txn_version"] for r in await resp.json()] == [1, 3]
        async with http.get(base, params={"market_id": "eq.2", "maker_side": "true"}) as resp:
            assert [r["txn_version"] for r in await resp.json()] == [2]
        async with http.get(base, params={"limit": "nope"}) as resp:
            assert resp.status == 400
        async with http.get(base, params={"market id": "1"}) as resp:  # not a column name
            assert resp.status == 400 and (await resp.json())["error"]["code"] == "INVALID_ARGS"
        async with http.get(f"http://127.0.0.1:{pg_hub.port}/cancel_order_events") as resp:
            assert await resp.json() == []


async def test_rest_mirror_applies_the_rule_of_pg_channels(pg_hub: PgHub) -> None:
    """Issue 10 item 1: the mirror is read like pg:<channel> on /ws: an API key with the read
    scope, or a JWT naming the channel; else 401 (no key) or 403 (no right)."""
    assert pg_hub.node.store is not None
    reader, _ = await pg_hub.node.store.create_key("reader", ["read"])
    pusher, _ = await pg_hub.node.store.create_key("pusher", ["publish"])
    soon = time.time() + 60
    cases = [
        ({}, 401),
        ({"X-API-Key": pusher}, 403),
        ({"X-API-Key": reader}, 200),
        ({"Authorization": f"Bearer {token(['fill_event'], exp=soon)}"}, 200),
        ({"Authorization": f"Bearer {token(['cancel_order_event'], exp=soon)}"}, 403),
        ({"Authorization": f"Bearer {token(['fill_event'])}"}, 401),  # no exp: /pg only
    ]
    async with aiohttp.ClientSession() as http:
        for headers, status in cases:
            async with http.get(f"http://127.0.0.1:{pg_hub.port}/fill_events",
                                headers=headers) as resp:
                assert resp.status == status, (headers, await resp.text())
                if status != 200:
                    assert "error" in await resp.json()


async def test_a_seed_002_bearer_jwt_reads_its_channel_on_ws(pg_hub: PgHub) -> None:
    bearer = {"Authorization": f"Bearer {token(['fill_event'], exp=time.time() + 60)}"}
    async with connect(f"{pg_hub.ws}/ws", additional_headers=bearer) as ws:
        await ws.send(json.dumps({"op": "subscribe",
                                  "args": ["pg:fill_event", "pg:cancel_order_event"]}))
        reply = json.loads(await recv_text(ws))
        assert reply["args"] == ["pg:fill_event"]
        assert reply["rejected"][0]["arg"] == "pg:cancel_order_event"
        await pg_hub.insert(7)
        data = json.loads(await recv_text(ws))
        assert data["channel"] == "pg:fill_event" and data["data"]["txn_version"] == 7


async def test_bad_tokens_get_http_400_on_the_upgrade(pg_hub: PgHub) -> None:
    other = "another_secret_of_at_least_32_chars!"
    for path in ("/pg/not.a.jwt",
                 f"/pg/{token(['fill_event'], secret=other)}",  # wrong signature
                 f"/pg/{token(['fill_event'], exp=time.time() - 10)}",  # expired already
                 f"/pg/{token(['fill_event'], mode='w')}",  # cannot read
                 f"/pg/cancel_order_event/{token(['fill_event'])}"):  # channel not granted
        with pytest.raises(InvalidStatus) as err:
            async with connect(f"{pg_hub.ws}{path}"):
                pass
        assert err.value.response.status_code == 400, path


async def test_expiry_closes_the_socket_with_3001(pg_hub: PgHub) -> None:
    async with connect(f"{pg_hub.ws}/pg/{token(['fill_event'], exp=time.time() + 2)}") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    assert ws.close_code == 3001


async def test_listener_comes_back_after_pg_terminate_backend(pg_hub: PgHub) -> None:
    src = pg_hub.source()
    pid = src.backend_pid
    async with connect(f"{pg_hub.ws}/pg/{token(['fill_event'])}") as ws:
        await subscribed(pg_hub.node.hub, "pg:fill_event")
        assert await pg_hub.db.fetchval("SELECT pg_terminate_backend($1)", pid) is True
        took = await wait_up(pg_hub, not_pid=pid)
        assert took < 5.0
        assert src.status().reconnects == 1
        await pg_hub.insert(42)
        frame = json.loads(await recv_text(ws))
    assert frame["channel"] == "fill_event" and frame["payload"]["txn_version"] == 42


async def test_a_failing_subscribe_closes_1011_and_releases_the_session(
        pg_hub: PgHub, monkeypatch: pytest.MonkeyPatch) -> None:
    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("subscribe failed")

    monkeypatch.setattr(pg_hub.node.hub, "subscribe", broken)
    async with connect(f"{pg_hub.ws}/pg/{token(['fill_event'])}") as ws:
        with pytest.raises(ConnectionClosed):
            await asyncio.wait_for(ws.recv(), TIMEOUT)
    async with asyncio.timeout(TIMEOUT):
        while pg_hub.node.hub.sessions:
            await asyncio.sleep(0.02)
    assert pg_hub.node.connections_by_key == {}
    assert ws.close_code == 1011


async def test_client_pings_on_a_jwt_socket_count_toward_the_inbound_rate(
        pg_hub: PgHub) -> None:
    from tests.integration.server.conftest import RawClient, mask_frame

    rate = pg_hub.node.settings.server.max_inbound_rate
    client = await RawClient.connect(pg_hub.port, f"/pg/{token(['fill_event'])}")
    client.write(b"".join(mask_frame(b"p", opcode=0x9) for _ in range(3 * rate)))
    pongs, code = await client.count_until_close(0xA)
    client.close()
    # The bucket's burst (and what it refilled meanwhile), then closed as a flood.
    assert rate <= pongs < 2 * rate
    assert code == 4009
