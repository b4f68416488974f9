"""Fixtures for multi-process cluster tests: Redis (shared or private) and hub processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.cluster.cluster_peer import HubProcess, demo_upstream

pytestmark = pytest.mark.integration


@pytest.fixture
def upstream() -> dict[str, str]:
    """The upstream every node is configured with (demo now; the Bybit replay peer later)."""
    return demo_upstream()


@pytest.fixture
def hubs(tmp_path: Path, prefix: str,
         upstream: dict[str, str]) -> Iterator[Callable[..., Any]]:
    """``hubs(n, redis_url)`` -> ``n`` started hub processes (not yet ready)."""
    procs: list[HubProcess] = []

    def start(n: int, url: str) -> list[HubProcess]:
        out = []
        for _ in range(n):
            hub = HubProcess(tmp_path, url, prefix, upstream, f"node{len(procs)}")
            hub.start()
            procs.append(hub)
            out.append(hub)
        return out

    yield start
    for hub in procs:
        hub.stop()
