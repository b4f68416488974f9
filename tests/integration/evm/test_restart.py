"""The hub process killed with SIGKILL mid-stream and started again: it resumes from its
stored cursor, so no event is missed and none is delivered twice.

The hub runs as users run it (``cryptowire serve`` in a subprocess, tokens added with
``cryptowire tokens add``). The client does what a resuming client does: after
reconnecting it subscribes again and asks ``GET /api/v1/events?since=<block>:<log index>``
of the last event it had, for the ones published while it was away.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from tests.integration.evm.evmhub import CHAIN, TIMEOUT, subscribe
from tests.peers.anvil import AnvilNode, Dex, free_port

N = 30


def _cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "cryptowire", *args], cwd=cwd,
                          capture_output=True, text=True, timeout=60, check=True)


class HubProcess:
    def __init__(self, config: Path, port: int) -> None:
        self.config = config
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    async def start(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cryptowire", "serve", "-c", str(self.config)],
            cwd=self.config.parent, stdout=subprocess.DEVNULL,
            stderr=open(self.config.parent / "hub.log", "ab"))  # noqa: SIM115
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                try:
                    async with http.get(f"http://127.0.0.1:{self.port}/ready") as resp:
                        if resp.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.proc.poll() is None, (self.config.parent / "hub.log").read_text()
                await asyncio.sleep(0.05)
        raise AssertionError("hub did not become ready")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def _key(data: dict[str, Any]) -> tuple[str, int]:
    return (data["tx_hash"], data["log_index"])


async def _read(ws: aiohttp.ClientWebSocketResponse, into: list[dict[str, Any]]) -> None:
    async for msg in ws:
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        frame = orjson.loads(msg.data)
        if "offset" in frame:
            into.append(frame["data"])


async def test_sigkill_and_restart_loses_and_duplicates_nothing(
        tmp_path: Path, anvil: AnvilNode, dex: Dex) -> None:
    port = free_port()
    config = tmp_path / "cryptowire.toml"
    config.write_text(f"""
[server]
port = {port}
[store]
url = "sqlite+aiosqlite:///{tmp_path / 'hub.db'}"
[demo]
mode = "off"
[bybit]
enabled = false
[evm]
enabled = true
[[evm.chains]]
id = 31337
name = "{CHAIN}"
rpc_urls = ["{anvil.url}"]
block_interval_s = 0.05
confirmations = 0
start_block = 1
factory = "{dex.factory}"
wrapped_native = "{dex.weth}"
""")
    # The watchlist comes from a mongoexport of the seed 000 "tracking" collection: one
    # document in the documented explicit shape (canonical Extended JSON), one in the short
    # shape (read on chain).
    first, second = dex.tokens
    export = tmp_path / "tracking.json"
    export.write_text("\n".join(orjson.dumps(d).decode() for d in [
        {"_id": {"$oid": "65f0c0ffee0000000000000a"}, "chain": {"$numberInt": "31337"},
         "name": first.symbol, "decimals": {"$numberInt": str(first.decimals)},
         "address": first.address, "pair": first.pair,
         "isToken0": first.address.lower() < dex.weth.lower(), "group": "alpha"},
        {"_id": {"$oid": "65f0c0ffee0000000000000b"}, "chain": 31337,
         "address": second.address, "paired": None, "group": "alpha"},
    ]) + "\n")
    out = _cli(["tokens", "import", str(export), "-c", str(config)], tmp_path)
    assert "Imported 2 of 2 tokens" in out.stdout, out

    hub = HubProcess(config, port)
    await hub.start()
    sent: list[str] = []
    live: list[dict[str, Any]] = []
    async with aiohttp.ClientSession() as http:
        try:
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws")
            await subscribe(ws, f"swap:{CHAIN}")
            reader = asyncio.create_task(_read(ws, live))

            async def mine(count: int) -> None:
                for _ in range(count):
                    i = len(sent)
                    sent.append(await dex.swap(dex.tokens[i % 2], buy=i % 2 == 0,
                                               amount_in=10**16 * (i + 1)))
                    await asyncio.sleep(0.01)

            await mine(12)
            async with asyncio.timeout(TIMEOUT):
                while len(live) < 5:
                    await asyncio.sleep(0.01)
            hub.kill()  # mid-stream: swaps keep being mined while it is down
            await mine(8)
            await asyncio.wait_for(reader, TIMEOUT)
            before_kill = list(live)

            await hub.start()
            ws = await http.ws_connect(f"ws://127.0.0.1:{port}/ws")
            await subscribe(ws, f"swap:{CHAIN}")
            after: list[dict[str, Any]] = []
            reader = asyncio.create_task(_read(ws, after))
            last = before_kill[-1]
            async with http.get(f"http://127.0.0.1:{port}/api/v1/events", params={
                    "channel": f"swap:{CHAIN}", "since": f"{last['block']}:{last['log_index']}",
                    "limit": "1000"}) as resp:
                backfill = (await resp.json())["events"]
            await mine(N - len(sent))
            async with asyncio.timeout(TIMEOUT):
                while True:
                    have = {_key(d) for d in before_kill + backfill + after}
                    if len(have) >= N:
                        break
                    await asyncio.sleep(0.05)
            # A marker swap mined after all the others: blocks are published in order, so
            # once it is in, anything extra (a duplicate) would already have arrived.
            marker = await dex.swap(dex.tokens[0], buy=True, amount_in=10**16)
            async with asyncio.timeout(TIMEOUT):
                while not any(d["tx_hash"] == marker for d in after):
                    await asyncio.sleep(0.05)
            await ws.close()
            await asyncio.wait_for(reader, TIMEOUT)
            after = [d for d in after if d["tx_hash"] != marker]

            # No frame was delivered twice over the sockets, before or after the restart.
            ws_keys = [_key(d) for d in before_kill + after]
            assert len(ws_keys) == len(set(ws_keys))
            # Together with the backfill: every swap, exactly the ones mined.
            union = {_key(d) for d in before_kill + backfill + after}
            assert len(union) == N
            assert {k[0] for k in union} == set(sent)
            # The backfill starts right after the last event the client had.
            assert not {_key(d) for d in backfill} & {_key(d) for d in before_kill}
            # The event log holds each swap once.
            async with http.get(f"http://127.0.0.1:{port}/api/v1/events", params={
                    "channel": f"swap:{CHAIN}", "limit": "1000"}) as resp:
                stored = [_key(d) for d in (await resp.json())["events"]
                          if d["tx_hash"] != marker]
            assert len(stored) == N and len(set(stored)) == N
        finally:
            hub.stop()
