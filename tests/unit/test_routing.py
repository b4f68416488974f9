"""Routing by (kind, venue): a market channel goes to the source declaring its venue, other
channels by kind (earlier sources win); the node and the cluster leaders agree."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cryptowire.app.node import Node
from cryptowire.core.channels import ChannelGrammar
from cryptowire.core.source import PublishFn, SourceStatus, pick, serves, venues_of
from cryptowire.settings import Settings
from cryptowire.sources.fallback import FallbackSource

GRAMMAR = ChannelGrammar()
MARKET = frozenset({"ticker", "trade", "kline", "book", "liquidation"})


@dataclass(eq=False)
class Fake:
    name: str
    kinds: frozenset[str]
    venues: frozenset[str] | None = None

    async def start(self, publish: PublishFn) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, channel: object) -> None:
        return None

    async def unsubscribe(self, channel: object) -> None:
        return None

    def status(self) -> SourceStatus:
        return SourceStatus(name=self.name, state="up")


class Plain:
    """A source that declares no venues at all (like the demo, pgnotify...)."""

    name = "demo"
    kinds = MARKET | {"swap"}


BYBIT = Fake("bybit", MARKET, frozenset({"linear", "spot"}))
BINANCE = Fake("binance", MARKET, frozenset({"binance", "binance-spot"}))
DEMO = Fake("demo", MARKET | {"swap", "burn"})
PG = Fake("pgnotify", frozenset({"pg"}))


def route(sources: list[Fake], name: str) -> str | None:
    source = pick(sources, GRAMMAR.parse(name))  # type: ignore[arg-type]
    return None if source is None else source.name


def test_market_channels_go_to_the_source_of_their_venue() -> None:
    sources = [BYBIT, BINANCE, DEMO, PG]
    assert route(sources, "ticker:BTCUSDT") == "bybit"  # the default venue, linear
    assert route(sources, "ticker:BTCUSDT@binance") == "binance"
    assert route(sources, "book:500:BTCUSDT@binance-spot") == "binance"
    assert route(sources, "trade:BTCUSDT@spot") == "bybit"
    assert route(sources, "kline:1h:BTCUSDT@bybit-spot") == "bybit"  # alias of spot
    # A venue no source declares: the source serving every venue (the demo), else none.
    assert route(sources, "ticker:BTCUSDT@okx") == "demo"
    assert route([BYBIT, BINANCE, PG], "ticker:BTCUSDT@okx") is None
    # Other kinds by kind, first wins; a venue-declaring source never takes a foreign kind.
    assert route(sources, "swap:eth") == "demo"
    assert route(sources, "pg:fill_event") == "pgnotify"
    assert route(sources, "service:news") is None


def test_a_venue_source_wins_over_an_earlier_one_serving_every_venue() -> None:
    assert route([DEMO, BINANCE], "ticker:BTCUSDT@binance") == "binance"
    assert route([DEMO, BINANCE], "ticker:BTCUSDT") == "demo"  # binance lacks linear


def test_serves_and_venues_of() -> None:
    assert venues_of(Plain()) is None
    assert venues_of(BYBIT) == {"linear", "spot"}
    assert serves(BYBIT, GRAMMAR.parse("ticker:ETHUSDT@spot"))
    assert not serves(BYBIT, GRAMMAR.parse("ticker:ETHUSDT@okx"))
    assert not serves(BYBIT, GRAMMAR.parse("swap:eth"))
    assert serves(DEMO, GRAMMAR.parse("ticker:ETHUSDT@okx-spot"))


def test_a_fallback_is_routed_as_its_primary() -> None:
    wrapped = FallbackSource(BINANCE, DEMO, "http://127.0.0.1:9/")
    assert wrapped.venues == {"binance", "binance-spot"}
    sources: list[Any] = [BYBIT, wrapped, DEMO]
    assert route(sources, "ticker:BTCUSDT@binance") == "binance"


def test_the_node_routes_by_kind_and_venue() -> None:
    node = Node(Settings(), sources=[BYBIT, BINANCE, DEMO, PG])
    assert node.route(node.grammar.parse("ticker:BTCUSDT@binance")) is BINANCE
    assert node.route(node.grammar.parse("ticker:BTCUSDT")) is BYBIT
    assert node.route(node.grammar.parse("tickers.BTCUSDT")) is BYBIT  # Bybit alias
    assert node.route(node.grammar.parse("swap:eth")) is DEMO
