"""Helpers of the client tests: a hub that restarts on the same port, a publisher, a collector.

:class:`RestartableHub` runs ``cryptowire.server.app.create_app(Node(...))`` behind aiohttp's
``AppRunner`` on a loopback port chosen at the first start; :meth:`RestartableHub.restart`
stops that app (sessions get 1001) and starts a *new* node and app on the same port and the
same SQLite store, so API keys survive but the in-memory history (and its epoch) does not,
exactly like a restarted ``cryptowire serve``. Events are published the way applications do:
``POST /api/v1/publish`` with an admin key.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from cryptowire.app.node import Node
from cryptowire.client import Client, ClientEvent, Message
from cryptowire.server.app import create_app
from cryptowire.settings import Settings, load_settings

#: Bound for anything that should happen "soon" on loopback (reconnects included).
TIMEOUT = 10.0
#: Fast reconnects for tests; the client's defaults are 0.5 s doubling up to 30 s.
FAST = {"backoff_base_s": 0.05, "backoff_max_s": 0.5}


def hub_settings(directory: Path, **overrides: Any) -> Settings:
    config = directory / "cryptowire.toml"
    config.touch()  # keeps a stray ./cryptowire.toml out
    settings: dict[str, Any] = {
        "store": {"url": f"sqlite+aiosqlite:///{directory / 'cryptowire.db'}"},
        "bus": {"url": "memory://"},
        "demo": {"mode": "off"},
        "bybit": {"enabled": False},
        "evm": {"enabled": False},
        "server": {"shutdown_grace_s": 1.0},
    }
    return load_settings(config, **{**settings, **overrides})


class RestartableHub:
    """One hub address whose process (node + app) can be replaced."""

    def __init__(self, directory: Path, http: aiohttp.ClientSession, **overrides: Any) -> None:
        self.directory = directory
        self.overrides = overrides
        self.http = http
        self.port = 0
        self.node: Node | None = None
        self.runner: web.AppRunner | None = None
        self.admin_key = ""
        self.starts = 0

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    async def start(self) -> None:
        assert self.runner is None, "already running"
        node = Node(hub_settings(self.directory, **self.overrides))
        runner = web.AppRunner(create_app(node), shutdown_timeout=1.0)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.port = runner.addresses[0][1]
        self.node, self.runner = node, runner
        self.starts += 1
        if not self.admin_key:
            assert node.store is not None
            self.admin_key, _ = await node.store.create_key("test-admin", ["admin"])

    async def stop(self) -> None:
        runner, self.runner, self.node = self.runner, None, None
        if runner is not None:
            await runner.cleanup()

    async def restart(self) -> None:
        await self.stop()
        await self.start()

    async def create_key(self, name: str, scopes: list[str]) -> tuple[str, Any]:
        assert self.node is not None and self.node.store is not None
        return await self.node.store.create_key(name, scopes)

    async def publish(self, channel: str, data: Any) -> dict[str, Any]:
        """``POST /api/v1/publish``; the position the hub gave the event."""
        async with self.http.post(f"http://127.0.0.1:{self.port}/api/v1/publish",
                                  json={"channel": channel, "data": data},
                                  headers={"X-API-Key": self.admin_key}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            position: dict[str, Any] = body["positions"][0]
            return position


    async def publish_many(self, channel: str, datas: list[Any]) -> list[dict[str, Any]]:
        """One ``POST /api/v1/publish`` with a list: all or nothing, in order."""
        async with self.http.post(f"http://127.0.0.1:{self.port}/api/v1/publish",
                                  json=[{"channel": channel, "data": d} for d in datas],
                                  headers={"X-API-Key": self.admin_key}) as resp:
            body = await resp.json()
            assert resp.status == 200, body
            positions: list[dict[str, Any]] = body["positions"]
            return positions


async def publish_numbers(hub: RestartableHub, channel: str, count: int,
                          interval_s: float, first: int = 1,
                          log: dict[int, float] | None = None) -> None:
    """Publish ``{"n": first..first+count-1}`` in order; retry an event while the hub is down.
    ``log`` gets the loop time at which each ``n`` was accepted."""
    loop = asyncio.get_running_loop()
    for n in range(first, first + count):
        while True:
            try:
                await hub.publish(channel, {"n": n})
                if log is not None:
                    log[n] = loop.time()
                break
            except (aiohttp.ClientError, OSError, AssertionError):
                await asyncio.sleep(0.02)
        await asyncio.sleep(interval_s)


class Collector:
    """Drains a client in the background, keeping everything it yields."""

    def __init__(self, client: Client) -> None:
        self.client = client
        self.items: list[ClientEvent] = []
        self.times: list[float] = []  # loop time at which each item was yielded
        self.error: BaseException | None = None
        self._changed = asyncio.Event()
        self.task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        try:
            async for item in self.client:
                self.items.append(item)
                self.times.append(asyncio.get_running_loop().time())
                self._changed.set()
        except Exception as exc:
            self.error = exc
            self._changed.set()

    def messages(self, channel: str | None = None) -> list[Message]:
        return [m for m in self.items
                if isinstance(m, Message) and (channel is None or m.channel == channel)]

    def of(self, kind: type[Any]) -> list[Any]:
        return [i for i in self.items if isinstance(i, kind)]

    async def wait_for(self, predicate: Callable[[Collector], bool],
                       timeout: float = TIMEOUT) -> None:
        async with asyncio.timeout(timeout):
            while not predicate(self):
                if self.error is not None:
                    raise AssertionError(f"client iteration failed: {self.error!r}")
                self._changed.clear()
                await self._changed.wait()

    async def stop(self) -> None:
        self.task.cancel()
        await asyncio.gather(self.task, return_exceptions=True)
