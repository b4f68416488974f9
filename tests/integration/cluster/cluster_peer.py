"""Real hub processes sharing one Redis, and WebSocket clients that record what they get.

:class:`HubProcess` runs ``python -m cryptowire serve --port P`` with the Redis bus, a key
prefix of the test, its own SQLite store, and an *upstream*: the demo source on a fast tick
for now (:func:`demo_upstream`). The Bybit replay peer plugs in as another upstream: a
function returning the environment that points the nodes at it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiohttp import ClientSession, ClientTimeout
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

Upstream = Callable[[], dict[str, str]]


def demo_upstream(interval_s: float = 0.02) -> dict[str, str]:
    """Environment for the demo source as the cluster's upstream (one tick per interval)."""
    return {"CRYPTOWIRE_DEMO__MODE": "on", "CRYPTOWIRE_DEMO__INTERVAL_S": str(interval_s),
            "CRYPTOWIRE_BYBIT__ENABLED": "false"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HubProcess:
    """One cryptowire node as a child process."""

    def __init__(self, workdir: Path, redis_url: str, prefix: str, upstream: dict[str, str],
                 name: str) -> None:
        self.name = name
        self.port = free_port()
        self.dir = workdir / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.env = {
            **os.environ,
            "CRYPTOWIRE_BUS__URL": redis_url,
            "CRYPTOWIRE_BUS__PREFIX": prefix,
            "CRYPTOWIRE_BUS__LEASE_TTL_S": "2.0",
            "CRYPTOWIRE_BUS__NODE_TTL_S": "3.0",
            "CRYPTOWIRE_BUS__BACKOFF_CAP_S": "1.0",
            "CRYPTOWIRE_STORE__URL": f"sqlite+aiosqlite:///{self.dir / 'cw.db'}",
            "CRYPTOWIRE_DEMAND__LINGER_S": "0.5",
            "CRYPTOWIRE_LOG_LEVEL": "INFO",
            "CRYPTOWIRE_SERVER__SHUTDOWN_GRACE_S": "1.0",
            **upstream,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = self.dir / "node.log"
        #: Behind haproxy's send-proxy-v2 the node drops a connection without a PROXY header:
        #: the test's own HTTP requests then send one (v1, naming this host).
        self.proxy_protocol = self.env.get("CRYPTOWIRE_SERVER__PROXY_PROTOCOL") == "true"

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cryptowire", "serve", "--port", str(self.port)],
                cwd=self.dir, env=self.env, stdout=out, stderr=subprocess.STDOUT)

    async def wait_ready(self, timeout: float = 20.0) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with ClientSession(timeout=ClientTimeout(total=1)) as http:
            while asyncio.get_running_loop().time() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log.read_text()[-2000:]}")
                try:
                    if self.proxy_protocol:
                        if (await self._proxied_get("/ready"))[0] == 200:
                            return
                    else:
                        async with http.get(self.http + "/ready") as resp:
                            if resp.status == 200:
                                return
                except Exception:  # noqa: BLE001 - not listening yet
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready: {self.log.read_text()[-2000:]}")

    async def get(self, path: str) -> tuple[int, Any]:
        if self.proxy_protocol:
            return await self._proxied_get(path)
        async with ClientSession(timeout=ClientTimeout(total=3)) as http:
            async with http.get(self.http + path) as resp:
                return resp.status, await resp.json()

    async def _proxied_get(self, path: str) -> tuple[int, Any]:
        """``GET path`` over HTTP/1.0 after a PROXY v1 header, as haproxy would send it."""
        async with asyncio.timeout(3):
            reader, writer = await asyncio.open_connection("127.0.0.1", self.port)
            try:
                writer.write(f"PROXY TCP4 127.0.0.1 127.0.0.1 40000 {self.port}\r\n"
                             f"GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n".encode())
                raw = await reader.read()
            finally:
                writer.close()
        head, _, body = raw.partition(b"\r\n\r\n")
        return int(head.split()[1]), orjson.loads(body) if body else None

    async def source_role(self, source: str = "demo") -> tuple[str | None, int]:
        """``(role, upstream topics)`` of ``source`` on this node, from ``/stats``."""
        _, stats = await self.get("/stats")
        st = stats["sources"].get(source, {})
        return st.get("role"), int(st.get("topics", 0))

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@dataclass
class Recorder:
    """A client that subscribes to channels on one node and records every data frame."""

    url: str
    channels: list[str]
    frames: list[dict[str, Any]] = field(default_factory=list)
    reply: dict[str, Any] | None = None
    closed: bool = False
    _ws: ClientConnection | None = None
    _task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._ws = await connect(self.url, max_size=2**22)
        await self._ws.send(orjson.dumps({"id": 1, "op": "subscribe",
                                          "args": self.channels}).decode())
        while self.reply is None:
            msg = orjson.loads(await self._ws.recv())
            if msg.get("op") == "subscribe":
                self.reply = msg
            elif "channel" in msg:
                self.frames.append(msg)
        assert self.reply["success"], self.reply
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self._ws is not None
        try:
            async for raw in self._ws:
                msg = orjson.loads(raw)
                if "channel" in msg and "offset" in msg:
                    self.frames.append(msg)
        except ConnectionClosed:
            pass
        finally:
            self.closed = True

    def of(self, channel: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f["channel"] == channel]

    async def close(self) -> None:
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)


def check_sequence(frames: list[dict[str, Any]]) -> tuple[int, int]:
    """Assert exactly-once, in-order delivery: within an epoch, offsets go up by exactly
    one; a new epoch only right after a ``gap``. Returns ``(updates, gaps)``."""
    updates = gaps = 0
    prev: dict[str, Any] | None = None
    for f in frames:
        if f["type"] == "gap":
            gaps += 1
        else:
            updates += 1
        if prev is not None:
            if f["epoch"] == prev["epoch"]:
                assert f["offset"] == prev["offset"] + 1 or (
                    f["type"] == "gap" and f["offset"] == prev["offset"]
                ), f"offset {prev['offset']} -> {f['offset']} on {f['channel']}"
            else:
                assert f["type"] == "gap", f"epoch changed without a gap: {prev} -> {f}"
        prev = f
    return updates, gaps
