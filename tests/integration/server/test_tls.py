"""TLS: with server.tls_cert/tls_key the hub serves https:// and wss:// (self-signed cert)."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
from pathlib import Path

import pytest
import websockets
from tests.integration.hubkit import serve

from cryptowire.app.node import Node
from cryptowire.server.app import ssl_context
from cryptowire.settings import load_settings

pytestmark = pytest.mark.integration


def make_cert(tmp_path: Path) -> tuple[Path, Path]:
    if shutil.which("openssl") is None:
        pytest.fail("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


async def test_wss_serves_the_native_protocol(tmp_path: Path) -> None:
    cert, key = make_cert(tmp_path)
    config = tmp_path / "cryptowire.toml"
    config.touch()
    settings = load_settings(config, store={"url": f"sqlite+aiosqlite:///{tmp_path}/t.db"},
                             demo={"mode": "on", "interval_s": 0.05}, bybit={"enabled": False},
                             server={"tls_cert": str(cert), "tls_key": str(key)})
    node = Node(settings)
    ctx = ssl_context(node)
    assert ctx is not None
    runner, port = await serve(node, ssl_context=ctx)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    try:
        async with websockets.connect(f"wss://127.0.0.1:{port}/ws", ssl=client_ctx) as ws:
            await ws.send(json.dumps({"id": 1, "op": "subscribe", "args": ["ticker:BTCUSDT"]}))
            reply = json.loads(await ws.recv())
            assert reply["success"] is True
            data = json.loads(await ws.recv())
            assert data["channel"] == "ticker:BTCUSDT"
        # plain ws:// to a TLS port does not get through
        with pytest.raises((OSError, websockets.InvalidMessage, websockets.InvalidHandshake)):
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws", open_timeout=3):
                pass
    finally:
        await runner.cleanup()


def test_cert_without_key_is_refused(tmp_path: Path) -> None:
    from cryptowire.errors import ConfigError

    with pytest.raises(ConfigError, match="go together"):
        load_settings(None, server={"tls_cert": str(tmp_path / "c.pem")})
