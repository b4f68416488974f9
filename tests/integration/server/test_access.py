"""One access rule on every path (issue 10, items 2, 3, 15 and 18; docs/security.md): each
test is a hole the adversarial review found, over real sockets and HTTP."""

from __future__ import annotations

import time
from typing import Any

import jwt
import orjson
import pytest
from tests.integration.server.conftest import Hub, call, expect_close, recv_json, subscribe

pytestmark = pytest.mark.integration

SECRET = "s" * 40


def seed002(channels: list[str], *, exp: bool = True, **extra: Any) -> str:
    """A /pg token of the seed 002 shape."""
    claims: dict[str, Any] = {"mode": "r", "channels": channels, **extra}
    if exp:
        claims["exp"] = int(time.time()) + 60
    return jwt.encode(claims, SECRET, algorithm="HS256")


async def rfq_current(ws: Any, channel: str) -> dict[str, Any]:
    await ws.send(orjson.dumps({"current": channel}).decode())
    while True:
        msg: dict[str, Any] = await recv_json(ws)
        if "handshake" not in msg:
            return msg


# -- item 2: /rfq `current` reads through the same check as subscribe ----------------------


async def test_rfq_current_of_a_pg_channel_is_refused_to_anonymous(hub: Hub) -> None:
    await hub.publish("pg:fill_event", {"secret": 1})
    await hub.publish("app:feed", {"public": 1})
    ws = await hub.connect("/rfq")
    refused = await rfq_current(ws, "pg:fill_event")
    assert refused["status"] == "error" and "data" not in refused, refused
    assert refused["error"]["channel"] == "pg:fill_event"
    assert "API key" in refused["error"]["message"]
    public = await rfq_current(ws, "app:feed")  # public channels still answer
    assert public["current"] == "app:feed" and public["data"] == {"public": 1}
    key, _ = await hub.create_key("reader", ("read",))
    keyed = await hub.connect("/rfq", query={"api_key": key})
    assert (await rfq_current(keyed, "pg:fill_event"))["data"] == {"secret": 1}


# -- item 18: scopes add to what anonymous may ---------------------------------------------


async def test_a_publish_only_key_reads_what_anonymous_reads(hub: Hub) -> None:
    key, _ = await hub.create_key("pusher", ("publish",))
    async with hub.http.get(f"{hub.url}/api/v1/tokens") as resp:
        assert resp.status == 200
    async with hub.http.get(f"{hub.url}/api/v1/tokens", headers={"X-API-Key": key}) as resp:
        assert resp.status == 200, await resp.text()
    ws = await hub.connect(headers={"X-API-Key": key})
    assert (await subscribe(ws, "app:feed"))["args"] == ["app:feed"]


@pytest.mark.hub_settings(server={"anonymous_read": False})
async def test_an_rfq_key_is_served_on_rfq(hub: Hub) -> None:
    key, _ = await hub.create_key("desk", ("rfq",))
    ws = await hub.connect("/rfq", query={"api_key": key})
    assert "handshake" in await recv_json(ws)
    anonymous = await hub.connect("/rfq")
    code, _ = await expect_close(anonymous)
    assert code == 4001


# -- item 3: a JWT's claims bound it -----------------------------------------------------


@pytest.mark.hub_settings(auth={"jwt_secret": SECRET})
async def test_a_seed_002_jwt_reads_its_pg_channels_and_nothing_else(hub: Hub) -> None:
    bearer = {"Authorization": f"Bearer {seed002(['fill_event'])}"}
    ws = await hub.connect(headers=bearer)
    reply = await subscribe(ws, "pg:fill_event", "pg:cancel_order_event", "ticker:BTCUSDT")
    reasons = {r["arg"]: r["reason"] for r in reply["rejected"]}
    # this hub has no pg source: its own channel passes access and is refused by routing
    assert "does not name" not in reasons["pg:fill_event"], reasons
    assert "does not name" in reasons["pg:cancel_order_event"]
    assert "only the pg: channels it names" in reasons["ticker:BTCUSDT"]
    err = await call(ws, {"op": "publish", "args": [{"channel": "app:x", "data": 1}]})
    assert err["code"] == "FORBIDDEN"
    for path in ("/api/v1/tokens", "/stats", "/ws/stats"):
        async with hub.http.get(f"{hub.url}{path}", headers=bearer) as resp:
            assert resp.status == 403, path
    rfq = await hub.connect("/rfq", headers=bearer)
    code, _ = await expect_close(rfq)
    assert code == 4001


@pytest.mark.hub_settings(auth={"jwt_secret": SECRET})
async def test_jwt_scopes_count_only_when_the_hub_says_so(hub: Hub) -> None:
    scoped = jwt.encode({"sub": "dash", "scopes": ["read", "admin"],
                         "exp": int(time.time()) + 60}, SECRET, algorithm="HS256")
    async with hub.http.get(f"{hub.url}/api/v1/keys",
                            headers={"Authorization": f"Bearer {scoped}"}) as resp:
        assert resp.status == 401
        assert "auth.jwt_scopes" in (await resp.json())["error"]["message"]
    # the claims of a seed 002 token are what count, never its 'scopes'
    both = seed002(["fill_event"], scopes=["admin"])
    async with hub.http.get(f"{hub.url}/api/v1/keys",
                            headers={"Authorization": f"Bearer {both}"}) as resp:
        assert resp.status == 403


@pytest.mark.hub_settings(auth={"jwt_secret": SECRET})
async def test_a_jwt_without_exp_is_for_pg_sockets_only(hub: Hub) -> None:
    ws = await hub.connect(headers={"Authorization": f"Bearer {seed002(['x'], exp=False)}"})
    code, seen = await expect_close(ws)
    assert code == 4001 and "exp" in seen[0]["message"]


@pytest.mark.hub_settings(auth={"jwt_secret": SECRET, "jwt_require_exp": False})
async def test_jwt_require_exp_off_accepts_one_without(hub: Hub) -> None:
    ws = await hub.connect(headers={"Authorization": f"Bearer {seed002(['x'], exp=False)}"})
    assert (await subscribe(ws, "pg:x"))["rejected"][0]["arg"] == "pg:x"  # no pg source
    # ... refused by the source, not by access: a channel its token does not name is
    assert "does not name" in (await subscribe(ws, "pg:y"))["rejected"][0]["reason"]


# -- item 15: what anonymous clients see of the node when anonymous reading is off ------


@pytest.mark.hub_settings(server={"anonymous_read": False})
async def test_stats_need_a_key_and_detail_needs_admin(hub: Hub) -> None:
    reader, _ = await hub.create_key("reader", ("read",))
    admin, _ = await hub.create_key("ops", ("admin",))
    ws = await hub.connect(headers={"X-API-Key": reader})
    await subscribe(ws, "app:private_feed")
    await ws.send(orjson.dumps({"action": "subscribe", "service": "market_data"}).decode())
    async with hub.http.get(f"{hub.url}/ready") as resp:
        assert resp.status == 200  # stays open: load balancers probe it
    for path in ("/stats", "/ws/stats"):
        async with hub.http.get(f"{hub.url}{path}") as resp:
            assert resp.status == 401, path
    async with hub.http.get(f"{hub.url}/stats", headers={"X-API-Key": reader}) as resp:
        body = await resp.json()
    assert resp.status == 200 and body["channels"] >= 1 and "app:private_feed" not in str(body)
    async with hub.http.get(f"{hub.url}/ws/stats", headers={"X-API-Key": reader}) as resp:
        assert resp.status == 200 and "clients" not in (await resp.json())["data"]
    async with hub.http.get(f"{hub.url}/stats", headers={"X-API-Key": admin}) as resp:
        assert "app:private_feed" in (await resp.json())["channels"]
    async with hub.http.get(f"{hub.url}/ws/stats", headers={"X-API-Key": admin}) as resp:
        assert len((await resp.json())["data"]["clients"]) == 1


@pytest.mark.hub_settings(server={"anonymous_read": False})
async def test_persistence_service_needs_a_key(hub: Hub) -> None:
    ws = await hub.connect("/ws/persistence")
    code, _ = await expect_close(ws)
    assert code == 4001
    rfq = await hub.connect("/rfq")
    code, _ = await expect_close(rfq)
    assert code == 4001


@pytest.mark.hub_settings(server={"anonymous_read": False})
async def test_auth_as_a_lesser_key_drops_what_it_may_not_read(hub: Hub) -> None:
    reader, _ = await hub.create_key("reader", ("read",))
    pusher, _ = await hub.create_key("pusher", ("publish",))
    ws = await hub.connect(headers={"X-API-Key": reader})
    assert (await subscribe(ws, "app:feed"))["args"] == ["app:feed"]
    reply = await call(ws, {"op": "auth", "args": [pusher]})
    assert reply["success"] is True and reply["unsubscribed"] == ["app:feed"]
    await hub.publish("app:feed", {"n": 1})
    await ws.send(orjson.dumps({"op": "ping"}).decode())
    assert (await recv_json(ws))["op"] == "pong"  # and no data frame before it
    assert hub.node.hub.subscribers("app:feed") == 0
