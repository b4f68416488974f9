"""A venue, declared: frozen data plus a few pure functions (see the package README).

:class:`Venue` = name (the events' ``source``), title (for messages), its :class:`Market`\\ s
keyed by the channel venue values of :mod:`cryptowire.core.channels` (``linear``/``spot``
for Bybit, ``binance``/``binance-spot``, ``okx``/``okx-spot``) and the REST URL the demo
fallback probes. A :class:`Market` says where its sockets are (``endpoints``: name -> URL;
each :class:`Stream` names the endpoint it lives on), how a channel becomes a :class:`Topic`
(one or more upstream streams), how requests look, the venue's limits and keep-alive rule,
and its :class:`~.codec.Codec`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cryptowire.core.channels import KINDS, Channel
from cryptowire.errors import SourceError
from cryptowire.sources.exchange.codec import Item, TopicState

Op = Literal["subscribe", "unsubscribe"]
#: ``(op, args, n) -> (req_id, request)``: one request carrying ``args`` (each a
#: :attr:`Stream.arg`); ``n`` is a fresh positive counter to derive the id from (Binance wants
#: an integer id, OKX up to 32 alphanumerics). The ack :class:`~.codec.Ack` echoes ``req_id``.
RequestBuilder = Callable[[Op, Sequence[Any], int], tuple[str, Any]]


class Codec(Protocol):
    """A venue's frames (one codec per market, or one shared by all of a venue's markets):
    see :mod:`.codec` for the items and the state."""

    def parse(self, raw: str | bytes) -> Sequence[Item]:
        """The items of one text frame; :class:`ValueError` if it is malformed."""
        ...

    def state(self, topic: Topic, market: Market) -> TopicState:
        """A new state for ``topic`` (called when its first channel is subscribed)."""
        ...


@dataclass(frozen=True, slots=True)
class Stream:
    """One upstream stream: ``key`` is how the venue's frames name it (what the codec puts in
    :attr:`~.codec.Data.stream`), ``arg`` what a subscribe request carries for it (default
    ``key``; OKX: ``{"channel": .., "instId": ..}``), ``endpoint`` the market endpoint whose
    socket carries it."""

    key: str
    arg: Any = field(default=None, compare=False)
    endpoint: str = "public"

    @property
    def request_arg(self) -> Any:
        return self.key if self.arg is None else self.arg


@dataclass(frozen=True, slots=True)
class Topic:
    """What one channel needs upstream: one state fed by one or more streams (Binance's
    ticker merges ``@ticker``, ``@bookTicker`` and ``@markPrice``). Channels that map to the
    same ``key`` share one upstream subscription and one state.

    ``resync``: how a broken state re-synchronises: ``"resubscribe"`` (unsubscribe then
    subscribe its streams on the same socket: Bybit, OKX send a fresh snapshot) or
    ``"snapshot"`` (the state asks for a REST snapshot: Binance depth)."""

    key: str
    kind: str
    symbol: str
    streams: tuple[Stream, ...]
    interval: str | None = None
    depth: int | None = None
    resync: Literal["resubscribe", "snapshot"] = "resubscribe"


@dataclass(frozen=True, slots=True)
class Limits:
    """``streams_per_connection``: more streams open another socket of the same endpoint
    (sharding); ``args_per_request``: streams per subscribe request; ``requests_per_s``:
    control messages a socket may send per second (spaced out; ``None``: no limit).

    ``max_lifetime_s``: the venue closes a socket at that age (Binance 24 h; ``None``: no
    limit, Bybit, OKX). A socket is rotated make-before-break when it has lived
    ``max_lifetime_s - rotation_margin_s`` (see :mod:`.rotation`); the margin defaults to a
    tenth of the lifetime, at most 10 minutes, and the handover may take half of it.

    ``requests_per_connection``: subscribe/unsubscribe requests one socket may send per
    ``request_window_s`` (OKX: 480 per hour; ``None``: no budget). A new stream goes to a
    socket with budget left (another shard when none has); an unsubscribe or resync on a
    spent socket waits for the window to free a slot."""

    streams_per_connection: int | None = None
    args_per_request: int = 10
    requests_per_s: float | None = None
    max_lifetime_s: float | None = None
    rotation_margin_s: float | None = None
    requests_per_connection: int | None = None
    request_window_s: float = 3600.0

    def __post_init__(self) -> None:
        if self.max_lifetime_s is not None and not 0 < self.margin_s < self.max_lifetime_s:
            raise ValueError(f"rotation_margin_s ({self.margin_s:g}) must be above 0 and below "
                             f"max_lifetime_s ({self.max_lifetime_s:g})")

    @property
    def rotate_after_s(self) -> float | None:
        """The socket age at which a rotation starts (``None``: never)."""
        if self.max_lifetime_s is None:
            return None
        return self.max_lifetime_s - self.margin_s

    @property
    def margin_s(self) -> float:
        if self.rotation_margin_s is not None:
            return self.rotation_margin_s
        return min(600.0, (self.max_lifetime_s or 0.0) / 10)


@dataclass(frozen=True, slots=True)
class Ping:
    """Keep-alive. ``text``: what the client sends every ``interval_s`` (Bybit
    ``'{"op":"ping"}'``, OKX ``'ping'``); ``None`` when the server pings and the client
    answers (Binance: WebSocket-level pings, answered by aiohttp). ``watchdog_s``: a socket
    from which nothing came for that long is replaced (``None``: no watchdog; with no client
    ping, set it above the quietest stream's period)."""

    text: str | None = None
    interval_s: float = 20.0
    watchdog_s: float | None = 30.0


@dataclass(frozen=True, slots=True)
class Instruments:
    """The market's instruments list. ``request(cursor)`` -> ``(path, params)`` (``cursor``
    is ``""`` for the first page); ``parse(body)`` -> ``({native symbol: status}, next
    cursor or "")``; a symbol whose status is in ``closed`` is refused as not trading."""

    request: Callable[[str], tuple[str, dict[str, str]]]
    parse: Callable[[Any], tuple[dict[str, str], str]]
    closed: frozenset[str] = frozenset()


def _same(symbol: str) -> str:
    return symbol


@dataclass(frozen=True, slots=True)
class Market:
    """One market of a venue (one channel venue value)."""

    key: str  # the channel venue value: "linear", "binance-spot", "okx"...
    label: str  # in messages: "linear", "spot", "USD-M futures"
    endpoints: Mapping[str, str]  # endpoint name -> WebSocket URL
    rest_url: str
    codec: Codec
    #: The channel's topic, or :class:`SourceError` with a client-facing reason (use
    #: :func:`check_kind`, :func:`check_depth`, :func:`venue_interval`).
    topic: Callable[[Channel, Market], Topic]
    requests: RequestBuilder
    kinds: frozenset[str] = frozenset({"ticker", "trade", "kline", "book", "liquidation"})
    intervals: Mapping[str, str] = field(default_factory=dict)  # canonical -> venue's
    book_depths: tuple[int, ...] = ()
    to_native: Callable[[str], str] = _same  # BTCUSDT -> BTC-USDT-SWAP / btcusdt
    from_native: Callable[[str], str | None] = _same  # None: not a symbol of this market
    limits: Limits = field(default_factory=Limits)
    ping: Ping = field(default_factory=Ping)
    instruments: Instruments | None = None
    #: ``(stream key, venue's message) -> client reason`` for a refused subscribe.
    refusal: Callable[[str, str], str] | None = None
    #: Appended to "Unknown symbol .. (e.g. BTCUSDT)": e.g. ", or add @spot for a spot pair."
    unknown_hint: str = "."


@dataclass(frozen=True, slots=True)
class Venue:
    name: str  # the events' ``source`` and the source's name
    title: str  # "Bybit"
    markets: Mapping[str, Market]
    default_market: str  # for a channel without a venue
    #: A cheap public REST URL: the demo fallback probes it (reachable = any answer < 500).
    probe_url: str | None = None

    @property
    def kinds(self) -> frozenset[str]:
        return frozenset(k for m in self.markets.values() for k in m.kinds)

    def market_of(self, channel: Channel) -> Market:
        key = channel.venue or self.default_market
        market = self.markets.get(key)
        if market is None:
            raise SourceError(f"{self.title} has no venue '{key}'. Use one of "
                              f"{', '.join(self.markets)}.")
        return market


# -- helpers for Market.topic ------------------------------------------------------------------


def kinds_text(kinds: frozenset[str]) -> str:
    ordered = [k for k in KINDS if k in kinds]
    return ordered[0] if len(ordered) == 1 else f"{', '.join(ordered[:-1])} and {ordered[-1]}"


def check_kind(channel: Channel, market: Market, title: str) -> str:
    """The channel's symbol, or :class:`SourceError` for a kind the market does not serve."""
    if channel.kind not in market.kinds:
        raise SourceError(f"{title} serves {kinds_text(market.kinds)} channels, not "
                          f"'{channel.kind}' ({channel.name}).")
    if not channel.symbol:
        raise SourceError(f"Channel '{channel.name}' names no symbol, e.g. ticker:BTCUSDT.")
    return channel.symbol


def check_depth(channel: Channel, market: Market, title: str) -> int:
    if channel.depth not in market.book_depths:
        valid = ", ".join(str(d) for d in market.book_depths)
        raise SourceError(f"{title} {market.key} has no book depth {channel.depth} "
                          f"({channel.name}); use one of {valid}.")
    return channel.depth


def venue_interval(channel: Channel, market: Market, title: str) -> str:
    """The venue's spelling of the channel's kline interval."""
    native = market.intervals.get(channel.interval or "")
    if native is None:
        raise SourceError(f"{title} {market.label} has no kline interval '{channel.interval}'. "
                          f"Use one of {','.join(market.intervals)}.")
    return native
