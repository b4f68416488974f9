"""The node (app/) builds, owns and closes every part: one store, one watchlist admin, the
RFQ rates; and a ``memory://`` hub never loads redis-py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from cryptowire.app.node import Node
from cryptowire.server.rest_tokens import admin_for
from cryptowire.settings import Settings, load_settings
from cryptowire.store.sql import SqlStore

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    config = tmp_path / "cryptowire.toml"
    config.touch()
    return load_settings(config, **{
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'h.db'}"},
        "demo": {"mode": "off"}, "bybit": {"enabled": False},
        "server": {"shutdown_grace_s": 0.5}, **extra})


@pytest.fixture(params=["memory", "redis"])
def bus(request: pytest.FixtureRequest) -> dict[str, str]:
    if request.param == "memory":
        return {"url": "memory://"}
    url = request.getfixturevalue("redis_url")
    return {"url": url, "prefix": request.getfixturevalue("prefix")}


async def test_the_node_closes_the_token_admin_pools_and_the_rates_client(
        tmp_path: Path, bus: dict[str, str]) -> None:
    # The chain has an RPC URL but the watchers are off: the REST/native admin reads the
    # chain through pools of its own (on Redis too, where the EVM source is wrapped).
    chain = {"id": 31337, "name": "anvil", "rpc_urls": ["http://127.0.0.1:9"]}
    node = Node(settings_for(tmp_path, bus=bus, evm={"enabled": False, "chains": [chain]},
                             rfq={"cryptocompare_url": "http://127.0.0.1:9"}))
    await node.start()
    try:
        admin = admin_for(node)
        pool = await admin.pool(node.settings.evm.chains[0])
        rpc_session = pool._session
        assert rpc_session is not None and not rpc_session.closed
        await node.rates.prepare("BTC", "USDT")
        rates_session = getattr(node.rates, "_session", None)
        assert rates_session is not None and not rates_session.closed
    finally:
        await node.stop()
    assert rpc_session.closed
    assert rates_session.closed


async def test_the_evm_source_uses_the_nodes_one_store(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    opened: list[str] = []
    real_open = SqlStore.open.__func__  # type: ignore[attr-defined]

    async def counting_open(cls: type[SqlStore], url: str, *args: Any, **kw: Any) -> SqlStore:
        opened.append(url)
        store: SqlStore = await real_open(cls, url, *args, **kw)
        return store

    monkeypatch.setattr(SqlStore, "open", classmethod(counting_open))
    node = Node(settings_for(tmp_path, evm={"enabled": True}))
    await node.start()
    try:
        assert "evm" in [s.name for s in node.sources]
        assert len(opened) == 1  # migrations ran once, one connection pool
    finally:
        await node.stop()


def test_a_memory_bus_hub_never_imports_redis(tmp_path: Path) -> None:
    script = textwrap.dedent(f"""
        import asyncio, sys
        from pathlib import Path
        from aiohttp import web
        from cryptowire.app.node import Node
        from cryptowire.server.app import create_app
        from cryptowire.settings import load_settings

        async def main():
            config = Path({str(tmp_path / "cryptowire.toml")!r})
            config.touch()
            settings = load_settings(
                config, store={{"url": "sqlite+aiosqlite:///{tmp_path}/m.db"}},
                bus={{"url": "memory://"}}, demo={{"mode": "on"}},
                bybit={{"enabled": False}}, server={{"shutdown_grace_s": 0.2}})
            runner = web.AppRunner(create_app(Node(settings)))
            await runner.setup()  # starts the node
            await runner.cleanup()

        asyncio.run(main())
        print("redis" in sys.modules, sorted(m for m in sys.modules if m.startswith("redis"))[:3])
    """)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         timeout=120, cwd=ROOT, env=env)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().startswith("False"), out.stdout
