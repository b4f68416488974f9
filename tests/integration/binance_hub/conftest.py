"""Fixtures of the hub-level Binance tests: the Binance replay peer and a served node whose
sources are built from the settings as ``cryptowire serve`` builds them (the registry's
venues), with ``[binance]`` pointing at the peer."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp import ClientSession
from tests.integration.bybit_hub.support import BybitHub, bybit_hub_settings
from tests.integration.hubkit import serve, stop_all
from tests.peers.binance_peer import BinancePeer

from cryptowire.app.node import Node


@pytest.fixture
async def peer() -> AsyncIterator[BinancePeer]:
    async with BinancePeer(interval_s=0.01, ping_s=0.5) as server:
        yield server


@pytest.fixture
async def hub(tmp_path: Path, peer: BinancePeer) -> AsyncIterator[BybitHub]:
    http = ClientSession()
    settings = bybit_hub_settings(tmp_path, None,
                                  binance={"enabled": True, **peer.settings_values()})
    node = Node(settings)
    runner, port = await serve(node)
    served = BybitHub(node=node, runner=runner, port=port, http=http)
    try:
        yield served
    finally:
        await stop_all([served], http)
