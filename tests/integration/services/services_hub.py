"""A running cryptowire app (demo source, SQLite store) for the seed 004 tests (a module of
its own, so test files can import :class:`RunningHub` by a unique name)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web

from cryptowire.app.node import Node
from cryptowire.settings import Settings, load_settings


@dataclass
class RunningHub:
    node: Node
    port: int
    runner: web.AppRunner

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def services(self) -> Any:
        from cryptowire.sources.services import ServicesSource

        return next(s for s in self.node.sources if isinstance(s, ServicesSource))


def fast_settings(tmp_path: Path, **overrides: Any) -> Settings:
    services = {f"{name}_interval_s": 0.2 for name in (
        "market_data", "whale_tracking", "health_checker", "persistence", "scheduler")}
    services.update({"whale_min_paired_amount": "0", "whale_min_burn_amount": "0"})
    services.update(overrides.pop("services", {}))
    return load_settings(
        None, store={"url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
        demo={"mode": "on", "interval_s": 0.02}, demand={"linger_s": 0.05},
        services=services, **overrides)
