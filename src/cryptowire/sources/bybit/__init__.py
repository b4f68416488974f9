"""Bybit V5 public market data: tickers (delta-merged), trades and klines.

- :mod:`.topics` and :mod:`.parser` are sans-I/O: channel <-> topic, requests, frames ->
  normalized payloads (tested with literal frames);
- :mod:`.connection` supervises one socket per category; :mod:`.instruments` knows which
  symbols Bybit lists; :mod:`.source` is the :class:`~cryptowire.core.source.Source`.
"""

from cryptowire.sources.bybit.instruments import InstrumentCatalog
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
