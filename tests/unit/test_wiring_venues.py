"""The wiring builds one ExchangeSource per venue declared in the registry and enabled in
the settings, each with the demo fallback in ``demo.mode = "auto"``; the demo market serves a
venue's channels while the venue is unreachable."""

from __future__ import annotations

from tests.waiting import eventually

from cryptowire.app.wiring import build_exchanges
from cryptowire.core.channels import ChannelGrammar
from cryptowire.core.source import pick
from cryptowire.events import Event
from cryptowire.settings import DemoSettings, Settings
from cryptowire.sources.demo import DemoSource
from cryptowire.sources.exchange import registry
from cryptowire.sources.exchange.source import ExchangeSource
from cryptowire.sources.fallback import FallbackSource

GRAMMAR = ChannelGrammar()


def test_one_source_per_declared_and_enabled_venue() -> None:
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


async def test_the_demo_serves_a_venue_while_it_is_unreachable() -> None:
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
