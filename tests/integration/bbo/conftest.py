"""Fixtures of the bbo hub tests (helpers in support.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from tests.integration.bbo.support import Hub, HubFactory, InjectedBooks
from tests.integration.hubkit import serve, stop_all
from tests.peers.bybit_peer import BybitPeer

from cryptowire.app.node import Node
from cryptowire.core.source import Source
from cryptowire.settings import load_settings
from cryptowire.sources.bbo import BboSource


@pytest.fixture
async def peer() -> AsyncIterator[BybitPeer]:
    async with BybitPeer(interval_s=0.01) as server:
        yield server


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[HubFactory]:
    hubs: list[Hub] = []
    http = ClientSession()

    async def start(stale_after_ms: int = 10_000, refuse: dict[str, str] | None = None,
                    bybit: Source | None = None, retry_refused_s: float = 60.0,
                    bus: dict[str, str] | None = None) -> Hub:
        directory = tmp_path / f"hub{len(hubs)}"
        directory.mkdir()
        (directory / "cryptowire.toml").touch()
        settings = load_settings(
            directory / "cryptowire.toml",
            store={"url": f"sqlite+aiosqlite:///{directory / 'hub.db'}"},
            bus=bus or {"url": "memory://"}, demo={"mode": "off"}, bybit={"enabled": False},
            evm={"enabled": False}, services={"enabled": False}, demand={"linger_s": 0.05},
            bbo={"stale_after_ms": stale_after_ms})
        books = InjectedBooks(bybit=bybit, refuse=dict(refuse or {}))
        node = Node(settings, sources=[books])
        bbo = BboSource(settings.bbo, node)
        bbo.retry_refused_s = retry_refused_s
        node.sources.append(bbo)
        runner, port = await serve(node)
        hub = Hub(node=node, runner=runner, port=port, http=http)
        hub.books = books
        hubs.append(hub)
        return hub

    try:
        yield start
    finally:
        await stop_all(hubs, http)


