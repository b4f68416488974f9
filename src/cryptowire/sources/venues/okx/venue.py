"""OKX v5 public market data declared for the shared supervisor: :func:`declare`.

Two markets: ``okx`` (linear USDT swaps, ``BTCUSDT`` = ``BTC-USDT-SWAP``) and ``okx-spot``
(``BTC-USDT``), each with the ``public`` socket (``okx.public_url``: tickers, trades, books,
funding-rate, mark-price, liquidation-orders) and the ``business`` one (``okx.business_url``:
candles). Requests ``{"id":"<n>","op":"subscribe","args":[{"channel":..,"instId":..}]}``,
acks and errors matched by ``id``; the client sends the text ``ping`` every 20 s (OKX drops
a socket silent for 30 s) and a socket silent for 30 s is replaced. Limits: at most 10
arguments a request (OKX caps a request at 64 KB), at most 29 streams a socket (OKX advises
fewer than 30 book channels per connection; the 480 requests an hour per connection stay
far away). Instruments from ``/api/v5/public/instruments`` (:mod:`.table`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cryptowire.core.channels import BOOK_DEPTHS, Channel
from cryptowire.errors import SourceError
from cryptowire.settings import OkxSettings
from cryptowire.sources.exchange.venue import (
    Instruments,
    Limits,
    Market,
    Op,
    Ping,
    Stream,
    Topic,
    Venue,
    check_depth,
    check_kind,
    venue_interval,
)
from cryptowire.sources.venues.okx.codec import OkxCodec, stream_key
from cryptowire.sources.venues.okx.protocol import (
    BARS,
    BUSINESS_PATH,
    INSTRUMENTS_PATH,
    MAX_BOOKS_PER_CONNECTION,
    MAX_REQUESTS_PER_HOUR,
    PING,
    PING_INTERVAL_S,
    PUBLIC_PATH,
    channel_args,
)
from cryptowire.sources.venues.okx.table import CLOSED, InstrumentTable

TITLE = "OKX"
LABELS = {"okx": "USDT swaps", "okx-spot": "spot"}
HINTS = {"okx": ", or add @okx-spot for a spot pair.", "okx-spot": "."}
ARGS_PER_REQUEST = 10


def requests(op: Op, args: Sequence[Any], n: int) -> tuple[str, Any]:
    """One request; OKX echoes ``id`` (up to 32 alphanumerics) in each reply."""
    req_id = f"cw{n}"
    return req_id, {"id": req_id, "op": op, "args": [dict(arg) for arg in args]}


def _topic_for(tables: dict[str, InstrumentTable]) -> Any:
    def topic(channel: Channel, market: Market) -> Topic:
        symbol = check_kind(channel, market, TITLE)
        inst_id = tables[market.key].to_native(symbol)
        kind = channel.kind
        interval, depth, key = None, None, f"{kind}:{inst_id}"
        if kind == "kline":
            bar = venue_interval(channel, market, TITLE)
            interval, key = channel.interval, f"kline:{bar}:{inst_id}"
        elif kind == "book":
            depth = check_depth(channel, market, TITLE)
        try:
            args = channel_args(kind, market.key, inst_id, interval)
        except ValueError as exc:
            raise SourceError(f"{exc} ({channel.name}).") from None
        endpoint = "business" if kind == "kline" else "public"
        streams = tuple(Stream(stream_key(arg), arg, endpoint) for arg in args)
        return Topic(key, kind, symbol, streams, interval=interval, depth=depth)
    return topic


def refusal(market: str) -> Any:
    def reason(stream: str, said: str) -> str:
        return (f"OKX {LABELS[market]} refused '{stream}' ({said or 'no reason given'}). "
                "Check the symbol and venue (e.g. ticker:BTCUSDT@okx or "
                "ticker:BTCUSDT@okx-spot).")
    return reason


def declare(settings: OkxSettings) -> Venue:
    """The OKX venue with the URLs of ``settings`` (the ``[okx]`` section)."""
    rest = settings.rest_url.rstrip("/")
    tables = {key: InstrumentTable(key) for key in LABELS}
    codec = OkxCodec(tables)
    topic = _topic_for(tables)
    markets = {}
    for key, label in LABELS.items():
        table = tables[key]
        markets[key] = Market(
            key=key, label=label, rest_url=rest, codec=codec, topic=topic, requests=requests,
            endpoints={"public": settings.public_url, "business": settings.business_url},
            kinds=frozenset({"ticker", "trade", "kline", "book"} |
                            ({"liquidation"} if key == "okx" else set())),
            intervals=BARS, book_depths=BOOK_DEPTHS[key],
            to_native=table.to_native, from_native=table.from_native,
            limits=Limits(streams_per_connection=MAX_BOOKS_PER_CONNECTION,
                          args_per_request=ARGS_PER_REQUEST,
                          requests_per_connection=MAX_REQUESTS_PER_HOUR,
                          request_window_s=3600.0),
            ping=Ping(text=PING, interval_s=PING_INTERVAL_S, watchdog_s=30.0),
            instruments=Instruments(request=table.request, parse=table.parse, closed=CLOSED),
            refusal=refusal(key), unknown_hint=HINTS[key],
        )
    return Venue(name="okx", title=TITLE, markets=markets, default_market="okx",
                 probe_url=f"{rest}{INSTRUMENTS_PATH}?instType=SPOT&instId=BTC-USDT")


__all__ = ["BUSINESS_PATH", "PUBLIC_PATH", "declare", "requests"]
