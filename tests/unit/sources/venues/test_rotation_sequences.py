"""What a socket rotation hands a stream over by: each venue codec's ``Data.seq``/``prev``
(sources/exchange/codec.py), the venue's own sequence, the same on every socket."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cryptowire.sources.exchange import codec
from cryptowire.sources.venues.binance import markets
from cryptowire.sources.venues.binance.codec import BinanceCodec
from cryptowire.sources.venues.okx.codec import OkxCodec
from cryptowire.sources.venues.okx.venue import declare as declare_okx


def one(items: Any) -> codec.Data:
    [item] = items
    assert isinstance(item, codec.Data)
    return item


def binance(market: str, data: dict[str, Any]) -> codec.Data:
    spec = markets.futures() if market == "futures" else markets.spot()
    raw = orjson.dumps({"stream": "btcusdt@x", "data": data})
    return one(BinanceCodec(spec).parse(raw))


def test_binance_depth_updates_follow_pu_on_futures_and_u_minus_one_on_spot() -> None:
    update = {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": 157, "u": 160, "pu": 149,
              "b": [], "a": []}
    futures = binance("futures", update)
    assert (futures.seq, futures.prev) == (160, 149)
    spot = binance("spot", {k: v for k, v in update.items() if k != "pu"})
    assert (spot.seq, spot.prev) == (160, 156)


@pytest.mark.parametrize(("market", "data", "seq"), [
    ("futures", {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 5933014, "p": "1", "q": "1"},
     5933014),
    ("spot", {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 12345, "p": "1", "q": "1"}, 12345),
    ("futures", {"e": "24hrTicker", "E": 1, "s": "BTCUSDT"}, None),
    ("futures", {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "u": "160"}, None),
    ("futures", {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": True}, None),
])
def test_binance_trades_carry_their_id_and_full_state_frames_nothing(
        market: str, data: dict[str, Any], seq: int | None) -> None:
    item = binance(market, data)
    assert (item.seq, item.prev) == (seq, None)


def okx(frame: dict[str, Any]) -> codec.Data:
    return one(OkxCodec({}).parse(orjson.dumps(frame)))


def test_okx_books_follow_prevseqid_and_a_snapshot_follows_nothing() -> None:
    arg = {"channel": "books", "instId": "BTC-USDT-SWAP"}
    level = {"asks": [], "bids": [], "ts": "1", "checksum": 0}
    update = okx({"arg": arg, "action": "update", "data": [{**level, "seqId": 124,
                                                             "prevSeqId": 123}]})
    assert (update.seq, update.prev) == (124, 123)
    snap = okx({"arg": arg, "action": "snapshot", "data": [{**level, "seqId": 123,
                                                            "prevSeqId": -1}]})
    assert (snap.seq, snap.prev) == (123, None)
    trade = okx({"arg": {"channel": "trades", "instId": "BTC-USDT-SWAP"},
                 "data": [{"instId": "BTC-USDT-SWAP", "tradeId": "130639474", "px": "1",
                           "sz": "1", "side": "buy", "ts": "1"}]})
    assert (trade.seq, trade.prev) == (130639474, None)
    ticker = okx({"arg": {"channel": "tickers", "instId": "BTC-USDT-SWAP"},
                  "data": [{"instId": "BTC-USDT-SWAP", "last": "1"}]})
    assert (ticker.seq, ticker.prev) == (None, None)


def test_okx_declares_its_request_budget_per_connection() -> None:
    from cryptowire.settings import OkxSettings

    for market in declare_okx(OkxSettings()).markets.values():
        assert market.limits.requests_per_connection == 480
        assert market.limits.request_window_s == 3600.0
