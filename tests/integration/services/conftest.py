"""Fixtures: a running cryptowire app (demo source, SQLite store) for the seed 004 tests."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from tests.integration.hubkit import serve
from tests.integration.services.services_hub import RunningHub, fast_settings

from cryptowire.app.node import Node


@pytest.fixture
async def hub_factory(tmp_path: Path) -> AsyncIterator[Callable[..., Awaitable[RunningHub]]]:
    started: list[RunningHub] = []

    async def start(**overrides: Any) -> RunningHub:
        node = Node(fast_settings(tmp_path, **overrides))
        runner, port = await serve(node)
        hub = RunningHub(node, port, runner)
        started.append(hub)
        return hub

    yield start
    for hub in started:
        await hub.runner.cleanup()


@pytest.fixture
async def hub(hub_factory: Callable[..., Awaitable[RunningHub]]) -> RunningHub:
    return await hub_factory()
