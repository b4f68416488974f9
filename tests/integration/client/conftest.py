"""Fixtures of the client tests: a real, restartable hub (see ``clienthub.py``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from tests.integration.client.clienthub import RestartableHub


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
async def hub(tmp_path: Path, http: aiohttp.ClientSession) -> AsyncIterator[RestartableHub]:
    hub = RestartableHub(tmp_path, http)
    await hub.start()
    try:
        yield hub
    finally:
        await hub.stop()
