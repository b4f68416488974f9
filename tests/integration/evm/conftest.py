"""Fixtures of the on-chain tests (helpers in ``evmhub.py``): a real anvil node with the
project's contracts deployed, and real cryptowire apps watching it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import ClientSession
from tests.integration.evm.evmhub import EvmHub, HubFactory, evm_settings
from tests.integration.hubkit import serve
from tests.peers.anvil import AnvilNode, Dex

from cryptowire.app.node import Node


@pytest.fixture
async def anvil() -> AsyncIterator[AnvilNode]:
    node = AnvilNode()
    await node.start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture
async def dex(anvil: AnvilNode) -> AsyncIterator[Dex]:
    d = await Dex(anvil.url).setup(2)
    try:
        yield d
    finally:
        await d.close()


@pytest.fixture
async def evm_hub_factory(tmp_path: Path, dex: Dex, anvil: AnvilNode
                          ) -> AsyncIterator[HubFactory]:
    hubs: list[EvmHub] = []
    http = ClientSession()

    async def start(rpc_urls: list[str] | None = None, **extra: Any) -> EvmHub:
        directory = tmp_path / f"hub{len(hubs)}"
        directory.mkdir()
        settings = evm_settings(directory, dex, rpc_urls or [anvil.url], **extra)
        node = Node(settings)
        runner, port = await serve(node, shutdown_timeout=2.0)
        hub = EvmHub(node=node, runner=runner, port=port, http=http)
        hubs.append(hub)
        return hub

    try:
        yield start
    finally:
        for hub in hubs:
            for sock in hub.sockets:
                await sock.close()
            await hub.runner.cleanup()
        await http.close()
