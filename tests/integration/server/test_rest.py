"""The HTTP surface on the same port: ops endpoints, the publish API and API keys."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from tests.integration.server.conftest import Hub, next_data, subscribe

pytestmark = pytest.mark.integration


async def _get(hub: Hub, path: str, **kwargs: Any) -> tuple[int, str, str]:
    async with hub.http.get(f"{hub.url}{path}", **kwargs) as resp:
        return resp.status, resp.headers.get("Content-Type", ""), await resp.text()


async def _post(hub: Hub, path: str, body: Any = None, *, key: str | None = None,
                raw: bytes | None = None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["X-API-Key"] = key
    data = raw if raw is not None else orjson.dumps(body)
    async with hub.http.post(f"{hub.url}{path}", data=data, headers=headers) as resp:
        return resp.status, await resp.json()


# -- ops endpoints ---------------------------------------------------------------------------


async def test_ready(hub: Hub) -> None:
    status, _, text = await _get(hub, "/ready")
    assert status == 200 and orjson.loads(text) == {"ready": True}


async def test_health_with_demo_names_store_bus_sources(hub: Hub) -> None:
    # Serving the demo is "degraded" with the reason, and HTTP 200: the hub serves what it
    # is configured to serve (503 is for what it cannot serve).
    status, ctype, text = await _get(hub, "/health")
    assert status == 200 and ctype.startswith("application/json")
    body = orjson.loads(text)
    assert body["status"] == "degraded"
    assert body["reasons"] == ["demo: synthetic data (demo mode)"]
    assert body["demo"] is True
    assert body["store"] == "ok"
    assert body["bus"] == {"type": "memory", "state": "ok"}
    assert body["sources"]["demo"]["state"] == "up"
    assert body["sources"]["demo"]["demo"] is True


async def test_health_is_503_when_the_store_is_down(hub: Hub) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    store = hub.node.store
    assert store is not None
    # Point the store at a database that cannot be opened (what a lost disk or a Postgres
    # outage looks like from here), then put it back.
    real = store._engine  # type: ignore[attr-defined]
    broken = create_async_engine("sqlite+aiosqlite:////nonexistent-dir/cw/x.db")
    store._engine = broken  # type: ignore[attr-defined]
    try:
        status, _, text = await _get(hub, "/health")
    finally:
        store._engine = real  # type: ignore[attr-defined]
        await broken.dispose()
    assert status == 503
    body = orjson.loads(text)
    assert body["status"] == "down" and body["store"] == "down"
    assert body["reasons"][0] == "store: down"
    status, _, text = await _get(hub, "/health")
    assert status == 200 and orjson.loads(text)["status"] == "degraded"  # the demo serves


async def test_stats(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "app:a", "ticker:BTCUSDT")
    await hub.publish("app:a", {"n": 1})
    await next_data(ws, "app:a")
    stats = await hub.stats()
    assert stats["connections"] == 1
    assert stats["subscriptions"] == 2
    assert stats["channels"]["app:a"] == 1 and stats["channels"]["ticker:BTCUSDT"] == 1
    assert stats["upstream_topics"] == {"ticker:BTCUSDT": 1}
    assert stats["messages_in"] >= 1
    assert stats["messages_out"] >= 1 and stats["publications"] >= 1
    assert stats["slow_consumer_closes"] == 0
    assert stats["sources"]["demo"]["state"] == "up"
    assert stats["bus"]["type"] == "memory"


async def test_metrics_prometheus_text(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "app:a")
    status, ctype, text = await _get(hub, "/metrics")
    assert status == 200 and ctype.startswith("text/plain")
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    assert values["cryptowire_connections"] == 1.0
    assert values["cryptowire_subscriptions"] == 1.0
    assert values["cryptowire_connections_total"] >= 1.0
    assert values["cryptowire_slow_consumer_closes_total"] == 0.0
    assert values["cryptowire_messages_in_total"] >= 1.0
    assert values['cryptowire_source_state{source="demo",state="up"}'] == 1.0
    # Each family is declared once (a duplicate TYPE line fails the whole scrape).
    types = re.findall(r"^# TYPE (\S+) ", text, re.M)
    assert len(types) == len(set(types))


async def test_openapi_json_lists_the_paths(hub: Hub) -> None:
    status, ctype, text = await _get(hub, "/openapi.json")
    assert status == 200 and ctype.startswith("application/json")
    doc = orjson.loads(text)
    assert doc["openapi"].startswith("3.")
    for path in ("/ready", "/health", "/stats", "/metrics", "/api/v1/publish",
                 "/api/v1/keys", "/api/v1/keys/{key_id}"):
        assert path in doc["paths"], path
    assert "post" in doc["paths"]["/api/v1/publish"]
    assert set(doc["paths"]["/api/v1/keys"]) == {"get", "post"}
    assert "delete" in doc["paths"]["/api/v1/keys/{key_id}"]
    # Every $ref resolves inside the document.
    for ref in re.findall(r'"\$ref":"#/components/schemas/([^"]+)"', text):
        assert ref in doc["components"]["schemas"], ref


async def test_docs_html(hub: Hub) -> None:
    # Swagger UI, served from this hub (vendored): every script and stylesheet is local.
    # (The e2e test opens it in Chromium: tests/e2e/test_docs.py.)
    status, ctype, text = await _get(hub, "/docs")
    assert status == 200 and ctype.startswith("text/html")
    assert "/openapi.json" in text and 'id="swagger-ui"' in text
    refs = re.findall(r'(?:src|href)="([^"]+)"', text)
    assert "/static/vendor/swagger-ui-bundle.js" in refs and "/static/docs.js" in refs
    for ref in refs:
        assert ref.startswith("/"), ref
        status, _, _ = await _get(hub, ref)
        assert status == 200, ref


async def test_info_names_the_socket(hub: Hub) -> None:
    status, _, text = await _get(hub, "/api/v1/info")
    assert status == 200
    body = orjson.loads(text)
    assert body["websocket"] == "/ws" and body["demo"] is True
    assert body["dashboard"] == "/"


# -- publish ---------------------------------------------------------------------------------


async def test_publish_single_event(hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    ws = await hub.connect()
    await subscribe(ws, "app:signals")
    status, body = await _post(hub, "/api/v1/publish",
                               {"channel": "app:signals", "data": {"px": "1.25"}}, key=key)
    assert status == 200
    assert body["published"] == 1
    [pos] = body["positions"]
    assert pos["channel"] == "app:signals" and pos["offset"] == 1
    msg = await next_data(ws, "app:signals")
    assert msg["data"] == {"px": "1.25"} and msg["offset"] == 1
    assert msg["epoch"] == pos["epoch"]


async def test_publish_batch_in_order(hub: Hub) -> None:
    key, _ = await hub.create_key("admin", ("admin",))
    ws = await hub.connect()
    await subscribe(ws, "app:a", "app:b")
    batch = [{"channel": "app:a", "data": i} if i % 2 else {"channel": "app:b", "data": i}
             for i in range(6)]
    status, body = await _post(hub, "/api/v1/publish", batch, key=key)
    assert status == 200 and body["published"] == 6
    got = [await next_data(ws) for _ in batch]
    assert [(m["channel"], m["data"]) for m in got] == [(b["channel"], b["data"]) for b in batch]


async def test_publish_a_large_valid_body(hub: Hub) -> None:
    # Larger than one socket read: the whole body must be read, not its first chunk.
    key, _ = await hub.create_key("pub", ("publish",))
    batch = [{"channel": "app:bulk", "data": {"i": i, "pad": "z" * 1000}} for i in range(500)]
    raw = orjson.dumps(batch)
    assert 400_000 < len(raw) < hub.node.settings.server.publish_max_bytes
    status, body = await _post(hub, "/api/v1/publish", raw=raw, key=key)
    assert status == 200, body
    assert body["published"] == 500


async def test_publish_a_body_that_arrives_in_pieces(hub: Hub) -> None:
    # A chunked upload whose pieces arrive apart: the body is every piece, not the first.
    key, _ = await hub.create_key("pub", ("publish",))
    raw = orjson.dumps([{"channel": "app:bulk", "data": {"i": i}} for i in range(50)])

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 100):
            yield raw[start:start + 100]
            await asyncio.sleep(0.005)

    async with hub.http.post(f"{hub.url}/api/v1/publish", data=pieces(),
                             headers={"X-API-Key": key,
                                      "Content-Type": "application/json"}) as resp:
        body = await resp.json()
        assert resp.status == 200, body
    assert body["published"] == 50


@pytest.mark.hub_settings(server={"publish_max_bytes": 2048})
async def test_publish_chunked_body_over_the_limit_is_413(hub: Hub) -> None:
    # No Content-Length to trust: the limit holds on the bytes read.
    key, _ = await hub.create_key("pub", ("publish",))
    raw = orjson.dumps({"channel": "app:x", "data": "y" * 4096})

    async def pieces() -> AsyncIterator[bytes]:
        for start in range(0, len(raw), 512):
            yield raw[start:start + 512]
            await asyncio.sleep(0.005)

    async with hub.http.post(f"{hub.url}/api/v1/publish", data=pieces(),
                             headers={"X-API-Key": key}) as resp:
        assert resp.status == 413
        assert (await resp.json())["error"]["code"] == "LIMIT_EXCEEDED"
    assert hub.node.broker.published == 0  # type: ignore[attr-defined]


@pytest.mark.parametrize(("body", "message"), [
    ({"channel": "ticker:BTCUSDT", "data": 1}, "only app:<name> channels"),
    ({"channel": "app:*", "data": 1}, "Item 0: Wildcards"),
    ({"channel": "app:x"}, 'Item 0: expected {"channel": "app:<name>", "data": ...}.'),
    ([{"channel": "app:x", "data": 1}, "nope"], "Item 1: expected"),
    (42, "Item 0: expected"),
])
async def test_publish_invalid_items_are_400_and_nothing_is_published(
    hub: Hub, body: Any, message: str
) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    status, reply = await _post(hub, "/api/v1/publish", body, key=key)
    assert status == 400
    assert reply["error"]["code"] == "INVALID_ARGS"
    assert message in reply["error"]["message"]
    assert hub.node.broker.published == 0  # type: ignore[attr-defined]


async def test_publish_invalid_json_is_400(hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    status, reply = await _post(hub, "/api/v1/publish", raw=b"{nope", key=key)
    assert status == 400 and reply["error"]["code"] == "INVALID_JSON"


async def test_publish_without_key_is_401(hub: Hub) -> None:
    status, reply = await _post(hub, "/api/v1/publish", {"channel": "app:x", "data": 1})
    assert status == 401 and reply["error"]["code"] == "UNAUTHORIZED"


async def test_publish_with_a_wrong_key_is_401(hub: Hub) -> None:
    status, reply = await _post(hub, "/api/v1/publish", {"channel": "app:x", "data": 1},
                                key="cw_aaaaaaaa_" + "A" * 43)
    assert status == 401 and reply["error"]["code"] == "UNAUTHORIZED"


async def test_publish_with_a_read_key_is_403(hub: Hub) -> None:
    key, _ = await hub.create_key("reader", ("read",))
    status, reply = await _post(hub, "/api/v1/publish", {"channel": "app:x", "data": 1},
                                key=key)
    assert status == 403 and reply["error"]["code"] == "FORBIDDEN"


@pytest.mark.hub_settings(server={"publish_max_bytes": 2048})
async def test_publish_body_over_the_limit_is_413(hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    body = {"channel": "app:x", "data": "y" * 4096}
    status, reply = await _post(hub, "/api/v1/publish", body, key=key)
    assert status == 413 and reply["error"]["code"] == "LIMIT_EXCEEDED"
    assert hub.node.broker.published == 0  # type: ignore[attr-defined]
    # Just under the limit is fine.
    status, _ = await _post(hub, "/api/v1/publish", {"channel": "app:x", "data": "y" * 1900},
                            key=key)
    assert status == 200


@pytest.mark.hub_settings(server={"publish_max_batch": 3})
async def test_publish_batch_over_the_limit_is_refused(hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    batch = [{"channel": "app:x", "data": i} for i in range(4)]
    status, reply = await _post(hub, "/api/v1/publish", batch, key=key)
    assert status == 413 and reply["error"]["code"] == "LIMIT_EXCEEDED"
    assert "At most 3 events" in reply["error"]["message"]


# -- keys ------------------------------------------------------------------------------------


async def test_keys_create_list_revoke_with_admin(hub: Hub) -> None:
    admin, admin_record = await hub.create_key("root", ("admin",))
    status, created = await _post(hub, "/api/v1/keys", {"name": "bot", "scopes": ["read"]},
                                  key=admin)
    assert status == 201
    assert created["name"] == "bot" and created["scopes"] == ["read"]
    assert created["key"].startswith(f"cw_{created['prefix']}_")
    assert created["revoked_at"] is None
    # The new key works on the socket.
    ws = await hub.connect(headers={"X-API-Key": created["key"]})
    assert (await subscribe(ws, "app:x"))["success"] is True

    async with hub.http.get(f"{hub.url}/api/v1/keys", headers={"X-API-Key": admin}) as resp:
        assert resp.status == 200
        listed = (await resp.json())["keys"]
    by_id = {k["id"]: k for k in listed}
    assert set(by_id) == {admin_record.id, created["id"]}
    assert all("key" not in k and "key_hash" not in k for k in listed)  # never the secret

    async with hub.http.delete(f"{hub.url}/api/v1/keys/{created['id']}",
                               headers={"Authorization": f"Bearer {admin}"}) as resp:
        assert resp.status == 200
        assert (await resp.json()) == {"revoked": created["id"], "sessions_closed": 1}
    async with hub.http.delete(f"{hub.url}/api/v1/keys/{created['id']}",
                               headers={"X-API-Key": admin}) as resp:
        assert resp.status == 404
    async with hub.http.get(f"{hub.url}/api/v1/keys?api_key={admin}") as resp:
        listed = (await resp.json())["keys"]
    assert [k["revoked_at"] is not None for k in listed if k["id"] == created["id"]] == [True]


@pytest.mark.parametrize("scopes", [("read",), ("publish",), ("read", "publish", "rfq")])
async def test_keys_rest_needs_admin(hub: Hub, scopes: tuple[str, ...]) -> None:
    key, record = await hub.create_key("weak", scopes)
    headers = {"X-API-Key": key}
    async with hub.http.get(f"{hub.url}/api/v1/keys", headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"]["code"] == "FORBIDDEN"
    status, body = await _post(hub, "/api/v1/keys", {"name": "x"}, key=key)
    assert status == 403
    async with hub.http.delete(f"{hub.url}/api/v1/keys/{record.id}", headers=headers) as resp:
        assert resp.status == 403
    assert not any(k.revoked for k in await hub.node.store.list_keys())  # type: ignore[union-attr]


async def test_keys_rest_without_key_is_401(hub: Hub) -> None:
    async with hub.http.get(f"{hub.url}/api/v1/keys") as resp:
        assert resp.status == 401
    status, _ = await _post(hub, "/api/v1/keys", {"name": "x"})
    assert status == 401
    async with hub.http.delete(f"{hub.url}/api/v1/keys/abc") as resp:
        assert resp.status == 401


@pytest.mark.parametrize("body", [
    {"scopes": ["read"]}, {"name": 5}, {"name": "x", "scopes": "read"},
    {"name": "x", "scopes": ["superuser"]}, {"name": "   "}, [],
])
async def test_keys_create_bad_body_is_400(hub: Hub, body: Any) -> None:
    admin, _ = await hub.create_key("root", ("admin",))
    status, reply = await _post(hub, "/api/v1/keys", body, key=admin)
    assert status == 400 and reply["error"]["code"] == "INVALID_ARGS"
