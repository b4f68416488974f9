"""Operational endpoints: ``/api/v1/info``, ``/ready``, ``/health``, ``/stats``,
``/metrics``, ``/openapi.json``, ``/docs``. (``/`` is the web dashboard: ``server/web.py``.)"""

from __future__ import annotations

from aiohttp import web

from cryptowire import __version__
from cryptowire.core.access import STATS, authorize
from cryptowire.server import openapi
from cryptowire.server import web as dashboard
from cryptowire.server.auth import rest_principal
from cryptowire.server.context import NODE
from cryptowire.server.metrics import registry_for, render
from cryptowire.server.replies import json
from cryptowire.server.rest import problems

_METRICS = web.AppKey("metrics_registry", object)


async def info(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return json({
        "name": "cryptowire", "version": __version__, "demo": node.demo_active,
        "dashboard": "/", "websocket": "/ws", "rfq": "/rfq", "docs": "/docs",
        "health": "/health", "stats": "/stats",
        "channels_example": ["ticker:BTCUSDT", "kline:1m:ETHUSDT", "swap:eth", "app:signals"],
    })


async def ready(request: web.Request) -> web.Response:
    node = request.app[NODE]
    return json({"ready": node.ready}, status=200 if node.ready else 503)


async def health(request: web.Request) -> web.Response:
    node = request.app[NODE]
    if node.store is not None:
        try:
            await node.store.ping()
            node.store_ok = True
        except Exception:
            node.store_ok = False
    healthy, body = node.health()
    return json(body, status=200 if healthy else 503)


async def stats(request: web.Request) -> web.Response:
    """Aggregates for whoever may read (docs/security.md); the per-channel lists
    (``channels``, ``upstream_topics``) only where the detail is allowed."""
    node = request.app[NODE]
    principal = await rest_principal(request, STATS, "read")
    body = node.stats()
    if authorize(principal, STATS, "detail", node.policy) is not None:
        body["channels"] = len(body["channels"])
        body["upstream_topics"] = len(body["upstream_topics"])
    return json(body)


async def metrics(request: web.Request) -> web.Response:
    registry = request.app[_METRICS]
    return web.Response(body=render(registry),  # type: ignore[arg-type]
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def openapi_json(request: web.Request) -> web.Response:
    return json(openapi.document())


def setup(app: web.Application) -> None:
    app[_METRICS] = registry_for(app[NODE])
    app.router.add_get("/api/v1/info", info)
    app.router.add_get("/ready", ready)
    app.router.add_get("/health", health)
    app.router.add_get("/stats", problems(stats))
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/openapi.json", openapi_json)
    app.router.add_get("/docs", dashboard.docs)  # Swagger UI: server/web.py
