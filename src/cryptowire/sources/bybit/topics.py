"""Bybit V5 public topics and client requests, sans-I/O.

A :class:`~cryptowire.core.channels.Channel` of kind ``ticker``, ``trade``, ``kline``, ``book``
or ``liquidation`` maps to one Bybit topic on one category's socket (docs:
v5/websocket/public/ticker, trade, kline, orderbook, all-liquidation):

=============================  ============================  ===========
channel                        topic                         category
=============================  ============================  ===========
``ticker:BTCUSDT``             ``tickers.BTCUSDT``           default
``trade:BTCUSDT@spot``         ``publicTrade.BTCUSDT``       spot
``kline:1h:BTCUSDT``           ``kline.60.BTCUSDT``          default
``book:50:BTCUSDT@spot``       ``orderbook.50.BTCUSDT``      spot
``liquidation:BTCUSDT``        ``allLiquidation.BTCUSDT``    linear only
=============================  ============================  ===========

``allLiquidation`` covers USDT/USDC and inverse contracts only ("Covers: USDT contract / USDC
contract / Inverse contract", docs: v5/websocket/public/all-liquidation): a spot liquidation
channel is refused with that reason before anything goes upstream.

Requests are ``{"req_id": .., "op": "subscribe", "args": [...]}`` with at most
:data:`MAX_ARGS_PER_REQUEST` args (Bybit's spot limit, applied to every category so one rule
holds), and the heartbeat ``{"op": "ping"}`` the client sends every 20 s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

from cryptowire.core.channels import (
    BOOK_DEPTHS,
    BYBIT_INTERVALS,
    KLINE_INTERVALS,
    VENUES,
    Channel,
)
from cryptowire.errors import SourceError

Category = Literal["linear", "spot"]
CATEGORIES: tuple[Category, ...] = ("linear", "spot")

#: Bybit spot refuses a subscribe request with more than 10 args (reference/bybit/README.md).
MAX_ARGS_PER_REQUEST = 10

#: Channel kind -> Bybit topic prefix.
_PREFIX = {"ticker": "tickers", "trade": "publicTrade", "kline": "kline", "book": "orderbook",
           "liquidation": "allLiquidation"}
_KIND = {prefix: kind for kind, prefix in _PREFIX.items()}
#: Every depth any category serves, as Bybit writes it in a topic.
_DEPTH_TEXTS = frozenset(str(d) for depths in BOOK_DEPTHS.values() for d in depths)


@dataclass(frozen=True, slots=True)
class Topic:
    """One Bybit public topic; ``interval`` is canonical (``1h``), klines only; ``depth``
    books only."""

    kind: str
    symbol: str
    interval: str | None = None
    depth: int | None = None

    @property
    def name(self) -> str:
        """The topic as Bybit spells it, e.g. ``kline.60.BTCUSDT``."""
        if self.kind == "kline":
            assert self.interval is not None
            return f"kline.{KLINE_INTERVALS[self.interval]}.{self.symbol}"
        if self.kind == "book":
            return f"orderbook.{self.depth}.{self.symbol}"
        return f"{_PREFIX[self.kind]}.{self.symbol}"


def category_of(channel: Channel, default: Category = "linear") -> Category:
    """The Bybit category (socket) that serves ``channel``."""
    venue = channel.venue or default
    if venue == "linear":
        return "linear"
    if venue == "spot":
        return "spot"
    raise SourceError(f"Bybit has no venue '{venue}'. Use one of {', '.join(VENUES)}.")


def topic_for(channel: Channel, category: Category | None = None) -> Topic:
    """The Bybit topic of a market channel, or :class:`SourceError` saying why there is none
    (on ``category``'s socket, when given: spot has no liquidation stream)."""
    if channel.kind not in _PREFIX:
        raise SourceError(
            f"Bybit serves ticker, trade, kline, book and liquidation channels, not "
            f"'{channel.kind}' ({channel.name})."
        )
    if not channel.symbol:
        raise SourceError(f"Channel '{channel.name}' names no symbol, e.g. ticker:BTCUSDT.")
    if channel.kind == "liquidation" and category == "spot":
        raise SourceError(
            f"Bybit has no liquidations on spot ({channel.name}): its allLiquidation stream "
            f"covers USDT, USDC and inverse contracts. Use liquidation:{channel.symbol}."
        )
    if channel.kind == "book":
        venue = channel.venue or category or "linear"
        if channel.depth not in BOOK_DEPTHS.get(venue, ()):
            valid = ", ".join(str(d) for d in BOOK_DEPTHS.get(venue, ()))
            raise SourceError(f"Bybit {venue} has no book depth {channel.depth} "
                              f"({channel.name}); use one of {valid}.")
        return Topic("book", channel.symbol, depth=channel.depth)
    if channel.kind == "kline":
        if channel.interval not in KLINE_INTERVALS:
            raise SourceError(
                f"Unknown kline interval '{channel.interval}'. Use one of "
                f"{','.join(KLINE_INTERVALS)}."
            )
        return Topic("kline", channel.symbol, channel.interval)
    return Topic(channel.kind, channel.symbol)


def parse_topic(text: str) -> Topic:
    """``kline.60.BTCUSDT`` -> ``Topic("kline", "BTCUSDT", "1h")``, ``orderbook.50.BTCUSDT``
    -> ``Topic("book", "BTCUSDT", depth=50)``; :class:`ValueError` if the text is not a
    topic cryptowire serves."""
    parts = text.split(".")
    kind = _KIND.get(parts[0])
    if kind == "kline" and len(parts) == 3 and parts[1] in BYBIT_INTERVALS and parts[2]:
        return Topic("kline", parts[2], BYBIT_INTERVALS[parts[1]])
    if kind == "book" and len(parts) == 3 and parts[1] in _DEPTH_TEXTS and parts[2]:
        return Topic("book", parts[2], depth=int(parts[1]))
    if kind in ("ticker", "trade", "liquidation") and len(parts) == 2 and parts[1]:
        return Topic(kind, parts[1])
    raise ValueError(f"not a Bybit ticker, trade, kline, orderbook or allLiquidation topic: "
                     f"{text!r}")


def channel_for(topic: Topic, venue: Category, *, default_venue: Category = "linear") -> Channel:
    """The canonical channel a topic on ``venue`` serves (the inverse of :func:`topic_for`),
    named as :class:`~cryptowire.core.channels.ChannelGrammar` names it."""
    middle = f"{topic.interval}:" if topic.interval else ""
    if topic.depth is not None:
        middle = f"{topic.depth}:"
    suffix = "" if venue == default_venue else f"@{venue}"
    return Channel(
        name=f"{topic.kind}:{middle}{topic.symbol}{suffix}",
        kind=topic.kind,
        symbol=topic.symbol,
        venue=venue,
        interval=topic.interval,
        depth=topic.depth,
    )


# -- requests --------------------------------------------------------------------------------


def build_requests(
    op: Literal["subscribe", "unsubscribe"],
    topics: Iterable[str],
    next_req_id: Callable[[], str],
) -> list[dict[str, Any]]:
    """``op`` requests for ``topics``, at most :data:`MAX_ARGS_PER_REQUEST` args each, each
    with a fresh ``req_id`` (Bybit echoes it in the ack, which is how acks are matched)."""
    args = list(topics)
    return [
        {"req_id": next_req_id(), "op": op, "args": args[i : i + MAX_ARGS_PER_REQUEST]}
        for i in range(0, len(args), MAX_ARGS_PER_REQUEST)
    ]


def ping_request(req_id: str | None = None) -> dict[str, Any]:
    """The client heartbeat; Bybit answers with a pong echoing ``req_id`` when given."""
    if req_id is None:
        return {"op": "ping"}
    return {"req_id": req_id, "op": "ping"}
