"""docker-compose.yml's topology without docker: the nodes' environment from the file, three
``cryptowire serve`` processes on one Redis and one Postgres, and haproxy (Debian's) running
the file's own haproxy.cfg in front of them. What docker itself adds (images, networks, the
build) is not covered; which settings, which balancer and which health check are.

Only host names and ports are rewritten (``redis:6379`` -> the test Redis, ``postgres`` -> a
fresh test database, ``nodeN:8000`` and ``:8000`` -> free local ports), haproxy's maxconn is
lowered to what a process may hold here, and a stats socket is added so the test can wait
for haproxy's health checks; a per-test key prefix keeps the shared Redis clean.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml
from tests.integration.cluster.cluster_peer import HubProcess, free_port
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

pytestmark = pytest.mark.integration

COMPOSE = Path(__file__).resolve().parents[3] / "docker-compose.yml"
NOFILE = 200_100
PER_ADDRESS = 1


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(COMPOSE.read_text())
    return data


def haproxy_binary() -> str:
    exe = shutil.which("haproxy")
    if exe is None:
        reason = "haproxy not installed (make test installs Debian's haproxy)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return exe


@pytest.fixture
def haproxy_exe() -> str:
    return haproxy_binary()


class Haproxy:
    def __init__(self, exe: str, config: str, workdir: Path) -> None:
        self.port = free_port()
        self.cfg = workdir / "haproxy.cfg"
        self.sock = workdir / "haproxy.sock"
        config = config.replace("bind :8000", f"bind 127.0.0.1:{self.port}")
        config = config.replace("global\n", f"global\n  stats socket {self.sock} level admin\n", 1)
        self.cfg.write_text(config)
        self.exe = exe
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        check = subprocess.run([self.exe, "-c", "-f", str(self.cfg)], capture_output=True,
                               timeout=10, check=False)
        assert check.returncode == 0, check.stdout + check.stderr
        self.log = self.cfg.with_suffix(".log")
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen([self.exe, "-db", "-f", str(self.cfg)],
                                         stdout=out, stderr=subprocess.STDOUT)

    async def servers_up(self) -> int:
        """How many backend servers haproxy's health checks currently see up."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(self.sock))
        except OSError:
            return 0
        writer.write(b"show stat\n")
        await writer.drain()
        text = (await reader.read()).decode()
        writer.close()
        rows = [line.split(",") for line in text.splitlines() if line.startswith("nodes,node")]
        return sum(1 for row in rows if row[17] == "UP")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def topology(tmp_path: Path, redis_url: str, prefix: str, pg_url: str,
             haproxy_exe: str) -> Iterator[tuple[list[HubProcess], Haproxy]]:
    spec = compose()
    assert spec["services"]["lb"]["ulimits"]["nofile"] == NOFILE
    env = dict(spec["x-node"]["environment"])
    assert env["CRYPTOWIRE_BUS__URL"] == "redis://redis:6379/0"
    assert env["CRYPTOWIRE_STORE__URL"].startswith("postgresql+asyncpg://")
    env["CRYPTOWIRE_BUS__URL"] = redis_url
    env["CRYPTOWIRE_BUS__PREFIX"] = prefix
    env["CRYPTOWIRE_STORE__URL"] = pg_url
    env["CRYPTOWIRE_BYBIT__ENABLED"] = "false"  # no internet here; the compose file's demo
    assert env["CRYPTOWIRE_SERVER__PROXY_PROTOCOL"] == "true"  # haproxy sends PROXY v2
    # One connection per client address per node, so that sharing one address shows.
    env["CRYPTOWIRE_SERVER__MAX_CONNECTIONS_PER_KEY"] = str(PER_ADDRESS)
    nodes = [HubProcess(tmp_path, redis_url, prefix, env, name)
             for name in ("node1", "node2", "node3")]
    assert [s for s in spec["services"] if s.startswith("node")] == ["node1", "node2", "node3"]
    config: str = spec["configs"]["haproxy"]["content"]
    # "maxconn 100000" needs ~200k file descriptors, which the compose file grants the lb
    # service (ulimits); a process here may not hold more than 20k, so it is lowered.
    config, n = re.subn(r"\bmaxconn 100000\b", "maxconn 9000", config)
    assert n == 1
    for node in nodes:
        config, n = re.subn(rf"\b{node.name}:8000\b", f"127.0.0.1:{node.port}", config)
        assert n == 1, f"{node.name} is not a backend of the compose file's haproxy.cfg"
    lb = Haproxy(haproxy_exe, config, tmp_path)
    try:
        for node in nodes:
            node.start()
        lb.start()
        yield nodes, lb
    finally:
        lb.stop()
        for node in nodes:
            node.stop()


async def test_three_nodes_behind_the_compose_files_haproxy(
        topology: tuple[list[HubProcess], Haproxy]) -> None:
    nodes, lb = topology
    await asyncio.gather(*(n.wait_ready(timeout=40) for n in nodes))
    async with asyncio.timeout(30):  # haproxy checks GET /ready (every 2 s, up after 2)
        while await lb.servers_up() < 3:
            assert lb.proc is not None and lb.proc.poll() is None, lb.log.read_text()
            await asyncio.sleep(0.2)
    # Clients connect to the balancer only; leastconn spreads them over the nodes. Each
    # comes from an address of its own (the nodes see it through haproxy's PROXY header).
    clients = []
    for i in range(6):
        async with asyncio.timeout(20):
            while True:  # until haproxy's health checks have seen the nodes up
                assert lb.proc is not None and lb.proc.poll() is None, lb.log.read_text()
                try:
                    ws = await connect(f"ws://127.0.0.1:{lb.port}/ws", open_timeout=5,
                                       proxy=None, local_addr=(f"127.0.0.{10 + i}", 0))
                    break
                except (OSError, Exception):  # noqa: BLE001 - 503 before the first check
                    await asyncio.sleep(0.2)
        await ws.send(orjson.dumps({"op": "subscribe", "args": ["ticker:BTCUSDT"]}).decode())
        clients.append(ws)
    try:
        for ws in clients:  # every client gets live demo tickers through the balancer
            async with asyncio.timeout(15):
                while True:
                    msg = orjson.loads(await ws.recv())
                    if msg.get("channel") == "ticker:BTCUSDT" and "offset" in msg:
                        break
        per_node = [(await n.get("/stats"))[1]["connections"] for n in nodes]
        assert sum(per_node) == 6 and sum(1 for c in per_node if c) >= 2, per_node
        roles = [(await n.source_role())[0] for n in nodes]
        assert sorted(r or "" for r in roles) == ["leader", "standby", "standby"], roles
        for n in nodes:  # every node migrated and uses the one Postgres store
            status, health = await n.get("/health")
            assert status == 200, health
        await separate_limits_per_client_address(lb, nodes, clients)
        # docker's own health check of a node goes around haproxy: it sends the header too
        cmd = compose()["x-node"]["healthcheck"]["test"]
        assert cmd[:3] == ["CMD", "python", "-c"]
        check = await asyncio.create_subprocess_exec(
            sys.executable, "-c", cmd[3].replace("8000", str(nodes[0].port)),
            stderr=asyncio.subprocess.PIPE)
        _, stderr = await asyncio.wait_for(check.communicate(), 10)
        assert check.returncode == 0, stderr
    finally:
        await asyncio.gather(*(ws.close() for ws in clients), return_exceptions=True)


async def separate_limits_per_client_address(lb: Haproxy, nodes: list[HubProcess],
                                             clients: list[Any]) -> None:
    """Behind haproxy, 127.0.0.2 and 127.0.0.3 each get their own per-address limit (one
    connection per node here): three each are served, a fourth from 127.0.0.2 is refused."""

    async def open_from(address: str) -> Any:
        ws = await connect(f"ws://127.0.0.1:{lb.port}/ws", open_timeout=5, proxy=None,
                           local_addr=(address, 0))
        clients.append(ws)
        with contextlib.suppress(ConnectionClosed):  # over the limit it may be closed already
            await ws.send(orjson.dumps({"op": "ping"}).decode())
        async with asyncio.timeout(10):
            while True:  # a pong, or the 4003 close of a connection over the limit
                msg = orjson.loads(await ws.recv())
                if msg.get("op") in ("pong", "error"):
                    return ws, msg

    async def per_node() -> list[int]:
        return [(await n.get("/stats"))[1]["connections"] for n in nodes]

    # leastconn put the six clients two on each node, so the next three go one on each
    assert await per_node() == [2, 2, 2]
    for address in ("127.0.0.2", "127.0.0.3"):
        for _ in range(len(nodes) * PER_ADDRESS):  # leastconn: one on each node
            _, reply = await open_from(address)
            assert reply["op"] == "pong", (address, reply)
    ws, reply = await open_from("127.0.0.2")
    assert reply["code"] == "LIMIT_EXCEEDED", reply
    assert reply["message"] == f"Too many connections for this address (max {PER_ADDRESS})."
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4003
    async with asyncio.timeout(5):  # until the refused session is gone
        while (counts := await per_node()) != [2 + 2 * PER_ADDRESS] * 3:
            await asyncio.sleep(0.05)
    assert counts == [4, 4, 4]

