"""The demo market: complete linear tickers, a cross (ETHBTC) that follows its legs, and
every number an exact plain decimal string."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from cryptowire.core.channels import ChannelGrammar
from cryptowire.events import Event
from cryptowire.settings import DemoSettings
from cryptowire.sources.demo import DemoSource

PLAIN = re.compile(r"^-?\d+(\.\d+)?$")
FUTURES = ("openInterest", "openInterestValue", "fundingRate", "nextFundingTime")


async def _run(channels: list[str], ticks: int, seed: int = 7) -> list[Event]:
    grammar = ChannelGrammar()
    source = DemoSource(DemoSettings(), seed=seed)
    events: list[Event] = []

    async def publish(event: Event) -> None:
        events.append(event)

    source._publish = publish  # the tick loop is driven by hand (no sleeping task)
    for name in channels:
        await source.subscribe(grammar.parse(name))
    for n in range(1, ticks + 1):
        await source.tick(n)
    return events


def _numbers(data: Any) -> list[str]:
    if isinstance(data, dict):
        return [s for v in data.values() for s in _numbers(v)]
    if isinstance(data, list):
        return [s for v in data for s in _numbers(v)]
    if isinstance(data, str):
        try:
            Decimal(data)  # "5.6E-9" is a number too: it must be caught
        except InvalidOperation:
            return []
        return [data]
    return []


async def test_linear_tickers_carry_the_futures_fields_spot_ones_do_not() -> None:
    events = await _run(["ticker:BTCUSDT", "ticker:BTCUSDT@spot", "ticker:ETHBTC"], 30)
    linear = [e.data for e in events if e.channel == "ticker:BTCUSDT"]
    spot = [e.data for e in events if e.channel == "ticker:BTCUSDT@spot"]
    assert len(linear) == len(spot) == 30
    for data in linear + [e.data for e in events if e.channel == "ticker:ETHBTC"]:
        assert isinstance(data, dict)
        assert all(data[f] is not None for f in FUTURES), data
        assert PLAIN.fullmatch(data["openInterest"]) and Decimal(data["openInterest"]) > 0
        value = Decimal(data["openInterest"]) * Decimal(data["markPrice"])
        assert Decimal(data["openInterestValue"]) == value.quantize(Decimal("0.01"))
        assert -Decimal("0.00375") <= Decimal(data["fundingRate"]) <= Decimal("0.00375")
        funding_ms = int(data["nextFundingTime"])
        assert funding_ms % (8 * 3_600_000) == 0  # 00:00, 08:00, 16:00 UTC
    assert len({d["openInterest"] for d in linear}) > 1  # it moves  # type: ignore[index]
    for data in spot:
        assert all(data[f] is None for f in FUTURES)  # type: ignore[index]


async def test_ethbtc_is_the_cross_of_its_usdt_legs_every_tick() -> None:
    events = await _run(["ticker:BTCUSDT", "ticker:ETHUSDT", "ticker:ETHBTC"], 60)
    by_tick: dict[str, list[dict[str, Any]]] = {}
    for e in events:
        assert isinstance(e.data, dict)
        by_tick.setdefault(e.channel, []).append(e.data)
    worst = Decimal(0)
    for btc, eth, cross in zip(by_tick["ticker:BTCUSDT"], by_tick["ticker:ETHUSDT"],
                               by_tick["ticker:ETHBTC"], strict=True):
        b, e, x = Decimal(btc["price"]), Decimal(eth["price"]), Decimal(cross["price"])
        assert x == (e / b).quantize(Decimal("0.000001"))
        # What the RFQ converter gets for BTC -> ETH by either path: the inverse of the
        # ETHBTC ticker, or the cross of the USDT tickers; they agree to the tick.
        worst = max(worst, abs((1 / x) / (b / e) - 1))
    assert worst < Decimal("0.0001"), worst


async def test_every_number_is_a_plain_decimal_string() -> None:
    events = await _run(["ticker:SOLUSDT", "trade:ETHUSDT", "kline:1m:BTCUSDT",
                         "swap:eth", "burn:eth"], 80)
    swaps = [e.data for e in events if e.channel == "swap:eth"]
    assert swaps and any(e.channel == "burn:eth" for e in events)
    for event in events:
        for text in _numbers(event.data):
            assert PLAIN.fullmatch(text), (event.channel, text)
    for swap in swaps:
        assert isinstance(swap, dict)
        price = Decimal(swap["price_in_paired"])
        exact = Decimal(swap["paired_amount"]) / Decimal(swap["token_amount"])
        assert price > 0 and abs(price / exact - 1) < Decimal("1e-25")
