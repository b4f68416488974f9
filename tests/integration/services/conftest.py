"""Fixtures: a running cryptowire app (demo source, SQLite store) for the seed 004 tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.integration.services.services_hub import RunningHub, fast_settings

from cryptowire.core.node import Node
from cryptowire.server.app import create_app


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunningHub]]]:
    started: list[RunningHub] = []

    async def start(**overrides: Any) -> RunningHub:
        node = Node(fast_settings(tmp_path, **overrides))
        runner = web.AppRunner(create_app(node))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        hub = RunningHub(node, port, runner)
        started.append(hub)
        return hub

    yield start
    for hub in started:
        await hub.runner.cleanup()


@pytest.fixture
async def hub(hub_factory: Callable[..., Awaitable[RunningHub]]) -> RunningHub:
    return await hub_factory()
