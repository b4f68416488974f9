"""Memory scenarios: rfq_pairs, history_bytes, app_churn, slow_readers."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import rawws
import websockets
from hubproc import MB, Hub, tcp_mem_mb
from websockets.exceptions import ConnectionClosed

QUIET = {"services": {"enabled": False}, "demand": {"linger_s": 0.5}}


def env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


# -- rfq_pairs -----------------------------------------------------------------------------


async def _rfq_pairs(hub: Hub, n: int, conns: int) -> dict[str, Any]:
    replies: Counter[str] = Counter()
    closes: Counter[str] = Counter()
    per = n // conns
    rate = 90.0  # under the default 100 frames/s per connection

    async def one(c: int) -> None:
        try:
            async with websockets.connect(f"{hub.ws}/rfq", max_size=None,
                                          open_timeout=20) as ws:
                first = json.loads(await asyncio.wait_for(ws.recv(), 10))
                uuid = first.get("handshake")
                if uuid is None:
                    replies["refused:" + str(first)[:60]] += 1
                    return
                t0 = time.monotonic()
                for i in range(per):
                    j = c * per + i
                    # amountFrom "" as the seed sends: connected, then no offers
                    await ws.send(json.dumps({"rfq": {
                        "action": "startSession", "key": "k", "currFrom": f"Q{j}X",
                        "currTo": f"Z{j}Y", "amountFrom": "", "uuid": uuid}}))
                    msg = json.loads(await asyncio.wait_for(ws.recv(), 15))
                    replies[str(msg.get("action") or msg.get("status"))] += 1
                    ahead = t0 + (i + 1) / rate - time.monotonic()
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        except ConnectionClosed as exc:
            closes[str(exc.rcvd.code if exc.rcvd else None)] += 1
        except (OSError, TimeoutError) as exc:
            closes[type(exc).__name__] += 1

    await asyncio.gather(*(one(c) for c in range(conns)))
    return {"replies": dict(replies), "closes": dict(closes)}


def rfq_pairs(target: Path) -> dict[str, Any]:
    n = env_int("ADV_RFQ_SESSIONS", 20_000)
    conns = env_int("ADV_RFQ_CONNS", 20)
    with Hub(target, dict(QUIET)) as hub:
        time.sleep(1)
        before = hub.rss_mb()
        t0 = time.monotonic()
        out = asyncio.run(_rfq_pairs(hub, n, conns))
        elapsed = time.monotonic() - t0
        after = hub.rss_mb()
        time.sleep(5)  # every socket is closed: what stays is held by the node
        idle = hub.rss_mb()
        return {"sessions": n, "connections": conns, "elapsed_s": round(elapsed, 1),
                "rss_before_mb": before, "rss_after_mb": after, "rss_idle_5s_mb": idle,
                "rss_kept_mb": round(idle - before, 1), **out}


# -- history_bytes ---------------------------------------------------------------------


async def _publish(http: aiohttp.ClientSession, hub: Hub, key: str, body: Any) -> int:
    async with http.post(f"{hub.url}/api/v1/publish", json=body,
                         headers={"X-API-Key": key}) as resp:
        await resp.read()
        return resp.status


def history_bytes(target: Path) -> dict[str, Any]:
    count = env_int("ADV_HISTORY_EVENTS", 150)
    size = env_int("ADV_HISTORY_EVENT_BYTES", 1_000_000)
    sections = {**QUIET, "history": {"ttl_s": 5.0},
                "server": {"publish_max_bytes": size + 65_536}}

    async def go(hub: Hub) -> Counter[int]:
        statuses: Counter[int] = Counter()
        blob = "x" * size
        async with aiohttp.ClientSession() as http:
            for i in range(count):
                statuses[await _publish(http, hub, hub.keys["pub"],
                                        {"channel": f"app:big{i % 3}", "data": {"b": blob}})] += 1
        return statuses

    with Hub(target, sections, keys={"pub": ["publish"]}) as hub:
        time.sleep(1)
        before = hub.rss_mb()
        statuses = asyncio.run(go(hub))
        after = hub.rss_mb()
        time.sleep(10)
        later = hub.rss_mb()
        return {"events": count, "event_bytes": size, "ttl_s": 5.0,
                "statuses": dict(statuses), "rss_before_mb": before, "rss_after_mb": after,
                "rss_10s_later_mb": later, "rss_kept_after_ttl_mb": round(later - before, 1)}


# -- app_churn -------------------------------------------------------------------------


async def _victim_position(hub: Hub, channel: str) -> tuple[str, int]:
    async with websockets.connect(f"{hub.ws}/ws", max_size=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": [channel]}))
        seen = 0
        last: tuple[str, int] | None = None
        async with asyncio.timeout(15):
            while seen < 3:
                msg = json.loads(await ws.recv())
                if msg.get("channel") == channel and "offset" in msg:
                    last = (msg["epoch"], msg["offset"])
                    seen += 1
        assert last is not None
        return last


async def _recover(hub: Hub, channel: str, epoch: str, offset: int) -> dict[str, Any]:
    async with websockets.connect(f"{hub.ws}/ws", max_size=None) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": [channel],
                                  "recover": {channel: {"epoch": epoch, "offset": offset}}}))
        async with asyncio.timeout(15):
            while True:
                msg = json.loads(await ws.recv())
                if msg.get("op") == "subscribe":
                    pos = (msg.get("positions") or {}).get(channel, {})
                    return {"recovered": (msg.get("recovered") or {}).get(channel),
                            "epoch_kept": pos.get("epoch") == epoch}


def app_churn(target: Path) -> dict[str, Any]:
    n = env_int("ADV_CHURN_CHANNELS", 20_000)
    max_channels = env_int("ADV_CHURN_MAX_CHANNELS", 10_000)
    victim = "ticker:SOLUSDT"
    sections = {**QUIET, "history": {"max_channels": max_channels},
                "demo": {"interval_s": 0.2}}

    async def go(hub: Hub) -> dict[str, Any]:
        epoch, offset = await _victim_position(hub, victim)
        await asyncio.sleep(1.5)  # the demo stops the victim after the linger
        before = hub.rss_mb()
        statuses: Counter[int] = Counter()
        t0 = time.monotonic()
        async with aiohttp.ClientSession() as http:
            for start in range(0, n, 1000):
                batch = [{"channel": f"app:churn{i}", "data": {"i": i}}
                         for i in range(start, min(n, start + 1000))]
                statuses[await _publish(http, hub, hub.keys["pub"], batch)] += 1
        elapsed = time.monotonic() - t0
        after = hub.rss_mb()
        return {"rss_before_mb": before, "rss_after_mb": after,
                "rss_delta_mb": round(after - before, 1), "elapsed_s": round(elapsed, 1),
                "publish_statuses": dict(statuses),
                "victim": victim, **await _recover(hub, victim, epoch, offset)}

    with Hub(target, sections, keys={"pub": ["publish"]}) as hub:
        time.sleep(1)
        return {"fresh_channels": n, "history_max_channels": max_channels,
                **asyncio.run(go(hub))}


# -- slow_readers ------------------------------------------------------------------------


def slow_readers(target: Path) -> dict[str, Any]:
    n = env_int("ADV_SLOW_READERS", 100)
    size = env_int("ADV_SLOW_BATCH_BYTES", 1_000_000)
    events = env_int("ADV_SLOW_BATCHES", 12)
    item = env_int("ADV_SLOW_ITEM_BYTES", 2_000)
    sections = {**QUIET, "server": {"publish_max_bytes": size + 65_536}}

    async def go(hub: Hub) -> dict[str, Any]:
        socks = []
        subscribed = 0
        for _ in range(n):
            # A small TCP window and a reader that stops after 64 KiB: nothing is read
            # after the subscribe reply, so what the hub sends piles up on the hub's side.
            _status, reader, writer = await rawws.connect(hub.port, "/ws", rcvbuf=16_384,
                                                          limit=32_768)
            writer.write(rawws.text(json.dumps({"op": "subscribe", "args": ["app:busy"]})))
            _op, payload = await asyncio.wait_for(rawws.read_frame(reader), 10)
            subscribed += bool(json.loads(payload).get("success"))
            socks.append((reader, writer))
        await asyncio.sleep(1)
        hub.reset_peak()
        before = hub.rss_mb()
        statuses: Counter[int] = Counter()
        trace: list[tuple[float, int]] = []
        tcp_before = tcp_mem_mb() or 0.0
        tcp_peak = tcp_before
        # Each publish is a batch of small events: one fan-out tick joins them into one
        # write per session (as a busy market channel does).
        batch = [{"channel": "app:busy", "data": {"b": "y" * item}}] * (size // item)
        async with aiohttp.ClientSession() as http:
            for _ in range(events):
                statuses[await _publish(http, hub, hub.keys["pub"], batch)] += 1
                await asyncio.sleep(0.5)
                trace.append((hub.rss_mb(), hub.established()))
                tcp_peak = max(tcp_peak, tcp_mem_mb() or 0.0)
        await asyncio.sleep(2)
        peak, after, open_ = hub.peak_mb(), hub.rss_mb(), hub.established()
        codes: Counter[str] = Counter()

        async def drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                async with asyncio.timeout(20):
                    while True:
                        op, data = await rawws.read_frame(reader)
                        if op == rawws.CLOSE:
                            codes[str(rawws.close_code(data))] += 1
                            return
            except (asyncio.IncompleteReadError, ConnectionError):
                codes["no close frame"] += 1
            except TimeoutError:
                codes["still_open"] += 1
            finally:
                writer.close()

        await asyncio.gather(*(drain(r, w) for r, w in socks))
        return {"subscribed": subscribed, "published": dict(statuses),
                "rss_before_mb": before, "rss_peak_mb": peak,
                "rss_peak_delta_mb": round(peak - before, 1), "rss_after_mb": after,
                "hub_established_after": open_, "close_codes": dict(codes),
                "kernel_tcp_mem_peak_delta_mb": round(tcp_peak - tcp_before, 1),
                "rss_mb_and_open_after_each_batch": trace}

    with Hub(target, sections, keys={"pub": ["publish"]}) as hub:
        time.sleep(1)
        return {"sockets": n, "batch_bytes": size, "item_bytes": item, "batches": events,
                "queued_per_socket_mb": round(size * events / MB, 1), **asyncio.run(go(hub))}
