"""Every REST route the app registers is described in /openapi.json (and nothing extra)."""

from __future__ import annotations

from pathlib import Path

from cryptowire.core.node import Node
from cryptowire.server.app import create_app
from cryptowire.server.openapi import document
from cryptowire.settings import ECONIA_CHANNELS, load_settings

# WebSocket upgrades, the dashboard's files and the docs themselves are not REST operations.
NOT_REST_PREFIXES = ("/ws", "/rfq", "/swaps", "/pg/", "/static/", "/echo")
NOT_REST = {"/", "/favicon.ico", "/openapi.json", "/docs"}
MIRRORS = {f"/{c}s" for c in ECONIA_CHANNELS}  # seed 002 mirrors, documented in postgres.md
DOCUMENTED_WS_REST = {"/ws/stats", "/ws/services", "/ws/endpoints"}


def test_every_rest_route_is_documented(tmp_path: Path) -> None:
    config = tmp_path / "cryptowire.toml"
    config.touch()
    settings = load_settings(config, store={"url": f"sqlite+aiosqlite:///{tmp_path}/o.db"},
                             pgnotify={"mirror": True})
    app = create_app(Node(settings))
    registered: set[tuple[str, str]] = set()
    for route in app.router.routes():
        path = route.resource.canonical if route.resource is not None else ""
        method = route.method.lower()
        if method == "head" or path in NOT_REST or path in MIRRORS:
            continue
        if path.startswith(NOT_REST_PREFIXES) and path not in DOCUMENTED_WS_REST:
            continue
        registered.add((method, path))
    documented = {(m, p) for p, ops in document()["paths"].items() for m in ops}
    assert registered - documented == set(), "routes missing from openapi.py"
    assert documented - registered == set(), "openapi.py describes routes that do not exist"
