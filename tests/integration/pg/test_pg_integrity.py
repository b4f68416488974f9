"""One bad NOTIFY costs only itself (issue 10, item 6), against the real Postgres.

Notifications sent in one transaction reach the hub together (at COMMIT) and are drained
as one batch: a payload that cannot be encoded (a lone surrogate, nesting deeper than 254)
must be refused alone, logged with its channel (never its payload) and counted in
``/metrics``, while the others of the batch are mirrored and delivered. The test has its own
database (``pg_url``) and its own LISTEN channel name.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass

import aiohttp
import asyncpg
import orjson
import pytest
from sqlalchemy.engine import make_url
from tests.integration.hubkit import serve
from websockets.asyncio.client import ClientConnection, connect

from cryptowire.app.node import Node
from cryptowire.settings import load_settings
from cryptowire.sources.pgnotify import PgNotifySource

pytestmark = pytest.mark.integration
TIMEOUT = 5.0
#: In the refused payloads only: it must never reach the log.
MARKER = "SECRET-PAYLOAD-TEXT"


@dataclass
class NotifyHub:
    node: Node
    port: int
    db: asyncpg.Connection
    listen: str

    def source(self) -> PgNotifySource:
        return next(s for s in self.node.sources if isinstance(s, PgNotifySource))


@pytest.fixture
async def notify_hub(pg_url: str) -> AsyncIterator[NotifyHub]:
    listen = f"cw_integrity_{secrets.token_hex(4)}"
    db = await asyncpg.connect(
        make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False))
    settings = load_settings(
        None, store={"url": pg_url}, demo={"mode": "off"}, bybit={"enabled": False},
        services={"enabled": False}, demand={"linger_s": 0.05},
        pgnotify={"enabled": True, "mirror": True, "listen_channels": [listen],
                  "keepalive_s": 1.0, "backoff_cap_s": 0.5})
    node = Node(settings)
    runner, port = await serve(node)
    hub = NotifyHub(node, port, db, listen)
    try:
        async with asyncio.timeout(TIMEOUT):
            while hub.source().status().state != "up":
                await asyncio.sleep(0.02)
        yield hub
    finally:
        await runner.cleanup()
        await db.close()


async def next_frame(ws: ClientConnection, channel: str) -> dict[str, object]:
    async with asyncio.timeout(TIMEOUT):
        while True:
            msg = orjson.loads(await ws.recv())
            if isinstance(msg, dict) and msg.get("channel") == channel and "offset" in msg:
                return msg


def good(n: int) -> str:
    return orjson.dumps({"channel": "good_event", "payload": {"n": n}}).decode()


async def test_a_bad_notify_is_refused_alone_and_the_rest_of_its_batch_goes_through(
        notify_hub: NotifyHub, caplog: pytest.LogCaptureFixture) -> None:
    hub = notify_hub
    assert hub.node.store is not None
    key, _ = await hub.node.store.create_key("reader", ["read"])
    async with connect(f"ws://127.0.0.1:{hub.port}/ws",
                       additional_headers={"X-API-Key": key}) as ws:
        await ws.send('{"op":"subscribe","args":["pg:good_event"]}')
        reply = orjson.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        assert reply["args"] == ["pg:good_event"], reply
        surrogate = ('{"channel": "good_event", "payload": {"s": "\\ud800 '
                     + MARKER + '"}}')
        deep = ['{"channel": "good_event", "payload": {"m": "' + MARKER + f' {i}", "d": '
                + "[" * 300 + "]" * 300 + "}}" for i in (1, 2)]  # Postgres folds duplicates
        with caplog.at_level(logging.WARNING, logger="cryptowire.sources.pgnotify"):
            async with hub.db.transaction():  # delivered together at COMMIT: one batch
                for text in (good(1), surrogate, good(2), *deep, good(3)):
                    await hub.db.execute("SELECT pg_notify($1, $2)", hub.listen, text)
            frames = [await next_frame(ws, "pg:good_event") for _ in range(3)]
    assert [f["data"] for f in frames] == [{"n": 1}, {"n": 2}, {"n": 3}]
    assert [f["offset"] for f in frames] == [1, 2, 3]
    # mirrored too (the mirror is written before the batch is published)
    rows = await hub.db.fetch("SELECT payload FROM pg_mirror WHERE channel = 'good_event' "
                              "ORDER BY id")
    assert [r["payload"] for r in rows] == ['{"n":1}', '{"n":2}', '{"n":3}']
    # Each is counted; logged with its channel (the LISTEN channel for text that is not
    # JSON, the pg: channel for a payload that cannot be encoded), at most once per channel
    # (the second deep one is only counted), never with the payload.
    assert hub.source().status().rejected == 3
    refused = sorted(r.getMessage() for r in caplog.records if "refused" in r.getMessage())
    assert len(refused) == 2, refused
    assert refused[0].startswith(f"pgnotify: refused a notification on LISTEN {hub.listen}: "
                                 "payload is not JSON: ")
    assert refused[1] == ("pgnotify: refused a notification on pg:good_event: "
                          "payload nested deeper than 254 levels")
    assert all(MARKER not in r.getMessage() for r in caplog.records)
    async with asyncio.timeout(TIMEOUT), aiohttp.ClientSession() as http, \
            http.get(f"http://127.0.0.1:{hub.port}/metrics") as resp:
        metrics = await resp.text()
    assert 'cryptowire_source_rejected_total{source="pgnotify"} 3.0' in metrics
