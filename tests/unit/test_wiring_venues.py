"""The wiring builds one ExchangeSource per venue declared in the registry and enabled in
the settings, each with the demo fallback in ``demo.mode = "auto"``; the demo market serves a
venue's channels while the venue is unreachable."""

from __future__ import annotations

import pytest
from tests.integration.sources.test_exchange_supervisor import FakeCodec, requests, topic
from tests.waiting import eventually

from cryptowire.app.wiring import build_exchanges
from cryptowire.core.channels import ChannelGrammar
from cryptowire.core.source import pick
from cryptowire.events import Event
from cryptowire.settings import BinanceSettings, DemoSettings, Settings
from cryptowire.sources.demo import DemoSource
from cryptowire.sources.exchange import registry
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.exchange.venue import Market, Venue
from cryptowire.sources.fallback import FallbackSource

GRAMMAR = ChannelGrammar()


def declare_binance(section: BinanceSettings) -> Venue:
    """A stand-in Binance declaration (the real one is the binance helper's)."""
    markets = {
        key: Market(key=key, label=key, endpoints={"public": url}, rest_url=rest,
                    codec=FakeCodec(), topic=topic, requests=requests)
        for key, url, rest in (("binance", section.futures_market_url, section.futures_rest_url),
                               ("binance-spot", section.spot_url, section.spot_rest_url))}
    return Venue(name="binance", title="Binance", markets=markets, default_market="binance",
                 probe_url=f"{section.futures_rest_url}/fapi/v1/ping")


@pytest.fixture
def binance_declared(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.VENUES, "binance",
                        "tests.unit.test_wiring_venues:declare_binance")


def test_one_source_per_declared_and_enabled_venue(binance_declared: None) -> None:
    settings = Settings(okx={"enabled": False})
    demo = DemoSource(settings.demo)
    sources = build_exchanges(settings, demo)
    assert [s.name for s in sources] == ["bybit", "binance"]
    assert all(isinstance(s, FallbackSource) and s.fallback is demo for s in sources)
    binance = sources[1]
    assert isinstance(binance, FallbackSource)
    assert binance.probe_url == "https://fapi.binance.com/fapi/v1/ping"
    assert pick([*sources, demo], GRAMMAR.parse("ticker:BTCUSDT@binance")) is binance
    assert pick([*sources, demo], GRAMMAR.parse("ticker:BTCUSDT")) is sources[0]

    plain = build_exchanges(Settings(binance={"enabled": False}, okx={"enabled": False}))
    assert [s.name for s in plain] == ["bybit"] and isinstance(plain[0], ExchangeSource)
    assert plain[0].venues == {"linear", "spot"}


def test_every_registered_venue_is_built_in_registry_order() -> None:
    assert list(registry.VENUES)[0] == "bybit"
    assert [s.name for s in build_exchanges(Settings())] == list(registry.VENUES)
    okx = build_exchanges(Settings(bybit={"enabled": False}, binance={"enabled": False}))[0]
    assert isinstance(okx, ExchangeSource) and okx.name == "okx"
    assert okx.venues == {"okx", "okx-spot"}


async def test_the_demo_serves_a_venue_while_it_is_unreachable(binance_declared: None) -> None:
    settings = Settings(binance={"futures_rest_url": "http://127.0.0.1:1"},
                        okx={"enabled": False})
    demo = DemoSource(DemoSettings(interval_s=0.01))
    [_, binance] = build_exchanges(settings, demo)
    events: list[Event] = []

    async def publish(event: Event) -> None:
        events.append(event)

    await demo.start(publish)
    await binance.start(publish)
    try:
        await binance.subscribe(GRAMMAR.parse("ticker:BTCUSDT@binance"))
        await eventually(lambda: any(e.channel == "ticker:BTCUSDT@binance" for e in events),
                         5.0, "demo ticks on the binance channel")
        assert {e.source for e in events} == {"demo"}
        assert binance.status().state == "down"
    finally:
        await binance.stop()
        await demo.stop()
