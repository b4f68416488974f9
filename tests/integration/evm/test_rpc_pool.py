"""Three RPC URLs, one dead and one answering HTTP 429: the watcher misses nothing and
duplicates nothing, and ``/stats`` shows the failing URLs benched. URLs carrying provider
keys never show them: not in ``/stats``, ``/metrics``, the service payloads or the logs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest
from aiohttp import ClientWebSocketResponse, web
from tests.integration.evm.evmhub import CHAIN, HubFactory, collect, subscribe
from tests.peers.anvil import AnvilNode, Dex, free_port

N = 20


@pytest.fixture
async def rate_limiter() -> AsyncIterator[str]:
    """A tiny HTTP peer that answers every JSON-RPC call with 429 Too Many Requests."""
    hits = 0

    async def handle(request: web.Request) -> web.Response:
        nonlocal hits
        hits += 1
        return web.json_response({"error": "Too Many Requests"}, status=429,
                                 headers={"Retry-After": "1"})

    app = web.Application()
    app.router.add_post("/", handle)
    # No access log: the upstream's own request lines (its URL with the test's fake key) are
    # not cryptowire's logs.
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()
        assert hits > 0, "the 429 URL was never tried"


async def test_dead_and_rate_limited_urls_lose_nothing(
        evm_hub_factory: HubFactory, dex: Dex, anvil: AnvilNode, rate_limiter: str) -> None:
    dead = f"http://127.0.0.1:{free_port()}/"
    hub = await evm_hub_factory(rpc_urls=[dead, rate_limiter, anvil.url],
                                evm={"rpc_backoff_s": 0.05, "rpc_backoff_cap_s": 0.3})
    await hub.track(dex)
    ws = await hub.ws()
    await subscribe(ws, f"swap:{CHAIN}")
    sent = []
    for i in range(N):
        sent.append(await dex.swap(dex.tokens[i % 2], buy=i % 3 != 0, amount_in=10**17))
    frames = await collect(ws, N, timeout=20)
    keys = [(f["data"]["tx_hash"], f["data"]["log_index"]) for f in frames]
    assert len(keys) == N and len(set(keys)) == N
    assert {k[0] for k in keys} == set(sent)
    stats = await (await hub.http.get(f"{hub.url}/stats")).json()
    # Named by position + redacted URL (these three have no key: no "/***").
    names = [f"#1 {origin(dead)}", f"#2 {origin(rate_limiter)}", f"#3 {origin(anvil.url)}"]
    rpc = {u["label"]: u for u in stats["sources"]["evm"]["chains"][CHAIN]["rpc"]}
    assert list(rpc) == names
    assert [u["url"] for u in rpc.values()] == [origin(u) for u in (dead, rate_limiter,
                                                                     anvil.url)]
    assert rpc[names[0]]["errors"] > 0 and rpc[names[0]]["last_error"]
    assert rpc[names[1]]["rate_limited"] > 0
    assert "429" in rpc[names[1]]["last_error"]
    assert rpc[names[2]]["failovers"] > 0 and rpc[names[2]]["errors"] == 0
    metrics = await (await hub.http.get(f"{hub.url}/metrics")).text()
    limited = [line for line in metrics.splitlines()
               if line.startswith("cryptowire_rpc_url_rate_limited_total")
               and f'url="{names[1]}"' in line]
    assert limited and float(limited[0].rsplit(" ", 1)[1]) > 0
    assert f'cryptowire_rpc_url_healthy{{chain="{CHAIN}",url="{names[2]}"}} 1.0' in metrics


def origin(url: str) -> str:
    """``scheme://host:port`` of a loopback test URL."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port}"


async def read_for(ws: ClientWebSocketResponse, seconds: float) -> list[dict[str, Any]]:
    """The data frames that arrive within ``seconds``."""
    frames: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                msg = orjson.loads(await ws.receive_str())
                if "channel" in msg and "offset" in msg:
                    frames.append(msg)
    return frames


KEYS = ("DEADKEY0123456789", "hunter2pass", "LIMITKEY0123456789", "ANVILKEY0123456789")


async def test_rpc_url_keys_never_leak(
        evm_hub_factory: HubFactory, dex: Dex, anvil: AnvilNode, rate_limiter: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """Keys in the user-info, the path and the query of RPC URLs (one dead, one rate
    limited, one answering) appear nowhere: /stats, /metrics, service:rpc_nodes,
    service:pool_manager, the log records (web3's DEBUG ones included)."""
    caplog.set_level(logging.DEBUG)
    dead = f"http://ops:hunter2pass@127.0.0.1:{free_port()}/v2/DEADKEY0123456789"
    limited = f"{rate_limiter}?apikey=LIMITKEY0123456789"
    good = f"{anvil.url}/?apikey=ANVILKEY0123456789"
    hub = await evm_hub_factory(
        rpc_urls=[dead, limited, good],
        evm={"rpc_backoff_s": 0.05, "rpc_backoff_cap_s": 0.3},
        services={"rpc_nodes_interval_s": 0.2, "pool_manager_interval_s": 0.2})
    await hub.track(dex)
    ws = await hub.ws()
    await subscribe(ws, f"swap:{CHAIN}", "service:rpc_nodes", "service:pool_manager")
    for i in range(3):
        await dex.swap(dex.tokens[i % 2], buy=True, amount_in=10**17)
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while len([f for f in frames if f["channel"] == f"swap:{CHAIN}"]) < 3:
            frames += await read_for(ws, 0.2)
    names = [f"#{i} {origin(u)}/***" for i, u in enumerate((dead, limited, good), start=1)]

    async def stats() -> dict[str, Any]:
        return await (await hub.http.get(f"{hub.url}/stats")).json()  # type: ignore[no-any-return]

    deadline = asyncio.get_running_loop().time() + 10
    while True:  # until both failing URLs were tried (and benched) at least once
        rpc = (await stats())["sources"]["evm"]["chains"][CHAIN]["rpc"]
        if rpc[0]["errors"] and rpc[1]["rate_limited"]:
            break
        assert asyncio.get_running_loop().time() < deadline, rpc
        await asyncio.sleep(0.1)
    # Service payloads from after the benching: read until both services have published and
    # a pool payload shows the dead URL benched (not a fixed window).
    after: list[dict[str, Any]] = []
    async with asyncio.timeout(20):
        while not (any(f["channel"] == "service:rpc_nodes" for f in after)
                   and any(f["channel"] == "service:pool_manager"
                           and names[0] in f["data"]["inactive_sources"] for f in after)):
            after += await read_for(ws, 0.2)
    frames += after
    stats_text = orjson.dumps(await stats()).decode()
    metrics = await (await hub.http.get(f"{hub.url}/metrics")).text()
    services = [f for f in frames if f["channel"].startswith("service:")]
    services_text = orjson.dumps(services).decode()
    logs = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    for key in KEYS:
        assert key not in stats_text, key
        assert key not in metrics, key
        assert key not in services_text, key
        assert key not in logs, key
    # ...while an operator can still tell the URLs apart.
    rpc = (await stats())["sources"]["evm"]["chains"][CHAIN]["rpc"]
    assert [u["label"] for u in rpc] == names
    assert f'url="{names[1]}"' in metrics
    assert f"rpc {names[0]} benched" in logs
    pools = [f["data"] for f in services if f["channel"] == "service:pool_manager"]
    # The dead URL is benched for at most rpc_backoff_cap_s, then retried: a payload taken
    # while it waits for its retry lists it as active again, so look across all of them.
    assert any(names[0] in p["inactive_sources"] for p in pools), pools
    assert names[2] in pools[-1]["active_sources"]
    last_nodes = [f for f in services if f["channel"] == "service:rpc_nodes"][-1]["data"]
    assert [u["label"] for u in last_nodes["chains"][CHAIN]["rpc"]] == names
    # web3 logs each request's endpoint at DEBUG; the record was scrubbed, not dropped.
    assert any(r.name == "web3.providers.AsyncHTTPProvider" and names[2] in r.getMessage()
               for r in caplog.records)
