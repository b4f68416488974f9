"""Fixtures of the hub-level OKX tests: the OKX replay peer and hubs serving it.

``hub_factory(**source)`` serves a node (SQLite store in ``tmp_path``, memory bus,
``demo.mode = "off"``, Bybit and Binance off, ``[okx]`` pointing at the peer); without
``source`` the node builds its sources from the settings as ``cryptowire serve`` does, with
``source={...}`` it runs ``ExchangeSource(declare(okx settings), **source)`` (short
ping/watchdog periods for the stall tests).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from tests.integration.bybit_hub.support import BybitHub, HubFactory, bybit_hub_settings
from tests.integration.hubkit import serve, stop_all
from tests.peers.okx_peer import OkxPeer

from cryptowire.app.node import Node
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.venues.okx.venue import declare


def okx_section(peer: OkxPeer) -> dict[str, Any]:
    return {"enabled": True, "public_url": peer.ws_url("public"),
            "business_url": peer.ws_url("business"), "rest_url": peer.rest_url}


@pytest.fixture
async def peer() -> AsyncIterator[OkxPeer]:
    async with OkxPeer(interval_s=0.01) as server:
        yield server


@pytest.fixture
async def hub_factory(tmp_path: Path, peer: OkxPeer) -> AsyncIterator[HubFactory]:
    hubs: list[BybitHub] = []
    http = ClientSession()

    async def start(*, source: dict[str, Any] | None = None, **overrides: Any) -> BybitHub:
        directory = tmp_path / f"hub{len(hubs)}"
        directory.mkdir()
        overrides = {"bybit": {"enabled": False}, "binance": {"enabled": False},
                     "okx": okx_section(peer), **overrides}
        settings = bybit_hub_settings(directory, None, **overrides)
        sources = None
        if source is not None:
            sources = [ExchangeSource(declare(settings.okx), settings.okx, **source)]
        node = Node(settings, sources=sources)
        runner, port = await serve(node)
        hub = BybitHub(node=node, runner=runner, port=port, http=http)
        hubs.append(hub)
        return hub

    try:
        yield start
    finally:
        await stop_all(hubs, http)


@pytest.fixture
async def hub(hub_factory: HubFactory) -> BybitHub:
    return await hub_factory()
