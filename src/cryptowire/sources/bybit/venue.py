"""Bybit V5 public market data, declared for the shared supervisor: :func:`declare`.

Two markets, ``linear`` (USDT perpetuals) and ``spot``, one socket each (``bybit.linear_url``,
``bybit.spot_url``); one Bybit topic per channel (:mod:`.topics`), frames read by
:mod:`.codec`; requests ``{"req_id":"cw-<n>","op":"subscribe","args":[..]}`` with at most
:data:`~.topics.MAX_ARGS_PER_REQUEST` args; the client sends ``{"op":"ping"}`` every 20 s
and a socket silent for 30 s is replaced; instruments from ``/v5/market/instruments-info``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson

from cryptowire.core.channels import BOOK_DEPTHS, KLINE_INTERVALS, Channel
from cryptowire.settings import BybitSettings
from cryptowire.sources.bybit.codec import BybitCodec, rejection_reason
from cryptowire.sources.bybit.instruments import PATH, instruments
from cryptowire.sources.bybit.topics import MAX_ARGS_PER_REQUEST, ping_request, topic_for
from cryptowire.sources.exchange.venue import Limits, Market, Op, Ping, Stream, Topic, Venue

_CODEC = BybitCodec()
PING = orjson.dumps(ping_request()).decode()


def requests(op: Op, args: Sequence[Any], n: int) -> tuple[str, Any]:
    """One request; Bybit echoes ``req_id`` in the ack, which is how acks are matched."""
    req_id = f"cw-{n}"
    return req_id, {"req_id": req_id, "op": op, "args": list(args)}


def topic(channel: Channel, market: Market) -> Topic:
    """The Bybit topic of a channel on ``market``'s socket (:func:`.topics.topic_for`)."""
    bybit = topic_for(channel, "spot" if market.key == "spot" else "linear")
    return Topic(bybit.name, bybit.kind, bybit.symbol, (Stream(bybit.name),),
                 interval=bybit.interval, depth=bybit.depth)


def _market(key: str, url: str, rest_url: str, hint: str) -> Market:
    return Market(
        key=key, label=key, endpoints={"public": url}, rest_url=rest_url, codec=_CODEC,
        topic=topic, requests=requests, intervals=KLINE_INTERVALS,
        book_depths=BOOK_DEPTHS[key],
        kinds=frozenset({"ticker", "trade", "kline", "book", "liquidation"}),
        limits=Limits(args_per_request=MAX_ARGS_PER_REQUEST),
        ping=Ping(text=PING, interval_s=20.0, watchdog_s=30.0),
        instruments=instruments(key),
        refusal=lambda stream, said: rejection_reason(stream, key, said),
        unknown_hint=hint,
    )


def declare(settings: BybitSettings) -> Venue:
    """The Bybit venue with the URLs of ``settings`` (the ``[bybit]`` section)."""
    rest = settings.rest_url.rstrip("/")
    return Venue(
        name="bybit", title="Bybit",
        markets={
            "linear": _market("linear", settings.linear_url, rest,
                              ", or add @spot for a spot pair."),
            "spot": _market("spot", settings.spot_url, rest, "."),
        },
        default_market=settings.default_category,
        probe_url=f"{rest}{PATH}?category=linear&limit=1",
    )
