"""The seed 001 RFQ protocol on /rfq, against a running hub, with real rate peers:
the demo market's tickers, and a local HTTP server speaking CryptoCompare's /data/price."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import websockets
from aiohttp import web
from sqlalchemy import select
from tests.waiting import eventually

from cryptowire.app.node import Node
from cryptowire.clock import now_ms
from cryptowire.rfq.quote import fmt, fmt_rate
from cryptowire.server.app import create_app
from cryptowire.settings import load_settings
from cryptowire.store.rfq import rfq_trades

pytestmark = pytest.mark.integration
TIMEOUT = 5.0


async def _serve(app: web.Application) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    return runner, port


@pytest.fixture
async def cryptocompare() -> AsyncIterator[dict[str, Any]]:
    """A CryptoCompare-shaped peer: prices as JSON numbers, errors as HTTP 200 bodies."""
    state: dict[str, Any] = {"prices": {("BTC", "ETH"): "15.87"}, "calls": 0}

    async def price(request: web.Request) -> web.Response:
        state["calls"] += 1
        fsym, tsym = request.query["fsym"], request.query["tsyms"]
        value = state["prices"].get((fsym, tsym))
        if value is None:
            body = ('{"Response":"Error","Message":"There is no data for the symbol '
                    f'{fsym} .","HasWarning":false,"Type":2}}')
        else:
            body = f'{{"{tsym}":{value}}}'  # a JSON number, as the real API sends
        return web.Response(text=body, content_type="application/json")

    app = web.Application()
    app.router.add_get("/data/price", price)
    runner, port = await _serve(app)
    state["url"] = f"http://127.0.0.1:{port}"
    yield state
    await runner.cleanup()


async def start_hub(tmp_path: Path, **rfq: Any) -> tuple[web.AppRunner, Node, str]:
    config = tmp_path / "cryptowire.toml"
    config.touch()
    settings = load_settings(config, store={"url": f"sqlite+aiosqlite:///{tmp_path}/h.db"},
                             demo={"mode": "on", "interval_s": 0.05},
                             rfq={"interval_s": 0.2, **rfq})
    node = Node(settings)
    runner, port = await _serve(create_app(node))
    return runner, node, f"ws://127.0.0.1:{port}/rfq"


async def recv(ws: Any, action: str | None = None) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(ws.recv(), TIMEOUT))
        if action is None or msg.get("action") == action:
            return msg


def start(key: str, uuid: str, amount: str = "10", frm: str = "BTC", to: str = "ETH",
          action: str = "startSession") -> str:
    return json.dumps({"rfq": {"action": action, "key": key, "currFrom": frm, "currTo": to,
                               "amountFrom": amount, "uuid": uuid}})


async def test_quote_from_live_tickers_and_paper_fill(tmp_path: Path) -> None:
    runner, node, url = await start_hub(tmp_path)
    try:
        assert node.store is not None
        key, _ = await node.store.create_key("desk", ["read", "rfq"])
        async with websockets.connect(f"{url}?api_key={key}") as ws:
            uuid = (await recv(ws))["handshake"]
            assert uuid
            await ws.send(start("k1", uuid, amount="2.5", frm="ETH", to="USDT"))
            assert (await recv(ws))["action"] == "connected"
            offer = await recv(ws, "offer")
            assert offer["key"] == "k1" and offer["channel"] == "rfq"
            assert offer["amountFrom"] == "2.5" and offer["comissionFee"] == 1
            await ws.send(json.dumps({"rfq": {"action": "acceptOffer", "key": "k1",
                                              "quoteId": offer["quoteId"], "uuid": uuid}}))
            done = await recv(ws, "orderSuccess")
            assert done["quoteId"] == offer["quoteId"]
            async with node.store.engine.connect() as conn:
                rows = (await conn.execute(select(rfq_trades))).all()
            assert len(rows) == 1
            row = rows[0]._mapping
            rate = Decimal(row["rate"])
            assert Decimal(row["amount_to"]) == Decimal("2.5") * Decimal("0.99") * rate
            assert offer["exchangeRate"] == f"{rate.quantize(Decimal('0.01'), 'ROUND_HALF_UP')}"
            # the record keeps full precision; the display is the same value rounded
            assert Decimal(row["amount_to"]).quantize(Decimal("0.01")) == \
                Decimal(offer["amountTo"])
            assert row["amount_to"] == done["amountTo"]
            # the same quote cannot be filled twice
            await ws.send(json.dumps({"rfq": {"action": "placeOrder", "key": "k1",
                                              "quoteId": offer["quoteId"], "uuid": uuid}}))
            assert "unknown quote" in (await recv(ws, "orderFailed"))["message"]
    finally:
        await runner.cleanup()


async def test_cryptocompare_rates_errors_and_seed_shapes(tmp_path: Path,
                                                          cryptocompare: dict[str, Any]) -> None:
    runner, node, url = await start_hub(tmp_path, cryptocompare_url=cryptocompare["url"])
    try:
        async with websockets.connect(url) as ws:
            uuid = (await recv(ws))["handshake"]
            await ws.send(start("k", uuid))
            await recv(ws, "connected")
            offer = await recv(ws, "offer")
            assert offer["exchangeRate"] == "15.87"
            assert offer["amountTo"] == "157.11"  # 10 x 0.99 x 15.87 = 157.113
            # updateSession re-quotes at once with the new amount
            await ws.send(start("k", uuid, amount="1", action="updateSession"))
            while (offer := await recv(ws, "offer"))["amountFrom"] != "1":
                pass
            assert offer["amountTo"] == "15.71"
            # a pair the API has no data for -> offer-failed with the API's reason
            await ws.send(start("k2", uuid, frm="XYZ", to="ETH"))
            failed = await recv(ws, "offer-failed")
            assert failed["key"] == "k2"
            assert failed["message"].startswith("Offer failed: There is no data")
            # anonymous: may quote, may not trade
            await ws.send(json.dumps({"rfq": {"action": "acceptOffer", "key": "k",
                                              "quoteId": offer["quoteId"], "uuid": uuid}}))
            assert "rfq' scope" in (await recv(ws, "orderFailed"))["message"]
            # wrong uuid and bad JSON get clear errors
            await ws.send(start("k3", "not-my-uuid"))
            err = await recv(ws)
            assert err["status"] == "error" and "uuid" in err["error"]["message"]
            await ws.send("{nope")
            err = await recv(ws)
            assert err["status"] == "error" and "Invalid JSON" in err["error"]["message"]
            await ws.send(json.dumps({"stopSession": 1}))
            assert (await recv(ws))["status"] == "error"
    finally:
        await runner.cleanup()


async def test_expiry_timeout_and_channel_form(tmp_path: Path,
                                               cryptocompare: dict[str, Any]) -> None:
    runner, node, url = await start_hub(tmp_path, cryptocompare_url=cryptocompare["url"],
                                        quote_ttl_s=0.05, max_offers=3)
    try:
        assert node.store is not None
        key, _ = await node.store.create_key("desk", ["rfq", "read"])
        async with websockets.connect(url, additional_headers={"X-API-Key": key}) as ws:
            uuid = (await recv(ws))["handshake"]
            await ws.send(start("k", uuid))
            offer = await recv(ws, "offer")
            # The quote's own expiry instant, on the clock the hub reads.
            await eventually(lambda: now_ms() > offer["expiresAt"], what="the quote expired")
            await ws.send(json.dumps({"rfq": {"action": "acceptOffer", "key": "k",
                                              "quoteId": offer["quoteId"], "uuid": uuid}}))
            assert "expired" in (await recv(ws, "orderFailed"))["message"]
            timeout = await recv(ws, "timeout")
            assert timeout["key"] == "k"
            # channel form on hub channels: subscribe, current, unsubscribe
            await ws.send(json.dumps({"subscribe": "ticker:BTCUSDT"}))
            assert (await recv(ws))["subscribe"] == "ticker:BTCUSDT"
            data = await recv(ws)
            assert data["channel"] == "ticker:BTCUSDT"
            assert isinstance(data["data"]["price"], str)
            await ws.send(json.dumps({"current": "ticker:BTCUSDT"}))
            while "current" not in (cur := await recv(ws)):
                pass
            assert cur["data"]["symbol"] == "BTCUSDT"
            await ws.send(json.dumps({"subscribe": "tickers.*"}))
            while "status" not in (rej := await recv(ws)) or rej["status"] != "error":
                pass
            assert "Wildcards" in rej["error"]["message"]
    finally:
        await runner.cleanup()


async def test_seed_session_shapes_on_live_tickers(tmp_path: Path) -> None:
    """The seed's own startSession (``"amountFrom": ""``), a JSON-number amount, an unknown
    currency, and a small rate shown with its significant digits."""
    runner, node, url = await start_hub(tmp_path)
    try:
        assert node.store is not None
        key, _ = await node.store.create_key("desk", ["read", "rfq"])
        async with websockets.connect(f"{url}?api_key={key}") as ws:
            uuid = (await recv(ws))["handshake"]
            # Seed 001 README: startSession with "amountFrom":"" -> connected, then nothing
            # until updateSession gives an amount.
            await ws.send(start("seed", uuid, amount=""))
            assert (await recv(ws)) == {"action": "connected", "key": "seed", "channel": "rfq"}
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(ws.recv(), 0.7)  # 3 intervals: no offer, no failure
            await ws.send(start("seed", uuid, amount="10", action="updateSession"))
            offer = await recv(ws)
            assert offer["action"] == "offer" and offer["amountFrom"] == "10"
            await ws.send(json.dumps({"rfq": {"action": "stopSession", "key": "seed",
                                              "uuid": uuid}}))
            await recv(ws, "stopped")
            # "amountFrom": 10.5 as a JSON number
            await ws.send(json.dumps({"rfq": {"action": "startSession", "key": "num",
                                              "currFrom": "BTC", "currTo": "USDT",
                                              "amountFrom": 10.5, "uuid": uuid}}))
            offer = await recv(ws, "offer")
            assert offer["key"] == "num" and offer["amountFrom"] == "10.5"
            await ws.send(json.dumps({"rfq": {"action": "stopSession", "key": "num",
                                              "uuid": uuid}}))
            await recv(ws, "stopped")
            # BTC -> XYZ: every path needs a ticker the hub refuses -> at once, with why
            loop = asyncio.get_running_loop()
            started = loop.time()
            await ws.send(start("xyz", uuid, to="XYZ"))
            failed = await recv(ws, "offer-failed")
            assert loop.time() - started < 1.5  # not after the 3 s first-tick wait
            assert failed["key"] == "xyz"
            assert failed["message"].startswith("Offer failed: no market for BTC/XYZ: ")
            assert "Unknown symbol 'XYZUSDT'" in failed["message"]
            assert "stale" not in failed["message"]
            await ws.send(json.dumps({"rfq": {"action": "stopSession", "key": "xyz",
                                              "uuid": uuid}}))
            await recv(ws, "stopped")
            # ETH -> BTC (about 0.0485): more than two decimals, and the very rate used
            await ws.send(start("small", uuid, amount="2.5", frm="ETH", to="BTC"))
            offer = await recv(ws, "offer")
            await ws.send(json.dumps({"rfq": {"action": "acceptOffer", "key": "small",
                                              "quoteId": offer["quoteId"], "uuid": uuid}}))
            await recv(ws, "orderSuccess")
        async with node.store.engine.connect() as conn:
            row = (await conn.execute(select(rfq_trades))).all()[-1]._mapping
        rate = Decimal(row["rate"])
        assert offer["exchangeRate"] == fmt_rate(rate, 2)
        assert len(offer["exchangeRate"].split(".")[1]) > 2
        assert fmt(Decimal("2.5") * Decimal("0.99") * rate, 2) == offer["amountTo"]
    finally:
        await runner.cleanup()
