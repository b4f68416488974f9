"""Helpers of the on-chain tests: the test hub's settings and handle, WebSocket helpers.

The fixtures (``anvil``, ``dex``, ``evm_hub_factory``) are in ``conftest.py``; a real anvil node
with the project's contracts deployed, and a real cryptowire app watching it (in-process, on a
free loopback port).

``evm_hub(rpc_urls=...)`` starts a node whose only chain is ``anvil`` (id 31337) polled every
50 ms with no confirmations; tokens are added through the same :class:`TokenAdmin` the admin
surfaces use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import ClientSession, ClientWebSocketResponse, web
from tests.peers.anvil import Dex

from cryptowire.app.node import Node
from cryptowire.settings import Settings, load_settings
from cryptowire.sources.evm import EvmSource

pytestmark = pytest.mark.integration

TIMEOUT = 10.0
CHAIN = "anvil"


def evm_settings(tmp_path: Path, dex: Dex, rpc_urls: list[str], **extra: Any) -> Settings:
    config = tmp_path / "cryptowire.toml"
    config.touch()
    chain = {"id": 31337, "name": CHAIN, "rpc_urls": rpc_urls, "block_interval_s": 0.05,
             "confirmations": 0, "start_block": 1, "factory": dex.factory,
             "wrapped_native": dex.weth, "explorer_tx_url": "https://explorer.test/tx/"}
    chain.update(extra.pop("chain", {}))
    evm = {"enabled": True, "chains": [chain], "rpc_backoff_s": 0.2, "rpc_backoff_cap_s": 2.0,
           "rpc_timeout_s": 2.0, **extra.pop("evm", {})}
    return load_settings(config, **{
        "store": {"url": f"sqlite+aiosqlite:///{tmp_path / 'cryptowire.db'}"},
        "demo": {"mode": "off"}, "bybit": {"enabled": False},
        "demand": {"linger_s": 0.05}, "server": {"shutdown_grace_s": 1.0},
        "evm": evm, **extra,
    })


@dataclass
class EvmHub:
    node: Node
    runner: web.AppRunner
    port: int
    http: ClientSession
    sockets: list[ClientWebSocketResponse] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def source(self) -> EvmSource:
        return next(s for s in self.node.sources if isinstance(s, EvmSource))

    async def track(self, dex: Dex) -> None:
        admin = self.source.admin
        assert admin is not None
        for token in dex.tokens:
            await admin.add({"chain": 31337, "address": token.address, "group": "alpha"})

    async def ws(self, path: str = "/ws") -> ClientWebSocketResponse:
        sock = await self.http.ws_connect(f"ws://127.0.0.1:{self.port}{path}")
        self.sockets.append(sock)
        return sock


HubFactory = Callable[..., Awaitable[EvmHub]]


async def subscribe(sock: ClientWebSocketResponse, *channels: str) -> dict[str, Any]:
    await sock.send_str(orjson.dumps({"id": 1, "op": "subscribe", "args": list(channels)})
                        .decode())
    while True:
        msg = orjson.loads(await asyncio.wait_for(sock.receive_str(), TIMEOUT))
        if msg.get("op") == "subscribe":
            assert msg["success"] and not msg["rejected"], msg
            return msg  # type: ignore[no-any-return]


async def collect(sock: ClientWebSocketResponse, n: int, *, timeout: float = TIMEOUT,
                  settle: float = 0.5) -> list[dict[str, Any]]:
    """The data frames received until ``n`` arrived and ``settle`` s passed with no more."""
    frames: list[dict[str, Any]] = []
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        left = deadline - asyncio.get_running_loop().time()
        wait = settle if len(frames) >= n else left
        if wait <= 0:
            return frames
        try:
            raw = await asyncio.wait_for(sock.receive_str(), wait)
        except TimeoutError:
            if len(frames) >= n:
                return frames
            raise AssertionError(f"got {len(frames)} of {n} frames: {frames[-3:]}") from None
        msg = orjson.loads(raw)
        if "channel" in msg and "offset" in msg:
            frames.append(msg)
