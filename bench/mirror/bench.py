"""REST mirror benchmark: hub CPU for concurrent filtered ``GET /<channel>s`` queries.

Starts one hub process (``python -m cryptowire serve``) on a fresh Postgres database with the
pg mirror on, writes ``--rows`` mirrored ``fill_event`` payloads into ``pg_mirror``, then
sends ``--concurrent`` requests at once, twice: a filter that matches no row (the worst case:
every row of the scan window is looked at) and one that matches every 1,000th row. Reports
the hub process's CPU seconds (user + system, from /proc) and the wall time of each burst.
Postgres' own CPU is not counted: the point is what a query costs the hub's event loop.

Run (the tree under test first on the path; PYTHONPATH=<old tree>/src measures "before"):
``PYTHONPATH=$PWD/src .venv/bin/python bench/mirror/bench.py [--rows 100000 --concurrent 20]``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

ADMIN = os.environ.get("CRYPTOWIRE_TEST_DATABASE_URL",
                       "postgresql://postgres@127.0.0.1:5432/postgres")
TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of ``pid`` (fields 14 and 15 of /proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def payload(i: int) -> str:
    """A seed 002 fill_event row, as json_build_object wrote it (numeric(39) past 64 bits)."""
    return json.dumps({
        "txn_version": 1000 + i, "event_idx": 0, "emit_address": "0x1",
        "time": "2025-01-01T00:00:00+00:00", "maker_address": "0xabc",
        "maker_custodian_id": 0, "maker_order_id": 340282366920938463463374607431768211455 - i,
        "maker_side": i % 2 == 0, "market_id": 7 if i % 1000 == 0 else 1 + i % 5,
        "price": 1500 + i % 100, "sequence_number_for_trade": 0, "size": 25,
        "taker_address": "0xdef", "taker_custodian_id": 0, "taker_order_id": i,
        "taker_quote_fees_paid": 3}, separators=(",", ":"))


async def wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    async with aiohttp.ClientSession() as http:
        for _ in range(400):
            if proc.poll() is not None:
                raise RuntimeError(log.read_text()[-2000:])
            try:
                async with http.get(f"{url}/ready") as resp:
                    if resp.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError("hub not ready: " + log.read_text()[-2000:])


async def burst(url: str, n: int, params: dict[str, str]) -> list[tuple[int, int]]:
    """``n`` requests at once: ``(status, rows)`` of each (rows -1 when not a 200)."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=300)) as http:
        async def one() -> tuple[int, int]:
            async with http.get(f"{url}/fill_events", params=params) as resp:
                body = await resp.read()
                return resp.status, len(json.loads(body)) if resp.status == 200 else -1

        return await asyncio.gather(*(one() for _ in range(n)))


async def main(args: argparse.Namespace) -> dict[str, Any]:
    db = f"cw_bench_{secrets.token_hex(4)}"
    admin = await asyncpg.connect(ADMIN)
    await admin.execute(f'CREATE DATABASE "{db}"')
    base = ADMIN.rsplit("/", 1)[0]
    port = free_port()
    work = Path(tempfile.mkdtemp(prefix="cw-mirror-bench-"))
    log = work / "hub.log"
    env = {**os.environ,
           "CRYPTOWIRE_STORE__URL": f"{base.replace('postgresql://', 'postgresql+asyncpg://')}"
                                    f"/{db}",
           "CRYPTOWIRE_PGNOTIFY__ENABLED": "true", "CRYPTOWIRE_PGNOTIFY__MIRROR": "true",
           "CRYPTOWIRE_DEMO__MODE": "off", "CRYPTOWIRE_BYBIT__ENABLED": "false",
           "CRYPTOWIRE_EVM__ENABLED": "false", "CRYPTOWIRE_SERVICES__ENABLED": "false",
           "CRYPTOWIRE_LOG_LEVEL": "WARNING"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "cryptowire", "serve", "--port",
                                 str(port)], cwd=work, env=env, stdout=out,
                                stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        await wait_ready(url, proc, log)
        conn = await asyncpg.connect(f"{base}/{db}")
        await conn.copy_records_to_table(
            "pg_mirror", columns=["channel", "payload", "received_at"],
            records=[("fill_event", payload(i), 0) for i in range(args.rows)])
        await conn.close()
        await burst(url, 1, {"limit": "1"})  # warm: connections, imports
        out: dict[str, Any] = {}
        for name, params in (("no_match", {"market_id": "999"}),
                             ("every_1000th", {"market_id": "7"})):
            cpu0, t0 = cpu_s(proc.pid), time.perf_counter()
            answers = await burst(url, args.concurrent, params)
            out[name] = {"hub_cpu_s": round(cpu_s(proc.pid) - cpu0, 2),
                         "wall_s": round(time.perf_counter() - t0, 2),
                         "statuses": sorted({s: sum(1 for a in answers if a[0] == s)
                                             for s, _ in answers}.items()),
                         "rows_per_reply": max(r for _, r in answers)}
        return {"rows": args.rows, "concurrent": args.concurrent,
                "python": platform.python_version(), "cpus": os.cpu_count(), **out}
    finally:
        proc.terminate()
        proc.wait(10)
        await admin.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--concurrent", type=int, default=20)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
