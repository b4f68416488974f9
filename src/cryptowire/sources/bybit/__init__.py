"""Bybit V5 public market data: tickers (delta-merged), trades, klines, books, liquidations.

- :mod:`.topics`, :mod:`.parser`, :mod:`.book` and :mod:`.codec` are sans-I/O: channel <->
  topic, requests, frames -> normalized payloads (tested with literal frames);
- :mod:`.venue` declares Bybit for the shared supervisor (:mod:`cryptowire.sources.exchange`),
  :mod:`.instruments` its instruments list; :mod:`.source` is ``BybitSource``.
"""

from cryptowire.sources.bybit.parser import (
    Ack,
    DataFrame,
    MalformedFrameError,
    Pong,
    TickerBook,
    build_requests,
    parse_frame,
    parse_klines,
    parse_trades,
)
from cryptowire.sources.bybit.source import BybitSource
from cryptowire.sources.bybit.topics import Topic, category_of, channel_for, parse_topic, topic_for
from cryptowire.sources.exchange.instruments import InstrumentCatalog

__all__ = [
    "Ack",
    "BybitSource",
    "DataFrame",
    "InstrumentCatalog",
    "MalformedFrameError",
    "Pong",
    "TickerBook",
    "Topic",
    "build_requests",
    "category_of",
    "channel_for",
    "parse_frame",
    "parse_klines",
    "parse_topic",
    "parse_trades",
    "topic_for",
]
