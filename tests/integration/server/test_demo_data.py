"""What a newcomer gets from the demo hub is coherent, complete and exact on the wire:
swap prices are plain decimal strings (never ``"5.6E-9"``), linear tickers carry the futures
fields, and the RFQ rate BTC -> ETH agrees with the tickers on the same screen."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from tests.integration.server.conftest import TIMEOUT, Hub, next_data, subscribe

pytestmark = pytest.mark.integration

PLAIN = re.compile(r"^-?\d+(\.\d+)?$")
EXPONENT = re.compile(r'"-?\d+(\.\d+)?[eE][-+]?\d+"')


async def test_demo_swaps_write_price_in_paired_without_exponent(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "swap:eth")
    for _ in range(4):  # demo token amounts are 1e6..1e9, paired 0.001..5: prices ~1e-12..1e-5
        raw = ""
        async with asyncio.timeout(TIMEOUT):
            while '"swap:eth"' not in raw or '"offset"' not in raw:
                raw = str(await ws.recv())
        swap = json.loads(raw)["data"]
        # The data's numbers only: the epoch is hex and may read like one ("72830e31").
        assert not EXPONENT.search(json.dumps(swap)), raw
        price = swap["price_in_paired"]
        assert PLAIN.fullmatch(price) and price.startswith("0.0000"), price
        exact = Decimal(swap["paired_amount"]) / Decimal(swap["token_amount"])
        assert abs(Decimal(price) / exact - 1) < Decimal("1e-25")


async def test_demo_linear_ticker_carries_the_futures_fields(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "ticker:ETHUSDT")
    data = (await next_data(ws, "ticker:ETHUSDT"))["data"]
    for field in ("openInterest", "openInterestValue", "fundingRate"):
        assert PLAIN.fullmatch(data[field]), (field, data[field])
    assert int(data["nextFundingTime"]) % (8 * 3_600_000) == 0


@pytest.mark.hub_settings(rfq={"interval_s": 0.2})
async def test_rfq_btc_eth_rate_agrees_with_the_demo_tickers(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "ticker:ETHBTC", "ticker:BTCUSDT", "ticker:ETHUSDT")
    last: dict[str, Decimal] = {}
    walked = asyncio.Event()

    async def read_tickers() -> None:
        frames = 0
        while True:
            msg = await next_data(ws)
            last[msg["channel"]] = Decimal(msg["data"]["price"])
            frames += 1
            if frames >= 90:  # 30 demo ticks: independent walks would have drifted apart
                walked.set()

    reader = asyncio.create_task(read_tickers())
    try:
        await asyncio.wait_for(walked.wait(), TIMEOUT)
        rfq = await hub.connect("/rfq")
        uuid = json.loads(await rfq.recv())["handshake"]
        await rfq.send(json.dumps({"rfq": {"action": "startSession", "key": "k",
                                           "currFrom": "BTC", "currTo": "ETH",
                                           "amountFrom": "1", "uuid": uuid}}))
        offers = 0
        async with asyncio.timeout(TIMEOUT * 3):
            while offers < 5:
                msg: dict[str, Any] = json.loads(await rfq.recv())
                if msg.get("action") != "offer" or len(last) < 3:
                    continue
                offers += 1
                rate = Decimal(msg["exchangeRate"])
                inverse = 1 / last["ticker:ETHBTC"]
                cross = last["ticker:BTCUSDT"] / last["ticker:ETHUSDT"]
                # within a few demo ticks of movement (0.05 s each), never percent apart
                assert abs(rate / inverse - 1) < Decimal("0.0005"), (rate, inverse)
                assert abs(rate / cross - 1) < Decimal("0.0005"), (rate, cross)
    finally:
        reader.cancel()
