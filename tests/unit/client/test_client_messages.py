"""Parsing server frames into typed messages and replies (literal frames, no sockets)."""

from __future__ import annotations

import orjson
import pytest

from cryptowire.client import Message, Position, Rejected, SubscribeReply, UnsubscribeReply
from cryptowire.client._messages import FrameError, Reply, parse_frame

DATA = (b'{"channel":"ticker:BTCUSDT","type":"snapshot","epoch":"k2f9","offset":121,'
        b'"ts":1704063600000,"source":"bybit","data":{"symbol":"BTCUSDT","price":"44578.50"}}')


def test_data_frame() -> None:
    msg = parse_frame(DATA)
    assert msg == Message("ticker:BTCUSDT", "snapshot", "k2f9", 121, 1704063600000, "bybit",
                          {"symbol": "BTCUSDT", "price": "44578.50"})
    assert isinstance(msg, Message)
    assert orjson.dumps(msg.to_dict()) == DATA  # the frame, byte for byte


def test_data_frame_without_source() -> None:
    msg = parse_frame('{"channel":"app:x","type":"update","epoch":"e","offset":1,"ts":5,'
                      '"data":[1]}')
    assert isinstance(msg, Message) and msg.source == ""
    assert "source" not in msg.to_dict()


def test_mudrex_envelope_has_no_position() -> None:
    msg = parse_frame('{"stream":"mudrex.futures.ticker.BTCUSDT","type":"update",'
                      '"data":{"price":"1"},"timestamp":7,"source":"mudrex"}')
    assert isinstance(msg, Message)
    assert (msg.channel, msg.epoch, msg.offset, msg.ts) == (
        "mudrex.futures.ticker.BTCUSDT", "", -1, 7)


def test_replies_errors_pongs() -> None:
    reply = parse_frame('{"id":2,"op":"subscribe","success":true,"args":["a"]}')
    assert isinstance(reply, Reply) and reply.id == 2 and not reply.is_error
    err = parse_frame('{"op":"error","code":"INVALID_JSON","message":"no"}')
    assert isinstance(err, Reply) and err.is_error and err.id is None
    pong = parse_frame('{"op":"pong","timestamp":1}')
    assert isinstance(pong, Reply) and pong.op == "pong"
    weird_id = parse_frame('{"id":true,"op":"pong"}')
    assert isinstance(weird_id, Reply) and weird_id.id is None


@pytest.mark.parametrize("frame", ["not json", "[1]", '{"hello":1}',
                                   '{"channel":"a","offset":"x","epoch":"e"}',
                                   '{"channel":"a","offset":1}'])
def test_bad_frames(frame: str) -> None:
    with pytest.raises(FrameError):
        parse_frame(frame)


def test_subscribe_reply() -> None:
    raw = orjson.loads(
        '{"id":2,"op":"subscribe","success":true,"args":["ticker:BTCUSDT","swap:eth"],'
        '"message":"Subscribed to 2 streams","rejected":[{"arg":"kline:7m:ETHUSDT",'
        '"reason":"Unknown kline interval"}],"positions":{"ticker:BTCUSDT":{"epoch":"k2f9",'
        '"offset":120}},"recovered":{"ticker:BTCUSDT":false}}')
    reply = SubscribeReply.from_raw(raw)
    assert reply.channels == ("ticker:BTCUSDT", "swap:eth")
    assert reply.rejected == (Rejected("kline:7m:ETHUSDT", "Unknown kline interval"),)
    assert reply.positions == {"ticker:BTCUSDT": Position("ticker:BTCUSDT", "k2f9", 120)}
    assert reply.recovered == {"ticker:BTCUSDT": False}
    assert reply.message == "Subscribed to 2 streams"
    empty = SubscribeReply.from_raw({"op": "subscribe", "args": [], "rejected": None})
    assert empty.channels == () and empty.rejected == () and empty.positions == {}


def test_unsubscribe_reply() -> None:
    reply = UnsubscribeReply.from_raw({"op": "unsubscribe", "args": ["a"],
                                       "rejected": [{"arg": "b", "reason": "Not subscribed."}]})
    assert reply.channels == ("a",) and reply.rejected == (Rejected("b", "Not subscribed."),)
