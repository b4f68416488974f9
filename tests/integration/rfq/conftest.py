"""The RFQ tests' hub: demo tickers, SQLite, settings sections overridden per test."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.integration.hubkit import serve_app

from cryptowire.app.node import Node
from cryptowire.server.app import create_app
from cryptowire.settings import load_settings

#: ``await start(rfq={...}, server={...})`` -> ``(node, "ws://.../rfq")``.
StartHub = Callable[..., Awaitable[tuple[Node, str]]]


@pytest.fixture
async def rfq_hub_with(tmp_path: Path) -> AsyncIterator[StartHub]:
    """Start hubs (demo tickers every 50 ms, SQLite, no Bybit) with settings sections
    overridden; each is cleaned up after the test."""
    runners: list[web.AppRunner] = []

    async def start(**sections: Any) -> tuple[Node, str]:
        config = tmp_path / "cryptowire.toml"
        config.touch()
        node = Node(load_settings(config, store={"url": f"sqlite+aiosqlite:///{tmp_path}/h.db"},
                                  demo={"mode": "on", "interval_s": 0.05},
                                  demand={"linger_s": 0.05}, bybit={"enabled": False},
                                  **sections))
        runner, port = await serve_app(create_app(node))
        runners.append(runner)
        return node, f"ws://127.0.0.1:{port}/rfq"

    try:
        yield start
    finally:
        for runner in runners:
            await runner.cleanup()
