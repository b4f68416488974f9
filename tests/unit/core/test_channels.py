"""The channel grammar: every kind, aliases, chains by id, and a reason for every refusal."""

from __future__ import annotations

import pytest

from cryptowire.core.channels import (
    KINDS,
    KLINE_INTERVALS,
    MAX_CHANNEL_LENGTH,
    SERVICES,
    Channel,
    ChannelGrammar,
)
from cryptowire.errors import ChannelError, CryptowireError

INTERVALS = "1m,3m,5m,15m,30m,1h,2h,4h,6h,12h,1d,1w,1M"
PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"


@pytest.fixture
def grammar() -> ChannelGrammar:
    return ChannelGrammar({"eth": 1, "bsc": 56})


@pytest.mark.parametrize(("arg", "name"), [
    ("ticker:BTCUSDT", "ticker:BTCUSDT"),
    ("ticker:btcusdt", "ticker:BTCUSDT"),
    ("TICKER:BTCUSDT", "ticker:BTCUSDT"),
    ("  ticker:BTCUSDT  ", "ticker:BTCUSDT"),
    ("ticker:BTCUSDT@spot", "ticker:BTCUSDT@spot"),
    ("ticker:BTCUSDT@SPOT", "ticker:BTCUSDT@spot"),
    ("ticker:BTCUSDT@linear", "ticker:BTCUSDT"),  # the default venue has no suffix
    ("trade:ETHUSDT", "trade:ETHUSDT"),
    ("trade:ETHUSDT@spot", "trade:ETHUSDT@spot"),
    ("kline:1h:BTCUSDT", "kline:1h:BTCUSDT"),
    ("kline:1H:BTCUSDT", "kline:1h:BTCUSDT"),
    ("kline:1m:BTCUSDT", "kline:1m:BTCUSDT"),
    ("kline:1M:BTCUSDT", "kline:1M:BTCUSDT"),  # month, not minute
    ("kline:1D:BTCUSDT", "kline:1d:BTCUSDT"),
    ("kline:15m:SOLUSDT@spot", "kline:15m:SOLUSDT@spot"),
    ("swap:eth", "swap:eth"),
    ("swap:ETH", "swap:eth"),
    ("swap:1", "swap:eth"),
    ("burn:56", "burn:bsc"),
    ("burn:bsc", "burn:bsc"),
    (f"swap:eth:{PEPE}", f"swap:eth:{PEPE.lower()}"),
    (f"burn:56:{PEPE}", f"burn:bsc:{PEPE.lower()}"),
    ("service:market_data", "service:market_data"),
    ("pg:fill_event", "pg:fill_event"),
    ("app:signals", "app:signals"),
    ("app:My.Feed-1_x", "app:My.Feed-1_x"),
])
def test_canonical_names(grammar: ChannelGrammar, arg: str, name: str) -> None:
    assert grammar.parse(arg).name == name
    # Canonical names parse to themselves.
    assert grammar.parse(name).name == name


@pytest.mark.parametrize(("alias", "name"), [
    ("tickers.BTCUSDT", "ticker:BTCUSDT"),
    ("tickers.btcusdt", "ticker:BTCUSDT"),
    ("publicTrade.ETHUSDT", "trade:ETHUSDT"),
    ("kline.60.BTCUSDT", "kline:1h:BTCUSDT"),
    ("kline.1.BTCUSDT", "kline:1m:BTCUSDT"),
    ("kline.D.BTCUSDT", "kline:1d:BTCUSDT"),
    ("kline.W.BTCUSDT", "kline:1w:BTCUSDT"),
    ("kline.M.BTCUSDT", "kline:1M:BTCUSDT"),
    ("kline.720.BTCUSDT", "kline:12h:BTCUSDT"),
    ("kline.4h.BTCUSDT", "kline:4h:BTCUSDT"),  # canonical interval in the alias form too
])
def test_bybit_aliases(grammar: ChannelGrammar, alias: str, name: str) -> None:
    assert grammar.parse(alias).name == name


@pytest.mark.parametrize(("bybit", "canonical"), [
    ("1", "1m"), ("3", "3m"), ("5", "5m"), ("15", "15m"), ("30", "30m"), ("60", "1h"),
    ("120", "2h"), ("240", "4h"), ("360", "6h"), ("720", "12h"), ("D", "1d"), ("W", "1w"),
    ("M", "1M"),
])
def test_every_bybit_interval(grammar: ChannelGrammar, bybit: str, canonical: str) -> None:
    assert KLINE_INTERVALS[canonical] == bybit
    assert grammar.parse(f"kline.{bybit}.BTCUSDT").interval == canonical


def test_parsed_fields(grammar: ChannelGrammar) -> None:
    assert grammar.parse("kline:4h:ETHUSDT@spot") == Channel(
        name="kline:4h:ETHUSDT@spot", kind="kline", symbol="ETHUSDT", venue="spot",
        interval="4h")
    assert grammar.parse(f"swap:1:{PEPE}") == Channel(
        name=f"swap:eth:{PEPE.lower()}", kind="swap", chain="eth", chain_id=1,
        token=PEPE.lower())
    assert grammar.parse("burn:bsc") == Channel(name="burn:bsc", kind="burn", chain="bsc",
                                                chain_id=56)
    assert grammar.parse("service:news").key == "news"
    assert grammar.parse("pg:fill_event").key == "fill_event"
    assert grammar.parse("app:x").key == "x"


def test_only_app_channels_skip_upstream(grammar: ChannelGrammar) -> None:
    assert grammar.parse("app:x").upstream is False
    for arg in ("ticker:BTCUSDT", "trade:BTCUSDT", "kline:1h:BTCUSDT", "swap:eth",
                "burn:bsc", "service:news", "pg:fill_event"):
        assert grammar.parse(arg).upstream is True, arg


def test_every_service(grammar: ChannelGrammar) -> None:
    for service in SERVICES:
        assert grammar.parse(f"service:{service}").name == f"service:{service}"


def test_default_venue_spot() -> None:
    spot = ChannelGrammar(default_venue="spot")
    assert spot.parse("ticker:BTCUSDT").venue == "spot"
    assert spot.parse("ticker:BTCUSDT@spot").name == "ticker:BTCUSDT"
    assert spot.parse("ticker:BTCUSDT@linear").name == "ticker:BTCUSDT@linear"
    assert spot.parse("tickers.BTCUSDT").venue == "spot"


def test_configured_chains() -> None:
    g = ChannelGrammar({"base": 8453})
    assert g.parse("swap:8453").name == "swap:base"
    with pytest.raises(ChannelError, match=r"Known chains: base \(8453\)\."):
        g.parse("swap:eth")


@pytest.mark.parametrize(("arg", "reason"), [
    ("kline:7m:ETHUSDT", f"Unknown kline interval '7m'. Use one of {INTERVALS}."),
    ("kline.7.ETHUSDT", f"Unknown kline interval '7'. Use one of {INTERVALS}."),
    ("kline:1h", "Kline channels are kline:<interval>:<SYMBOL>, e.g. kline:1h:BTCUSDT."),
    ("tickers.*", "Wildcards (e.g. tickers.*) are not supported. Use specific symbols like "
                  "tickers.BTCUSDT or ticker:ETHUSDT."),
    ("ticker:*", "Wildcards (e.g. tickers.*) are not supported."),
    ("trade:BTC?", "Wildcards"),
    ("swap:eth:#", "Wildcards"),
    ("app:a>b", "Wildcards"),
    ("", "Empty channel. Use e.g. 'ticker:BTCUSDT' or 'swap:eth'."),
    ("   ", "Empty channel."),
    ("BTCUSDT", "Unknown channel 'BTCUSDT'. Use kind:params with kind one of ticker, trade, "
                "kline, book, liquidation, swap, burn, service, pg, app"),
    ("ticker:", "Unknown channel 'ticker:'."),
    ("weather:berlin", "Unknown channel kind 'weather'. Use one of ticker, trade, kline, book, "
                       "liquidation, swap, burn, service, pg, app."),
    ("orderbook.20.BTCUSDT", "Unsupported book depth '20' for BTCUSDT. Use one of 1, 50, 200, "
                             "500, 1000 (e.g. book:50:BTCUSDT)."),
    ("book:500:BTCUSDT@spot", "Unsupported book depth '500' for BTCUSDT@spot. Use one of 1, 50, "
                              "200, 1000 (e.g. book:50:BTCUSDT@spot)."),
    ("book:x:BTCUSDT", "Unsupported book depth 'x'"),
    ("book:50", "Book channels are book:<depth>:<SYMBOL>[@<venue>], e.g. book:50:BTCUSDT."),
    ("orderBook.50.BTCUSDT", "Unknown topic 'orderBook.50.BTCUSDT'. Bybit-style topics are"),
    ("tickers.BTC.USDT", "Unknown topic"),
    ("ticker:BTC-USDT", "Invalid symbol 'BTC-USDT'. Symbols are 2-30 letters or digits"),
    ("ticker:B", "Invalid symbol 'B'."),
    ("ticker:BTCUSDT@futures", "Unknown venue 'futures'. Use one of linear, spot"),
    ("swap:solana", "Unknown chain 'solana'. Known chains: eth (1), bsc (56)."),
    ("swap:137", "Unknown chain '137'."),
    ("swap:eth:0x123", "Invalid token address '0x123'. Use a 0x-prefixed 40-hex-digit"),
    ("service:weather", "Unknown service 'weather'. Use one of market_data,"),
    ("pg:Fill-Event", "Postgres channel names are lower-case identifiers"),
    ("app:" + "x" * 65, "App channel names are 1-64 of"),
    ("app:a b", "App channel names are"),
    ("x" * (MAX_CHANNEL_LENGTH + 1), f"Channel longer than {MAX_CHANNEL_LENGTH} characters."),
])
def test_rejections_say_why(grammar: ChannelGrammar, arg: str, reason: str) -> None:
    with pytest.raises(ChannelError) as info:
        grammar.parse(arg)
    assert info.value.reason.startswith(reason), info.value.reason
    assert info.value.arg == arg
    assert info.value.code == "INVALID_ARGS"
    assert isinstance(info.value, ValueError) and isinstance(info.value, CryptowireError)


@pytest.mark.parametrize(("arg", "name", "depth", "venue"), [
    ("book:50:BTCUSDT", "book:50:BTCUSDT", 50, "linear"),
    ("orderbook.200.ethusdt", "book:200:ETHUSDT", 200, "linear"),
    ("book:1:btcusdt@spot", "book:1:BTCUSDT@spot", 1, "spot"),
    ("book:500:BTCUSDT@linear", "book:500:BTCUSDT", 500, "linear"),
])
def test_book_channels(grammar: ChannelGrammar, arg: str, name: str, depth: int,
                       venue: str) -> None:
    channel = grammar.parse(arg)
    assert (channel.name, channel.kind, channel.depth, channel.venue) == (
        name, "book", depth, venue)
    assert channel.symbol == name.split(":")[2].split("@")[0]
    assert channel.stateful and channel.upstream


@pytest.mark.parametrize(("arg", "name"), [
    ("liquidation:BTCUSDT", "liquidation:BTCUSDT"),
    ("allLiquidation.ethusdt", "liquidation:ETHUSDT"),
    ("liquidation:BTCUSDT@spot", "liquidation:BTCUSDT@spot"),
])
def test_liquidation_channels_are_event_streams(grammar: ChannelGrammar, arg: str,
                                                name: str) -> None:
    channel = grammar.parse(arg)
    assert channel.name == name and channel.kind == "liquidation"
    assert not channel.stateful


def test_state_kinds() -> None:
    g = ChannelGrammar()
    assert [g.parse(a).stateful for a in ("ticker:BTCUSDT", "kline:1m:BTCUSDT", "trade:BTCUSDT",
                                          "swap:eth", "app:x", "pg:x")] == [
        True, True, False, False, False, False]


@pytest.mark.parametrize("arg", [None, 5, ["ticker:BTCUSDT"], {"channel": "x"}])
def test_non_strings_are_refused(grammar: ChannelGrammar, arg: object) -> None:
    with pytest.raises(ChannelError, match="Channel must be a string"):
        grammar.parse(arg)


def test_catalog_describes_every_kind(grammar: ChannelGrammar) -> None:
    catalog = grammar.catalog()
    kinds = catalog["kinds"]
    assert isinstance(kinds, dict)
    assert set(kinds) == set(KINDS)
    for kind, entry in kinds.items():
        # Every example in the catalog is itself a valid channel of that kind.
        assert grammar.parse(entry["example"]).kind == kind
    assert catalog["chains"] == {"eth": 1, "bsc": 56}
    assert catalog["default_venue"] == "linear"
    assert kinds["kline"]["intervals"] == list(KLINE_INTERVALS)
    aliases = catalog["aliases"]
    assert isinstance(aliases, dict)
    assert grammar.parse("tickers.BTCUSDT").name == "ticker:BTCUSDT"
