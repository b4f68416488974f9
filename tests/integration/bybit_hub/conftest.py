"""Fixtures of the hub-level Bybit tests: the replay peer and running hubs (see support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from tests.integration.bybit_hub.support import BybitHub, HubFactory, bybit_hub_settings
from tests.integration.hubkit import serve, stop_all
from tests.peers.bybit_peer import BybitPeer

from cryptowire.app.node import Node
from cryptowire.sources.bybit import BybitSource


@pytest.fixture
async def peer() -> AsyncIterator[BybitPeer]:
    async with BybitPeer(interval_s=0.01) as server:
        yield server


@pytest.fixture
async def hub_factory(tmp_path: Path, peer: BybitPeer) -> AsyncIterator[HubFactory]:
    hubs: list[BybitHub] = []
    http = ClientSession()

    async def start(*, source: dict[str, Any] | None = None, use_peer: bool = True,
                    **overrides: Any) -> BybitHub:
        directory = tmp_path / f"hub{len(hubs)}"
        directory.mkdir()
        settings = bybit_hub_settings(directory, peer if use_peer else None, **overrides)
        sources = None
        if source is not None:
            sources = [BybitSource(peer.settings(), **source)]
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
