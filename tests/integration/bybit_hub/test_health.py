"""/health and /stats report the Bybit source; without Bybit the demo market serves."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import pytest
from tests.integration.bybit_hub.support import (
    TIMEOUT,
    BybitHub,
    HubFactory,
    recv_json,
    subscribe,
    wait_for,
)
from tests.peers.bybit_peer import BybitPeer

pytestmark = pytest.mark.integration


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def next_data(hub: BybitHub, channel: str) -> dict[str, Any]:
    ws = await hub.connect()
    reply = await subscribe(ws, channel)
    assert reply["args"] == [channel], reply
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = await recv_json(ws)
            if msg.get("channel") == channel:
                return msg  # type: ignore[no-any-return]


async def test_health_and_stats_show_the_bybit_source(hub: BybitHub, peer: BybitPeer) -> None:
    status, health = await hub.get("/health")
    assert status == 200 and health["status"] == "ok" and health["reasons"] == []
    assert health["demo"] is False
    # demo.mode off, bybit enabled (services off in these tests): BybitSource, and the
    # bbo source that consolidates the venues' books (it holds nothing until asked).
    assert set(health["sources"]) == {"bybit", "bbo"}
    assert health["sources"]["bbo"]["state"] == "up"
    assert health["sources"]["bybit"]["state"] == "up"
    assert "no topics" in health["sources"]["bybit"]["detail"]
    assert peer.connections_total["linear"] == 0  # nothing subscribed until asked

    msg = await next_data(hub, "ticker:BTCUSDT")
    assert msg["source"] == "bybit"
    stats = await hub.stats()
    bybit = stats["sources"]["bybit"]
    assert bybit["state"] == "up" and bybit["demo"] is False
    assert bybit["topics"] == 1 and bybit["messages"] >= 1 and bybit["errors"] == 0
    assert bybit["linear"]["url"] == peer.ws_url("linear")
    assert bybit["linear"]["state"] == "up" and bybit["linear"]["conn_id"]
    assert bybit["instruments"]["linear"]["symbols"] == len(peer.instruments["linear"])
    assert stats["upstream_topics"] == {"ticker:BTCUSDT": 1}
    status, health = await hub.get("/health")
    assert status == 200 and health["sources"]["bybit"]["last_message_ms"] is not None

    # Bybit goes away: the source says so in /health and /stats, and keeps retrying.
    await peer.close()

    async def state() -> str:
        return str((await hub.get("/health"))[1]["sources"]["bybit"]["state"])

    async with asyncio.timeout(TIMEOUT):
        while await state() != "down":
            await asyncio.sleep(0.05)
    status, health = await hub.get("/health")
    # no fallback (demo.mode off): the hub cannot serve what it is configured to serve
    assert status == 503 and health["status"] == "down"
    assert "connect failed" in health["sources"]["bybit"]["detail"]
    assert health["reasons"][0].startswith("bybit: down (")
    stats = await hub.stats()
    assert "connect failed" in stats["sources"]["bybit"]["linear"]["last_error"]
    assert stats["sources"]["bybit"]["topics"] == 1  # still wanted, re-sent on reconnect


async def test_without_bybit_auto_mode_serves_the_demo_market(hub_factory: HubFactory) -> None:
    port = closed_port()
    hub = await hub_factory(
        use_peer=False,
        demo={"mode": "auto", "interval_s": 0.05},
        bybit={"rest_url": f"http://127.0.0.1:{port}",
               "linear_url": f"ws://127.0.0.1:{port}/v5/public/linear",
               "spot_url": f"ws://127.0.0.1:{port}/v5/public/spot"},
    )
    msg = await next_data(hub, "ticker:BTCUSDT")
    assert msg["source"] == "demo"
    assert msg["data"]["symbol"] == "BTCUSDT"

    # Out of the box (demo auto, Bybit unreachable) the hub serves the demo market: that is
    # "degraded" with the reasons, HTTP 200, not 503.
    status, health = await hub.get("/health")
    assert status == 200 and health["status"] == "degraded", health
    assert health["reasons"][0].startswith("bybit: unreachable (")
    assert "demo: synthetic data (demo mode)" in health["reasons"]
    assert health["demo"] is True
    assert health["sources"]["bybit"]["state"] == "down"
    assert "unreachable" in health["sources"]["bybit"]["detail"]
    assert health["sources"]["demo"]["demo"] is True
    stats = await hub.stats()
    assert stats["sources"]["bybit"]["fallback"] == "demo"
    assert stats["sources"]["bybit"]["probe_url"].startswith(f"http://127.0.0.1:{port}/")
    await wait_for(lambda: hub.node.demo_active, "demo mode")


async def test_once_bybit_answers_new_channels_go_to_it(hub_factory: HubFactory) -> None:
    port = closed_port()
    hub = await hub_factory(
        use_peer=False,
        demo={"mode": "auto", "interval_s": 0.05},
        bybit={"rest_url": f"http://127.0.0.1:{port}",
               "linear_url": f"ws://127.0.0.1:{port}/v5/public/linear",
               "spot_url": f"ws://127.0.0.1:{port}/v5/public/spot"},
    )
    assert (await next_data(hub, "ticker:BTCUSDT"))["source"] == "demo"
    async with BybitPeer(interval_s=0.01, port=port) as late:
        fallback = hub.node.sources[0]
        await wait_for(lambda: getattr(fallback, "reachable", False),
                       "the probe to find Bybit", TIMEOUT)
        msg = await next_data(hub, "ticker:ETHUSDT")
        assert msg["source"] == "bybit"
        assert late.subscribe_count("tickers.ETHUSDT") == 1
        # The channel the demo market took keeps it until its last subscriber leaves.
        assert late.subscribe_count("tickers.BTCUSDT") == 0
        _, health = await hub.get("/health")
        assert health["sources"]["bybit"]["state"] == "up"
