"""Binance USDⓈ-M perpetuals and spot, declared for the shared supervisor: :func:`declare`.

Two markets (:mod:`.markets`): ``binance`` (USDⓈ-M perpetuals: sockets ``public``, for
``depth`` and ``bookTicker``, and ``market`` for the rest: ``binance.futures_public_url``,
``binance.futures_market_url``) and ``binance-spot`` (one socket, ``binance.spot_url``).
A channel becomes one topic of one or more streams (the ticker merges three); every book
depth of a symbol is one topic (one ``@depth@100ms`` stream, one local book synced from the
REST snapshot its state asks for).

Requests ``{"method":"SUBSCRIBE","params":[..],"id":N}`` (at most
:data:`~.markets.MAX_PARAMS_PER_REQUEST` streams, paced under Binance's incoming message
limit: 10/s futures, 5/s spot); Binance pings at the WebSocket level (answered by aiohttp),
and the client's keep-alive is :data:`~.codec.KEEPALIVE` every 30 s (a socket silent for
75 s is replaced); a connection holds at most 1024 streams (more open another socket);
Binance ends a connection at 24 h (declared; the supervisor reconnects with gap markers).
Instruments: ``exchangeInfo`` (perpetual contracts on futures), statuses other than
``TRADING`` refused as not trading.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from cryptowire.core.channels import BOOK_DEPTHS, Channel
from cryptowire.errors import SourceError
from cryptowire.settings import BinanceSettings
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
)
from cryptowire.sources.venues.binance import markets
from cryptowire.sources.venues.binance.codec import KEEPALIVE, BinanceCodec
from cryptowire.sources.venues.binance.markets import BinanceMarket
from cryptowire.sources.venues.binance.payloads import CLOSED_STATUSES, instrument_statuses

TITLE = "Binance"
DAY_S = 24 * 3600.0


def requests(op: Op, args: Sequence[Any], n: int) -> tuple[str, Any]:
    """One request; Binance echoes the integer ``id`` in its answer."""
    return str(n), {"method": op.upper(), "params": list(args), "id": n}


def _topic(spec: BinanceMarket) -> Callable[[Channel, Market], Topic]:
    def topic(channel: Channel, market: Market) -> Topic:
        streams = spec.streams(channel)  # SourceError with a reason for what it cannot serve
        assert channel.symbol is not None
        seam = tuple(Stream(s.name, endpoint=s.endpoint) for s in streams)
        if channel.kind == "book":
            check_depth(channel, market, TITLE)
            return Topic(streams[0].name, "book", channel.symbol, seam, resync="snapshot")
        if channel.kind == "kline" and channel.interval not in market.intervals:
            raise SourceError(f"{TITLE} has no kline interval '{channel.interval}'.")
        return Topic(f"{channel.kind}:{streams[0].name}", channel.kind, channel.symbol, seam,
                     interval=channel.interval)
    return topic


def _instruments(spec: BinanceMarket) -> Instruments:
    return Instruments(
        request=lambda cursor: (spec.info_path, {}),
        parse=lambda body: (instrument_statuses(body, spec.market), ""),
        closed=CLOSED_STATUSES,
    )


def _market(spec: BinanceMarket, label: str, requests_per_s: float, hint: str) -> Market:
    return Market(
        key=spec.venue, label=label, endpoints={str(k): v for k, v in spec.ws_urls.items()},
        rest_url=spec.rest_url,
        codec=BinanceCodec(spec), topic=_topic(spec), requests=requests,
        kinds=frozenset({"ticker", "trade", "kline", "book"}
                        | ({"liquidation"} if spec.market == "futures" else set())),
        intervals=markets.INTERVALS, book_depths=BOOK_DEPTHS[spec.venue],
        to_native=markets.stream_symbol, from_native=lambda native: native,
        limits=Limits(streams_per_connection=markets.MAX_STREAMS_PER_CONNECTION,
                      args_per_request=markets.MAX_PARAMS_PER_REQUEST,
                      requests_per_s=requests_per_s, max_lifetime_s=DAY_S),
        ping=Ping(text=KEEPALIVE, interval_s=30.0, watchdog_s=75.0),
        instruments=_instruments(spec),
        refusal=lambda stream, said: (f"{TITLE} {label} refused stream '{stream}' ({said})."),
        unknown_hint=hint,
    )


def declare(settings: BinanceSettings) -> Venue:
    """The Binance venue with the URLs of ``settings`` (the ``[binance]`` section)."""
    fut = markets.futures(settings.futures_public_url, settings.futures_market_url,
                          settings.futures_rest_url)
    spot = markets.spot(settings.spot_url, settings.spot_rest_url)
    return Venue(
        name="binance", title=TITLE,
        markets={
            "binance": _market(fut, "USDⓈ-M futures", 5.0,
                               ", or add @binance-spot for a spot pair."),
            "binance-spot": _market(spot, "spot", 2.0, "."),
        },
        default_market="binance",
        probe_url=f"{fut.rest_url}/fapi/v1/ping",
    )
