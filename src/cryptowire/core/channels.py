"""The channel grammar: parse, validate, canonicalize, with a reason for every rejection.

Canonical names are ``kind:params`` (DESIGN.md, "Channel"):

=========================  ==========================================================
``ticker:BTCUSDT``         exchange ticker (default venue); ``ticker:BTCUSDT@spot``
``trade:BTCUSDT``          exchange trades
``kline:1h:BTCUSDT``       candles; intervals 1m 3m 5m 15m 30m 1h 2h 4h 6h 12h 1d 1w 1M
``book:50:BTCUSDT``        order book cut at a depth the venue serves (PROTOCOLS.md 4.1)
``liquidation:BTCUSDT``    liquidations (PROTOCOLS.md 4.4)
``swap:eth``               DEX swaps on a chain; ``swap:eth:0x<token>`` for one token
``burn:bsc``               burns on a chain; ``burn:bsc:0x<token>``
``service:market_data``    a periodic data service (seed 004)
``pg:fill_event``          a Postgres NOTIFY channel (seed 002)
``app:<name>``             events applications push through the publish API
=========================  ==========================================================

Aliases (Bybit topic names, as the Mudrex seed accepts them) are canonicalized:
``tickers.BTCUSDT`` -> ``ticker:BTCUSDT``, ``kline.60.BTCUSDT`` -> ``kline:1h:BTCUSDT``,
``publicTrade.BTCUSDT`` -> ``trade:BTCUSDT``, ``orderbook.50.BTCUSDT`` -> ``book:50:BTCUSDT``,
``allLiquidation.BTCUSDT`` -> ``liquidation:BTCUSDT``. Chains are accepted by name or id
(``swap:1`` -> ``swap:eth``); token addresses are lower-cased.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from cryptowire.errors import ChannelError

#: Canonical kline intervals and their Bybit V5 names (docs: websocket/public/kline).
KLINE_INTERVALS: dict[str, str] = {
    "1m": "1", "3m": "3", "5m": "5", "15m": "15", "30m": "30",
    "1h": "60", "2h": "120", "4h": "240", "6h": "360", "12h": "720",
    "1d": "D", "1w": "W", "1M": "M",
}  # fmt: skip
BYBIT_INTERVALS: dict[str, str] = {v: k for k, v in KLINE_INTERVALS.items()}
_INTERVAL_LIST = ",".join(KLINE_INTERVALS)

#: The seed 004 services (``service:<name>``).
SERVICES: tuple[str, ...] = (
    "market_data", "explorers", "news", "sentiment", "whale_tracking", "rpc_nodes",
    "onchain", "health_checker", "pool_manager", "scheduler", "huggingface", "persistence",
)  # fmt: skip

VENUES: tuple[str, ...] = ("linear", "spot")
#: Book depths each venue serves (Bybit V5 docs: websocket/public/orderbook). Bybit's docs
#: list 1/50/200/1000 for both since 2025; linear 500 was taken offline on 2025-09-30 but is
#: kept for deployments that still serve it (real Bybit refuses it, and the client gets
#: Bybit's reason in the subscribe reply).
BOOK_DEPTHS: dict[str, tuple[int, ...]] = {"linear": (1, 50, 200, 500, 1000),
                                           "spot": (1, 50, 200, 1000)}
MARKET_KINDS = frozenset({"ticker", "trade", "kline", "book", "liquidation"})
#: Kinds whose channels have a state (the latest value follows a subscribe, PROTOCOLS.md 4.2;
#: conflation sends the state at the end of each interval, 4.3). The others are event streams.
STATE_KINDS = frozenset({"ticker", "kline", "book"})
CHAIN_KINDS = frozenset({"swap", "burn"})
KINDS: tuple[str, ...] = ("ticker", "trade", "kline", "book", "liquidation", "swap", "burn",
                          "service", "pg", "app")

# Validators: always used with ``fullmatch`` (``$`` would accept a trailing newline).
_SYMBOL = re.compile(r"[A-Z0-9]{2,30}")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]{40}")
_PG_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_APP_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,64}")
_WILDCARD = re.compile(r"[*?>#]")
MAX_CHANNEL_LENGTH = 200


@dataclass(frozen=True, slots=True)
class Channel:
    """A parsed, canonical channel. ``name`` is the canonical string."""

    name: str
    kind: str
    symbol: str | None = None
    venue: str | None = None
    interval: str | None = None
    chain: str | None = None
    chain_id: int | None = None
    token: str | None = None
    key: str | None = None  # service name, pg channel or app name
    depth: int | None = None  # book channels

    @property
    def stateful(self) -> bool:
        """True for channels with a state (ticker, kline, book): see :data:`STATE_KINDS`."""
        return self.kind in STATE_KINDS

    @property
    def upstream(self) -> bool:
        """True when a source must be asked for it (demand-driven); app channels are not."""
        return self.kind != "app"


class ChannelGrammar:
    """Parses client arguments into :class:`Channel` for one deployment's chains and venue."""

    def __init__(
        self,
        chains: Mapping[str, int] | None = None,
        *,
        default_venue: str = "linear",
        services: Iterable[str] = SERVICES,
    ) -> None:
        self.chains: dict[str, int] = dict(chains or {"eth": 1, "bsc": 56})
        self._chain_by_id = {str(cid): name for name, cid in self.chains.items()}
        self.default_venue = default_venue
        self.services = tuple(services)

    def parse(self, arg: object) -> Channel:
        """Return the canonical channel for ``arg`` or raise :class:`ChannelError`."""
        if not isinstance(arg, str):
            raise ChannelError(str(arg), "Channel must be a string such as 'ticker:BTCUSDT'.")
        raw = arg.strip()
        if not raw:
            raise ChannelError(arg, "Empty channel. Use e.g. 'ticker:BTCUSDT' or 'swap:eth'.")
        if len(raw) > MAX_CHANNEL_LENGTH:
            raise ChannelError(arg, f"Channel longer than {MAX_CHANNEL_LENGTH} characters.")
        if _WILDCARD.search(raw):
            example = "tickers.BTCUSDT or ticker:ETHUSDT"
            raise ChannelError(
                arg,
                f"Wildcards (e.g. tickers.*) are not supported. Use specific symbols like "
                f"{example}.",
            )
        if "." in raw and ":" not in raw:
            return self._parse_alias(arg, raw)
        kind, sep, rest = raw.partition(":")
        if not sep or not rest:
            raise ChannelError(
                arg,
                f"Unknown channel '{raw}'. Use kind:params with kind one of {', '.join(KINDS)} "
                "(e.g. ticker:BTCUSDT, kline:1h:BTCUSDT, swap:eth). Send op 'channels' for the "
                "catalog.",
            )
        kind = kind.lower()
        if kind in ("ticker", "trade", "liquidation"):
            symbol, venue = self._symbol_venue(arg, rest)
            return self._market(kind, symbol, venue)
        if kind == "book":
            depth_text, sep, sym = rest.partition(":")
            if not sep:
                raise ChannelError(arg, "Book channels are book:<depth>:<SYMBOL>[@<venue>], "
                                        "e.g. book:50:BTCUSDT.")
            symbol, venue = self._symbol_venue(arg, sym)
            return self._book(arg, depth_text, symbol, venue)
        if kind == "kline":
            interval, sep, sym = rest.partition(":")
            if not sep:
                raise ChannelError(arg, "Kline channels are kline:<interval>:<SYMBOL>, "
                                        "e.g. kline:1h:BTCUSDT.")
            canonical = self._interval(arg, interval)
            symbol, venue = self._symbol_venue(arg, sym)
            return self._market("kline", symbol, venue, canonical)
        if kind in CHAIN_KINDS:
            return self._chain_channel(arg, kind, rest)
        return self._keyed(arg, kind, rest)

    def _keyed(self, arg: str, kind: str, rest: str) -> Channel:
        """``service:``, ``pg:`` and ``app:`` channels (a name after the kind)."""
        if kind == "service":
            if rest not in self.services:
                raise ChannelError(
                    arg, f"Unknown service '{rest}'. Use one of {', '.join(self.services)}."
                )
            return Channel(name=f"service:{rest}", kind="service", key=rest)
        if kind == "pg":
            if not _PG_NAME.fullmatch(rest):
                raise ChannelError(arg, "Postgres channel names are lower-case identifiers, "
                                        "e.g. pg:fill_event.")
            return Channel(name=f"pg:{rest}", kind="pg", key=rest)
        if kind == "app":
            if not _APP_NAME.fullmatch(rest):
                raise ChannelError(arg, "App channel names are 1-64 of A-Z a-z 0-9 _ . -, "
                                        "e.g. app:signals.")
            return Channel(name=f"app:{rest}", kind="app", key=rest)
        raise ChannelError(
            arg, f"Unknown channel kind '{kind}'. Use one of {', '.join(KINDS)}."
        )

    def catalog(self) -> dict[str, object]:
        """What the ``channels`` op returns: kinds, grammar and examples."""
        return {
            "kinds": {
                "ticker": {"grammar": "ticker:<SYMBOL>[@<venue>]", "example": "ticker:BTCUSDT"},
                "trade": {"grammar": "trade:<SYMBOL>[@<venue>]", "example": "trade:BTCUSDT"},
                "kline": {
                    "grammar": "kline:<interval>:<SYMBOL>[@<venue>]",
                    "example": "kline:1h:BTCUSDT",
                    "intervals": list(KLINE_INTERVALS),
                },
                "book": {
                    "grammar": "book:<depth>:<SYMBOL>[@<venue>]",
                    "example": "book:50:BTCUSDT",
                    "depths": {venue: list(d) for venue, d in BOOK_DEPTHS.items()},
                },
                "liquidation": {"grammar": "liquidation:<SYMBOL>[@<venue>]",
                                "example": "liquidation:BTCUSDT"},
                "swap": {"grammar": "swap:<chain>[:<token address>]", "example": "swap:eth"},
                "burn": {"grammar": "burn:<chain>[:<token address>]", "example": "burn:bsc"},
                "service": {"grammar": "service:<name>", "services": list(self.services),
                            "example": "service:market_data"},
                "pg": {"grammar": "pg:<postgres channel>", "example": "pg:fill_event"},
                "app": {"grammar": "app:<name>", "example": "app:signals"},
            },
            "venues": list(VENUES),
            "default_venue": self.default_venue,
            "chains": dict(self.chains),
            "aliases": {
                "tickers.<SYMBOL>": "ticker:<SYMBOL>",
                "kline.<bybit interval>.<SYMBOL>": "kline:<interval>:<SYMBOL>",
                "publicTrade.<SYMBOL>": "trade:<SYMBOL>",
                "orderbook.<depth>.<SYMBOL>": "book:<depth>:<SYMBOL>",
                "allLiquidation.<SYMBOL>": "liquidation:<SYMBOL>",
            },
        }

    # -- pieces ---------------------------------------------------------------------------

    def _parse_alias(self, arg: str, raw: str) -> Channel:
        parts = raw.split(".")
        topic = parts[0]
        if topic == "tickers" and len(parts) == 2:
            return self._market("ticker", self._symbol(arg, parts[1]), self.default_venue)
        if topic == "publicTrade" and len(parts) == 2:
            return self._market("trade", self._symbol(arg, parts[1]), self.default_venue)
        if topic == "allLiquidation" and len(parts) == 2:
            return self._market("liquidation", self._symbol(arg, parts[1]), self.default_venue)
        if topic == "orderbook" and len(parts) == 3:
            return self._book(arg, parts[1], self._symbol(arg, parts[2]), self.default_venue)
        if topic == "kline" and len(parts) == 3:
            interval = BYBIT_INTERVALS.get(parts[1])
            if interval is None:
                interval = self._interval(arg, parts[1])
            return self._market("kline", self._symbol(arg, parts[2]), self.default_venue,
                                interval)
        raise ChannelError(
            arg,
            f"Unknown topic '{raw}'. Bybit-style topics are tickers.<SYMBOL>, "
            "kline.<interval>.<SYMBOL>, publicTrade.<SYMBOL>, orderbook.<depth>.<SYMBOL> and "
            "allLiquidation.<SYMBOL>; or use ticker:BTCUSDT.",
        )

    def _market(
        self, kind: str, symbol: str, venue: str, interval: str | None = None
    ) -> Channel:
        suffix = "" if venue == self.default_venue else f"@{venue}"
        middle = f"{interval}:" if interval else ""
        return Channel(name=f"{kind}:{middle}{symbol}{suffix}", kind=kind, symbol=symbol,
                       venue=venue, interval=interval)

    def _book(self, arg: str, depth_text: str, symbol: str, venue: str) -> Channel:
        depths = BOOK_DEPTHS.get(venue, ())
        valid = ", ".join(str(d) for d in depths)
        if not depth_text.isdigit() or int(depth_text) not in depths:
            where = "" if venue == self.default_venue else f"@{venue}"
            raise ChannelError(arg, f"Unsupported book depth '{depth_text}' for {symbol}{where}. "
                                    f"Use one of {valid} (e.g. book:50:{symbol}{where}).")
        depth = int(depth_text)
        suffix = "" if venue == self.default_venue else f"@{venue}"
        return Channel(name=f"book:{depth}:{symbol}{suffix}", kind="book", symbol=symbol,
                       venue=venue, depth=depth)

    def _symbol_venue(self, arg: str, text: str) -> tuple[str, str]:
        symbol, sep, venue = text.partition("@")
        if sep:
            venue = venue.lower()
            if venue not in VENUES:
                raise ChannelError(arg, f"Unknown venue '{venue}'. Use one of "
                                        f"{', '.join(VENUES)} (e.g. ticker:BTCUSDT@spot).")
        else:
            venue = self.default_venue
        return self._symbol(arg, symbol), venue

    @staticmethod
    def _symbol(arg: str, text: str) -> str:
        symbol = text.upper()
        if not _SYMBOL.fullmatch(symbol):
            raise ChannelError(arg, f"Invalid symbol '{text}'. Symbols are 2-30 letters or "
                                    "digits, e.g. BTCUSDT.")
        return symbol

    @staticmethod
    def _interval(arg: str, text: str) -> str:
        if text in KLINE_INTERVALS:
            return text
        lowered = text.lower()
        if lowered in KLINE_INTERVALS and lowered != "1m":
            return lowered
        raise ChannelError(arg, f"Unknown kline interval '{text}'. Use one of {_INTERVAL_LIST}.")

    def _chain_channel(self, arg: str, kind: str, rest: str) -> Channel:
        chain_text, sep, token = rest.partition(":")
        chain = chain_text.lower()
        if chain in self._chain_by_id:
            chain = self._chain_by_id[chain]
        if chain not in self.chains:
            known = ", ".join(f"{n} ({i})" for n, i in self.chains.items()) or "none configured"
            raise ChannelError(arg, f"Unknown chain '{chain_text}'. Known chains: {known}.")
        if not sep:
            return Channel(name=f"{kind}:{chain}", kind=kind, chain=chain,
                           chain_id=self.chains[chain])
        if not _ADDRESS.fullmatch(token):
            raise ChannelError(arg, f"Invalid token address '{token}'. Use a 0x-prefixed "
                                    f"40-hex-digit address, e.g. {kind}:{chain}:0x6982...1933.")
        token = token.lower()
        return Channel(name=f"{kind}:{chain}:{token}", kind=kind, chain=chain,
                       chain_id=self.chains[chain], token=token)
