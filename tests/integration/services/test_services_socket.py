"""Seed 004 services against a running app: the seed's own client, paths, demand, REST."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from tests.integration.hubkit import serve_app
from tests.integration.services.seed004_client import CryptoWebSocketClient
from tests.integration.services.services_hub import RunningHub
from tests.waiting import eventually
from websockets.asyncio.client import ClientConnection, connect

from cryptowire.core.channels import SERVICES

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


async def test_the_seed_documents_python_client_works_unmodified(
        hub: RunningHub, capsys: pytest.CaptureFixture[str]) -> None:
    client = CryptoWebSocketClient(base_url=hub.ws)
    seen: list[dict[str, Any]] = []
    got: dict[str, asyncio.Future[dict[str, Any]]] = {
        k: asyncio.get_running_loop().create_future()
        for k in ("market_data", "whale_tracking", "status", "pong")}
    original = client.handle_message

    async def handle_message(message: dict[str, Any]) -> None:
        seen.append(message)
        kind = message.get("type")
        if kind in ("status", "pong") and not got[kind].done():
            got[kind].set_result(message)
        await original(message)

    client.handle_message = handle_message  # type: ignore[method-assign]

    async def handle_market_data(data: dict[str, Any]) -> None:
        print(f"Prices: {data.get('prices')}")
        if len(data.get("prices", {})) == 2 and not got["market_data"].done():
            got["market_data"].set_result(data)  # the first may come before any ticker

    async def handle_whale_tracking(data: dict[str, Any]) -> None:
        print(f"Large transactions: {data.get('large_transactions')}")
        if not got["whale_tracking"].done():
            got["whale_tracking"].set_result(data)

    client.register_handler("market_data", handle_market_data)
    client.register_handler("whale_tracking", handle_whale_tracking)

    async def on_connected() -> None:
        await client.subscribe("market_data")
        await client.subscribe("whale_tracking")
        await client.get_status()
        await client.send({"action": "ping", "data": {"custom": "data"}})
        await client.subscribe("weather")  # not a service
        await client.send({"action": "dance"})

    client.on_connected = on_connected  # type: ignore[method-assign]
    task = asyncio.create_task(client.connect("/ws/master"))
    try:
        async with asyncio.timeout(TIMEOUT):
            market = await got["market_data"]
            whales = await got["whale_tracking"]
            status = await got["status"]
            pong = await got["pong"]
            while sum(1 for m in seen if m.get("type") == "error") < 2:
                await asyncio.sleep(0.02)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)

    first = seen[0]
    assert first["type"] == "connection_established"
    assert first["client_id"] == first["data"]["client_id"]
    assert seen[1]["type"] == "welcome" and seen[1]["service"] == "system"
    assert set(market["prices"]) == {"bitcoin", "ethereum"}  # the seed's data.prices.bitcoin
    assert all(isinstance(p, float | int) for p in market["prices"].values())  # JSON numbers
    assert market["symbols"] == {"bitcoin": "BTCUSDT", "ethereum": "ETHUSDT"}
    assert market["source"] == "demo"
    assert market["timestamp"].endswith("Z")
    assert isinstance(whales["large_transactions"], list)
    assert status["data"]["client_id"] == first["client_id"]
    assert status["data"]["subscriptions"] == ["market_data", "whale_tracking"]
    assert status["data"]["total_clients"] == 1
    assert pong["data"] == {"custom": "data"}
    errors = [m["data"] for m in seen if m.get("type") == "error"]
    assert errors[0]["message"] == "Invalid service: weather"
    assert "market_data" in errors[0]["available_services"]
    assert errors[1]["message"] == "Unknown action: dance"
    assert "get_status" in errors[1]["supported_actions"]
    confirmations = [m for m in seen if m.get("type") == "subscription_confirmed"]
    assert [c["data"]["service"] for c in confirmations] == ["market_data", "whale_tracking"]
    assert all(m["timestamp"].endswith("Z") for m in seen)
    out = capsys.readouterr().out
    assert f"Client ID: {first['client_id']}" in out
    assert "Error: Invalid service: weather" in out and "Prices: {'bitcoin': " in out


async def test_market_and_whale_numbers_are_json_numbers_with_the_sources_digits(
        hub: RunningHub) -> None:
    async with connect(f"{hub.ws}/ws/market_data") as market, \
            connect(f"{hub.ws}/ws/whale_tracking") as whales:
        async with asyncio.timeout(TIMEOUT):
            while True:
                raw = await market.recv()
                msg = json.loads(raw)
                if msg.get("type") == "update" and len(msg["data"]["prices"]) == 2:
                    break
            while True:
                whale_raw = await whales.recv()
                whale = json.loads(whale_raw)
                if whale.get("type") == "update" and whale["data"]["large_transactions"]:
                    break
    # The demo quotes 2-decimal strings: the number keeps both digits (a float would not
    # always: "66000.10" -> 66000.1).
    assert re.search(r'"prices":\{"bitcoin":\d+\.\d{2},"ethereum":\d+\.\d{2}\}', raw), raw
    assert re.search(r'"volumes":\{"bitcoin":\d+(\.\d+)?,"ethereum":\d+(\.\d+)?\}', raw), raw
    data = whale["data"]
    assert '"alert_threshold":0,' in whale_raw  # services.whale_min_paired_amount
    assert data["alert_thresholds"] == {"swap_paired_amount": 0, "burn_token_amount": 0}
    assert isinstance(data["total_volume"], float | int)
    assert all(isinstance(tx["value"], float | int) for tx in data["large_transactions"])
    assert re.search(r'"total_volume":\d+(\.\d+)?,', whale_raw), whale_raw
    assert all(isinstance(w["volume"], float | int) for w in data["whale_wallets"])


async def test_all_sends_the_seeds_auto_subscribed_frame(hub: RunningHub) -> None:
    async with connect(f"{hub.ws}/ws/all") as ws:
        assert (await recv_json(ws))["type"] == "connection_established"
        assert (await recv_json(ws))["type"] == "subscription_confirmed"
        auto = await recv_json(ws)
    assert auto["service"] == "system" and auto["type"] == "auto_subscribed"
    assert auto["data"] == {"message": "Automatically subscribed to all services",
                            "subscription": "all"}
    assert auto["timestamp"].endswith("Z")


async def test_bare_ws_says_nothing_first_unless_greet_004(
        hub_factory: Callable[..., Awaitable[RunningHub]],
        capsys: pytest.CaptureFixture[str]) -> None:
    quiet = await hub_factory()
    async with connect(f"{quiet.ws}/ws") as ws:  # native clients: no unexpected first frame
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(ws.recv(), 0.3)
        await ws.send(json.dumps({"op": "ping"}))
        assert (await recv_json(ws))["op"] == "pong"
    greeting = await hub_factory(server={"greet_004": True})
    async with connect(f"{greeting.ws}/ws") as ws:
        hello = await recv_json(ws)
        assert hello["type"] == "connection_established" and hello["service"] == "system"
        assert hello["client_id"] == hello["data"]["client_id"]
        assert hello["data"]["endpoint"] == "/ws" and hello["available_services"] == \
            list(SERVICES)
        await ws.send(json.dumps({"action": "get_status"}))
        status = await until(ws, lambda m: m.get("type") == "status")
        assert status["data"]["client_id"] == hello["client_id"]
    # The document's Python client on /ws: it subscribes only once greeted.
    client = CryptoWebSocketClient(base_url=greeting.ws)
    got: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()

    async def handle_market_data(data: dict[str, Any]) -> None:
        if data.get("prices") and not got.done():
            got.set_result(data)

    async def on_connected() -> None:
        await client.subscribe("market_data")

    client.register_handler("market_data", handle_market_data)
    client.on_connected = on_connected  # type: ignore[method-assign]
    task = asyncio.create_task(client.connect("/ws"))
    try:
        market = await asyncio.wait_for(got, TIMEOUT)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert "bitcoin" in market["prices"] or "ethereum" in market["prices"]
    assert "Client ID: client_" in capsys.readouterr().out


async def test_services_run_only_while_subscribed(hub: RunningHub) -> None:
    services = hub.services()
    _, top = await hub.node.broker.position("service:health_checker")
    assert services.active() == [] and top == 0
    async with connect(f"{hub.ws}/ws/health") as ws:
        hello = await recv_json(ws)
        assert hello["type"] == "connection_established"
        confirmed = await recv_json(ws)
        assert confirmed["type"] == "subscription_confirmed"
        assert confirmed["data"]["subscriptions"] == ["health_checker"]
        update = await until(ws, lambda m: m.get("type") == "update")
        assert update["service"] == "health_checker"
        assert update["data"]["providers"]["demo"]["state"] == "up"
        assert services.active() == ["health_checker"]
        await ws.send(json.dumps({"action": "unsubscribe", "service": "health_checker"}))
        gone = await until(ws, lambda m: m.get("type") == "unsubscription_confirmed")
        assert gone["data"]["subscriptions"] == []
        # The linger (0.05 s) passes, then the job's task is gone: nothing can publish.
        await eventually(lambda: services.active() == [] and services.runner.active() == [],
                         what="services stopped")
        _, stopped_at = await hub.node.broker.position("service:health_checker")
        # A round trip on the same socket: an update published before it would come first.
        await ws.send(json.dumps({"action": "ping"}))
        reply = await recv_json(ws)
        assert reply["type"] != "update", reply
        _, later = await hub.node.broker.position("service:health_checker")
        assert later == stopped_at  # nothing published without subscribers


async def test_all_endpoint_says_what_is_not_configured(hub: RunningHub) -> None:
    async with connect(f"{hub.ws}/ws/all") as ws:
        await recv_json(ws)
        confirmed = await recv_json(ws)
        assert confirmed["data"]["auto_subscribed"] is True
        assert confirmed["data"]["subscriptions"] == list(SERVICES)
        updates: dict[str, dict[str, Any]] = {}
        async with asyncio.timeout(TIMEOUT):
            while len(updates) < len(SERVICES):
                msg = await recv_json(ws)
                if msg.get("type") == "update":
                    updates.setdefault(msg["service"], msg["data"])
    for name in ("news", "sentiment", "huggingface", "pool_manager", "rpc_nodes",
                 "explorers", "onchain"):
        assert updates[name]["status"] == "not_configured", name
        assert updates[name]["reason"]
    assert "demo" in updates["onchain"]["reason"]
    assert "status" not in updates["market_data"]
    assert updates["persistence"]["backend"] == "sqlite"
    assert updates["persistence"]["tables"]["api_keys"] == 0
    assert updates["scheduler"]["total_jobs"] == len(SERVICES)


@pytest.mark.parametrize("path, service", [
    ("/ws/pool_status", "pool_manager"), ("/ws/scheduler_status", "scheduler"),
    ("/ws/ai", "huggingface"), ("/ws/persistence", "persistence"),
])
async def test_single_service_paths(hub: RunningHub, path: str, service: str) -> None:
    async with connect(f"{hub.ws}{path}") as ws:
        assert (await recv_json(ws))["available_services"] == [service]
        assert (await recv_json(ws))["data"]["subscriptions"] == [service]
        update = await until(ws, lambda m: m.get("type") == "update")
        assert update["service"] == service


async def test_rest_stats_services_endpoints(hub: RunningHub) -> None:
    async with connect(f"{hub.ws}/ws/data") as ws, aiohttp.ClientSession() as http:
        client_id = (await recv_json(ws))["client_id"]
        await ws.send(json.dumps({"action": "subscribe", "service": "market_data"}))
        await until(ws, lambda m: m.get("type") == "subscription_confirmed")
        async with http.get(f"{hub.http}/ws/stats") as resp:
            stats = await resp.json()
        async with http.get(f"{hub.http}/ws/services") as resp:
            services = await resp.json()
        async with http.get(f"{hub.http}/ws/endpoints") as resp:
            endpoints = await resp.json()
    assert stats["status"] == "success" and stats["timestamp"].endswith("Z")
    assert stats["data"]["total_connections"] == 1
    assert stats["data"]["clients"][0]["client_id"] == client_id
    assert stats["data"]["subscription_counts"] == {"market_data": 1}
    catalog = services["data"]["services"]
    assert catalog["data_collection"]["market_data"]["update_interval"] == 0.2
    assert catalog["monitoring"]["health_checker"]["endpoint"] == "/ws/health"
    assert catalog["data_collection"]["explorers"]["endpoint"] == "/ws/data"
    assert services["data"]["total_services"] == 12
    urls = {e["path"]: e["url"] for e in endpoints["data"]["endpoints"]}
    assert urls["/ws/master"] == f"{hub.ws}/ws/master" and "/ws/ai" in urls


async def test_native_socket_understands_the_action_form(hub: RunningHub) -> None:
    async with connect(f"{hub.ws}/ws") as ws:
        await ws.send(json.dumps({"action": "subscribe", "service": "persistence"}))
        confirmed = await recv_json(ws)
        assert confirmed["type"] == "subscription_confirmed"
        update = await until(ws, lambda m: m.get("type") == "update")
        assert update["service"] == "persistence" and "data" in update
        await ws.send(json.dumps({"action": "ping", "data": [1, 2]}))
        assert (await until(ws, lambda m: m.get("type") == "pong"))["data"] == [1, 2]
        await ws.send(json.dumps({"action": "fly"}))
        err = await until(ws, lambda m: m.get("type") == "error")
        assert err["data"]["message"] == "Unknown action: fly"
        await ws.send(json.dumps({"op": "ping"}))  # native ops still work on the socket
        assert (await until(ws, lambda m: m.get("op") == "pong"))["op"] == "pong"
    async with connect(f"{hub.ws}/ws") as ws:  # native subscribers get native frames
        await ws.send(json.dumps({"op": "subscribe", "args": ["service:scheduler"]}))
        assert (await recv_json(ws))["success"] is True
        frame = await until(ws, lambda m: m.get("channel") == "service:scheduler")
        assert frame["source"] == "services" and frame["data"]["total_jobs"] == 12


RSS = b"""<?xml version="1.0"?><rss version="2.0"><channel><title>Local Wire</title>
<item><title>Bitcoin soars as investors celebrate great gains</title><link>http://x/1</link>
<pubDate>Mon, 11 Nov 2024 10:25:00 GMT</pubDate><category>Markets</category></item>
<item><title>Exchange hack: users lose funds in terrible exploit</title><link>http://x/2</link>
<pubDate>Mon, 11 Nov 2024 09:25:00 GMT</pubDate></item></channel></rss>"""


async def test_news_and_sentiment_from_a_real_feed_server(
        hub_factory: Callable[..., Awaitable[RunningHub]]) -> None:
    hits = 0

    async def feed(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.Response(body=RSS, content_type="application/rss+xml")

    app = web.Application()
    app.router.add_get("/rss", feed)
    runner, port = await serve_app(app)
    try:
        hub = await hub_factory(services={"news_feeds": [f"http://127.0.0.1:{port}/rss",
                                                         f"http://127.0.0.1:{port}/missing"]})
        async with connect(f"{hub.ws}/ws/news") as news, \
                connect(f"{hub.ws}/ws/sentiment") as sentiment:
            n = await until(news, lambda m: m.get("type") == "update")
            s = await until(sentiment, lambda m: m.get("type") == "update")
    finally:
        await runner.cleanup()
    articles = n["data"]["articles"]
    assert [a["title"] for a in articles][0] == "Bitcoin soars as investors celebrate great gains"
    assert articles[0]["published_at"] == "2024-11-11T10:25:00.000Z"
    assert n["data"]["sources"] == ["Local Wire"] and n["data"]["categories"] == ["Markets"]
    assert n["data"]["feeds"][f"http://127.0.0.1:{port}/missing"]["status"] == "error"
    assert s["data"]["headlines_scored"] == 2
    assert s["data"]["positive"] == 1 and s["data"]["negative"] == 1
    assert hits == 1  # one fetch shared by news and sentiment
