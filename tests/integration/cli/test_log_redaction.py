"""Secrets never reach the log of ``cryptowire serve`` (issue 10, item 16).

A request line or header over 8,190 bytes makes aiohttp log the first bytes of the line
with its ``LineTooLong`` traceback: keys in ``?api_key=``, ``X-API-Key``, Bearer values and
``/pg/<JWT>`` paths among them. The hub runs as users run it (a subprocess, the CLI's own
logging setup); the test provokes each case over a raw socket and greps the log.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest
from tests.peers.anvil import free_port

pytestmark = pytest.mark.integration

KEY = "cw_ab12cd34_" + "K" * 43
BEARER = "cw_zz99yy88_" + "B" * 43
JWT = "eyJhbGciOiJIUzI1NiJ9.eyJtb2RlIjoiciIsImNoYW5uZWxzIjpbImEiXX0.U0lHTkFUVVJFc2VjcmV0"
PAD = 9000  # past aiohttp's 8,190-byte line limit

REQUESTS = [
    f"GET /ws?api_key={KEY}&pad={'x' * PAD} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nX-API-Key: {KEY}{'y' * PAD}\r\n\r\n",
    f"GET /pg/{JWT}{'z' * PAD} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
    f"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {BEARER}{'w' * PAD}\r\n\r\n",
]


async def _send(port: int, request: str) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request.encode())
    try:
        return await asyncio.wait_for(reader.read(200), 10)
    finally:
        writer.close()


async def test_keys_and_tokens_in_oversized_request_lines_are_redacted(tmp_path: Path) -> None:
    port = free_port()
    config = tmp_path / "cryptowire.toml"
    config.write_text(
        f'[server]\nport = {port}\n[store]\nurl = "sqlite+aiosqlite:///{tmp_path}/cw.db"\n'
        '[demo]\nmode = "on"\n[bybit]\nenabled = false\n[evm]\nenabled = false\n')
    log_path = tmp_path / "hub.log"
    with log_path.open("ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "cryptowire", "serve", "-c", str(config)],
                                cwd=tmp_path, stdout=log, stderr=log)
    try:
        async with aiohttp.ClientSession() as http:
            async with asyncio.timeout(30):
                while True:
                    assert proc.poll() is None, log_path.read_text()
                    try:
                        async with http.get(f"http://127.0.0.1:{port}/ready") as resp:
                            if resp.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.05)
        for request in REQUESTS:
            assert (await _send(port, request)).startswith(b"HTTP/1.0 400 Bad Request")

        async def logged() -> str:
            async with asyncio.timeout(10):
                while (text := log_path.read_text()).count("LineTooLong") < len(REQUESTS):
                    await asyncio.sleep(0.05)
                return text

        text = await logged()
    finally:
        os.kill(proc.pid, signal.SIGTERM)
        proc.wait(15)
    assert proc.returncode == 0, text
    for secret in (KEY[12:], BEARER[12:], JWT, JWT.split(".")[1], "K" * 10, "B" * 10):
        assert secret not in text
    # What is left says what it was, and the public key prefixes stay.
    assert "api_key=***" in text
    assert "cw_ab12cd34_***" in text and "cw_zz99yy88_***" in text
    assert "/pg/eyJ***" in text
