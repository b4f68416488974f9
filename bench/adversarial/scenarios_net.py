"""Connection and CPU scenarios: silent_sockets, slow_http, ws_pings, deep_ping_log,
mirror_cpu."""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import socket
import struct
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import rawws
import websockets
from hubproc import Hub
from scenarios_mem import QUIET, env_float, env_int
from sqlalchemy.engine import make_url
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.protocol import State

# -- silent_sockets --------------------------------------------------------------------


async def _admin_try(hub: Hub, key: str) -> str:
    """What a valid admin key gets on /ws: ``ok`` (subscribe answered), ``close <code>`` or
    ``http <status>``."""
    try:
        async with websockets.connect(f"{hub.ws}/ws", additional_headers={"X-API-Key": key},
                                      open_timeout=10) as ws:
            await ws.send(json.dumps({"op": "subscribe", "args": ["ticker:BTCUSDT"]}))
            async with asyncio.timeout(10):
                while True:
                    msg = json.loads(await ws.recv())
                    if msg.get("op") == "subscribe":
                        return "ok" if msg.get("success") else f"refused {msg}"[:80]
                    if msg.get("op") == "error":
                        return f"error {msg.get('code')}"
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"
    except ConnectionClosed as exc:
        return f"close {exc.rcvd.code if exc.rcvd else None}"
    except (OSError, TimeoutError) as exc:
        return type(exc).__name__


def silent_sockets(target: Path) -> dict[str, Any]:
    n = env_int("ADV_SILENT_SOCKETS", 200)
    auth_timeout = env_float("ADV_AUTH_TIMEOUT_S", 10.0)
    wait = auth_timeout + env_float("ADV_AUTH_MARGIN_S", 5.0)
    sections = {**QUIET, "server": {"anonymous_read": False, "max_connections": n}}

    async def go(hub: Hub) -> dict[str, Any]:
        socks: list[Any] = []
        refused: Counter[str] = Counter()
        stop_at = time.monotonic() + 30
        for _ in range(n):
            if time.monotonic() > stop_at:
                refused["not tried (30 s spent opening)"] += 1
                continue
            try:
                socks.append(await websockets.connect(f"{hub.ws}/ws", open_timeout=10))
            except InvalidStatus as exc:
                refused[f"http {exc.response.status_code}"] += 1
            except (OSError, TimeoutError) as exc:
                refused[type(exc).__name__] += 1
        await asyncio.sleep(wait)
        still = sum(1 for ws in socks if ws.state is State.OPEN)
        codes = Counter(str(ws.close_code) for ws in socks if ws.state is not State.OPEN)
        established = hub.established()
        admin = await _admin_try(hub, hub.keys["admin"])
        await asyncio.gather(*(ws.close() for ws in socks), return_exceptions=True)
        return {"opened": len(socks), "refused_at_upgrade": dict(refused),
                "still_open_after_wait": still, "server_close_codes": dict(codes),
                "hub_established": established, "admin_key_result": admin}

    with Hub(target, sections, keys={"admin": ["admin"]}) as hub:
        return {"sockets": n, "max_connections": n, "waited_s": wait, **asyncio.run(go(hub))}


# -- slow_http -------------------------------------------------------------------------


def _probe(hub: Hub) -> str:
    try:
        with urllib.request.urlopen(f"{hub.url}/health", timeout=3) as resp:
            return f"http {resp.status}"
    except urllib.error.HTTPError as exc:
        return f"http {exc.code}"
    except OSError as exc:
        return type(exc).__name__ if not isinstance(exc, urllib.error.URLError) \
            else type(exc.reason).__name__


def _still_open(s: socket.socket) -> bool:
    s.setblocking(False)
    try:
        return s.recv(4096) != b""  # a reply (e.g. 408) then close still counts as answered
    except BlockingIOError:
        return True
    except OSError:
        return False


def slow_http(target: Path) -> dict[str, Any]:
    nofile = env_int("ADV_SLOW_HTTP_NOFILE", 256)
    n = env_int("ADV_SLOW_HTTP_REQUESTS", 300)
    wait = env_float("ADV_HEADER_TIMEOUT_S", 10.0) + 5.0
    with Hub(target, dict(QUIET), nofile=nofile) as hub:
        fds_before = hub.fds()
        socks: list[socket.socket] = []
        failed: Counter[str] = Counter()
        for _ in range(n):
            try:
                s = socket.create_connection(("127.0.0.1", hub.port), timeout=3)
                s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ")
                socks.append(s)
            except OSError as exc:
                failed[type(exc).__name__] += 1
        time.sleep(2)
        fds_peak = hub.fds()
        probe_during = _probe(hub)
        time.sleep(wait)
        held = sum(1 for s in socks if _still_open(s))
        fds_after, probe_after = hub.fds(), _probe(hub)
        for s in socks:
            s.close()
        log = hub.log_text()
        return {"half_sent_requests": n, "hub_nofile_limit": nofile, "waited_s": wait,
                "connect_failures": dict(failed), "hub_fds_before": fds_before,
                "hub_fds_peak": fds_peak, "probe_during": probe_during,
                "still_held_after_wait": held, "hub_fds_after": fds_after,
                "probe_after": probe_after,
                "emfile_in_log": log.count("Too many open files"),
                "hub_alive": hub.alive()}


# -- ws_pings --------------------------------------------------------------------------


def ws_pings(target: Path) -> dict[str, Any]:
    n = env_int("ADV_PINGS", 20_000)

    async def go(hub: Hub) -> dict[str, Any]:
        status, reader, writer = await rawws.connect(hub.port, "/ws")
        pongs = 0
        close: list[int | None] = []

        async def read() -> None:
            nonlocal pongs
            try:
                while True:
                    op, payload = await rawws.read_frame(reader)
                    if op == rawws.PONG:
                        pongs += 1
                    elif op == rawws.CLOSE:
                        close.append(rawws.close_code(payload))
                        return
            except (asyncio.IncompleteReadError, ConnectionError):
                close.append(None)

        task = asyncio.create_task(read())
        cpu0, t0, sent = hub.cpu_s(), time.monotonic(), 0
        try:
            for i in range(0, n, 500):
                writer.write(b"".join(rawws.frame(rawws.PING, struct.pack("!I", j))
                                      for j in range(i, min(n, i + 500))))
                await writer.drain()
                sent = min(n, i + 500)
                if task.done():
                    break
        except ConnectionError:
            pass
        send_s = time.monotonic() - t0
        deadline = time.monotonic() + 10
        while pongs < sent and not task.done() and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        cpu = hub.cpu_s() - cpu0
        task.cancel()
        writer.close()
        return {"http_status": status, "pings_sent": sent, "pongs": pongs,
                "closed": bool(close), "close_code": close[0] if close else None,
                "send_rate_per_s": round(sent / send_s) if send_s else None,
                "hub_cpu_s": round(cpu, 2)}

    with Hub(target, dict(QUIET)) as hub:
        return {"pings": n, **asyncio.run(go(hub))}


# -- deep_ping_log ---------------------------------------------------------------------


def deep_ping_log(target: Path) -> dict[str, Any]:
    n = env_int("ADV_DEEP_PINGS", 1500)
    rate = env_float("ADV_DEEP_PING_RATE", 90.0)
    depth = 300
    path = os.environ.get("ADV_DEEP_PING_PATH", "/ws/master")
    body = '{"action":"ping","data":' + "[" * depth + "]" * depth + "}"

    async def go(hub: Hub) -> dict[str, Any]:
        status, reader, writer = await rawws.connect(hub.port, path)
        kinds: Counter[str] = Counter()
        close: list[int | None] = []

        async def read() -> None:
            try:
                while True:
                    op, payload = await rawws.read_frame(reader)
                    if op == rawws.CLOSE:
                        close.append(rawws.close_code(payload))
                        return
                    if op == rawws.TEXT:
                        try:
                            msg = json.loads(payload)
                            kinds[str(msg.get("type") or msg.get("op"))] += 1
                        except ValueError:
                            kinds["?"] += 1
            except (asyncio.IncompleteReadError, ConnectionError):
                close.append(None)

        task = asyncio.create_task(read())
        log0, t0, sent = hub.log_bytes(), time.monotonic(), 0
        frame = rawws.text(body)
        try:
            for i in range(n):
                if task.done():
                    break
                writer.write(frame)
                sent += 1
                ahead = t0 + (i + 1) / rate - time.monotonic()
                if ahead > 0:
                    await writer.drain()
                    await asyncio.sleep(ahead)
            await writer.drain()
        except ConnectionError:
            pass
        await asyncio.sleep(1)
        task.cancel()
        writer.close()
        grown = hub.log_bytes() - log0
        return {"http_status": status, "frames_sent": sent, "replies": dict(kinds),
                "close_code": close[0] if close else None, "log_bytes": grown,
                "log_bytes_per_frame": round(grown / sent) if sent else None,
                "tracebacks_in_log": hub.log_text().count("Traceback")}

    with Hub(target, {"demand": {"linger_s": 0.5}}) as hub:
        return {"frames": n, "depth": depth, "path": path, "rate_per_s": rate,
                **asyncio.run(go(hub))}


# -- mirror_cpu ------------------------------------------------------------------------


def _pg_admin_url() -> str:
    return os.environ.get("CRYPTOWIRE_TEST_DATABASE_URL",
                          "postgresql://postgres@127.0.0.1:5432/postgres")


def mirror_cpu(target: Path) -> dict[str, Any]:
    rows = env_int("ADV_MIRROR_ROWS", 50_000)
    requests = env_int("ADV_MIRROR_REQUESTS", 20)
    suffix = secrets.token_hex(5)
    dbname = f"cw_adv_{suffix}"
    admin = make_url(_pg_admin_url()).set(drivername="postgresql")
    plain = admin.set(database=dbname).render_as_string(hide_password=False)
    store = admin.set(drivername="postgresql+asyncpg", database=dbname) \
        .render_as_string(hide_password=False)

    async def admin_exec(sql: str) -> None:
        conn = await asyncpg.connect(admin.render_as_string(hide_password=False), timeout=5)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    async def go(hub: Hub) -> dict[str, Any]:
        conn = await asyncpg.connect(plain, timeout=5)
        try:
            await conn.execute(
                "INSERT INTO pg_mirror (channel, payload, received_at) SELECT 'fill_event', "
                "json_build_object('txn_version', g, 'event_idx', 0, 'market_id', 1, "
                "'price', 1500, 'size', 25, 'maker_address', '0x1')::text, 0 "
                "FROM generate_series(1, $1) g", rows)
        finally:
            await conn.close()
        await asyncio.sleep(1)
        statuses: Counter[int] = Counter()
        headers = {"X-API-Key": hub.keys["reader"]}
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=60)) as http:

            async def one() -> None:
                # a filter no row matches: the hub looks at every row it may scan
                async with http.get(f"{hub.url}/fill_events?market_id=999",
                                    headers=headers) as resp:
                    await resp.read()
                    statuses[resp.status] += 1

            cpu0, t0 = hub.cpu_s(), time.monotonic()
            await asyncio.gather(*(one() for _ in range(requests)), return_exceptions=True)
            wall = time.monotonic() - t0
            cpu = hub.cpu_s() - cpu0
        return {"statuses": {str(k): v for k, v in statuses.items()},
                "requests_wall_s": round(wall, 2), "hub_cpu_s": round(cpu, 2)}

    asyncio.run(admin_exec(f'CREATE DATABASE "{dbname}"'))
    try:
        sections = {**QUIET, "pgnotify": {"enabled": True, "mirror": True,
                                          "listen_channels": [f"cw_adv_{suffix}"]}}
        with Hub(target, sections, store_url=store, keys={"reader": ["read"]}) as hub:
            return {"rows": rows, "concurrent_requests": requests, **asyncio.run(go(hub))}
    finally:
        asyncio.run(admin_exec(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
