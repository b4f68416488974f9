"""The native protocol without sockets: literal client frames in, literal frames out."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cryptowire.clock import now_ms
from cryptowire.core.hub import SubscribeResult
from cryptowire.errors import ProtocolError
from cryptowire.events import Event, Publication
from cryptowire.wire import native
from cryptowire.wire.frames import text_frame
from cryptowire.wire.mudrex003 import MudrexEncoder
from cryptowire.wire.native import (
    ERROR_CODES,
    FrameError,
    NativeEncoder,
    Request,
    parse_request,
)


def payload(frame: bytes) -> Any:
    """The JSON inside one unmasked server text frame."""
    assert frame[0] == 0x81
    n = frame[1]
    offset = 2 if n < 126 else 4 if n == 126 else 10
    return orjson.loads(frame[offset:])


def pub(channel: str = "ticker:BTCUSDT", data: Any = None, **kw: Any) -> Publication:
    event = Event(channel=channel, data=data if data is not None else {"price": "1.50"},
                  ts_source=kw.pop("ts", 1704063600000), source=kw.pop("source", "bybit"),
                  type=kw.pop("type", "snapshot"))
    return Publication.from_event(event, kw.pop("epoch", "k2f9"), kw.pop("offset", 121))


# -- parse_request ---------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "expected"), [
    ('{"op":"ping"}', Request(op="ping")),
    (b'{"op":"ping"}', Request(op="ping")),
    ('{"id":1,"op":"auth","args":["k"]}', Request(op="auth", id=1, args=["k"])),
    ('{"id":"a","op":"subscribe","args":["ticker:BTCUSDT","kline:1h:ETHUSDT","swap:eth"]}',
     Request(op="subscribe", id="a", args=["ticker:BTCUSDT", "kline:1h:ETHUSDT", "swap:eth"])),
    ('{"id":3,"op":"subscribe","args":["trade:BTCUSDT"],'
     '"recover":{"trade:BTCUSDT":{"epoch":"k2f9","offset":41}}}',
     Request(op="subscribe", id=3, args=["trade:BTCUSDT"],
             recover={"trade:BTCUSDT": ("k2f9", 41)})),
    ('{"id":4,"op":"unsubscribe","args":["ticker:BTCUSDT"]}',
     Request(op="unsubscribe", id=4, args=["ticker:BTCUSDT"])),
    ('{"id":5,"op":"channels"}', Request(op="channels", id=5)),
    ('{"id":8,"op":"publish","args":[{"channel":"app:signals","data":{"a":1}}]}',
     Request(op="publish", id=8, args=[{"channel": "app:signals", "data": {"a": 1}}])),
    ('{"op":"ping","id":null,"extra":"ignored"}', Request(op="ping")),
    ('{"op":"subscribe","args":["app:x"],"recover":{}}', Request(op="subscribe",
                                                              args=["app:x"])),
])
def test_parse_valid(text: str | bytes, expected: Request) -> None:
    assert parse_request(text) == expected


@pytest.mark.parametrize(("text", "code", "message", "rid"), [
    ("{", "INVALID_JSON", "Frame is not valid JSON: ", None),
    ("", "INVALID_JSON", "Frame is not valid JSON: ", None),
    (b"\xff\xfe", "INVALID_JSON", "Frame is not valid JSON: ", None),
    ("[]", "INVALID_JSON", 'Frame must be a JSON object such as {"op": "ping"}.', None),
    ("1", "INVALID_JSON", "Frame must be a JSON object", None),
    ('{"op":"ping","id":true}', "INVALID_ARGS", "'id' must be a number or a string.", None),
    ('{"op":"ping","id":1.5}', "INVALID_ARGS", "'id' must be a number or a string.", None),
    ('{"op":"ping","id":{}}', "INVALID_ARGS", "'id' must be a number or a string.", None),
    ('{"id":1}', "UNKNOWN_OP", "Missing 'op'. Use one of: auth, subscribe, unsubscribe, ping, "
                               "channels, publish", 1),
    ('{"id":2,"op":"PING"}', "UNKNOWN_OP", "Unknown op 'PING'.", 2),
    ('{"op":"' + "x" * 100 + '"}', "UNKNOWN_OP", "Unknown op '" + "x" * 40 + "'.", None),
    ('{"id":"q","action":"subscribe"}', "UNKNOWN_OP", "Unknown action: 'subscribe'.", "q"),
    ('{"op":"subscribe","args":"x"}', "INVALID_ARGS", "'args' must be a list.", None),
    ('{"op":"ping","args":null}', "INVALID_ARGS", "'args' must be a list.", None),
    ('{"id":7,"op":"subscribe","args":[]}', "INVALID_ARGS", "'subscribe' needs a non-empty", 7),
    ('{"op":"unsubscribe"}', "INVALID_ARGS", "'unsubscribe' needs a non-empty", None),
    ('{"op":"auth","args":["a","b"]}', "INVALID_ARGS", "'auth' takes one argument", None),
    ('{"op":"auth","args":[null]}', "INVALID_ARGS", "'auth' takes one argument", None),
    ('{"op":"publish"}', "INVALID_ARGS", "'publish' needs args", None),
    ('{"op":"publish","args":["x"]}', "INVALID_ARGS", "Each publish item is", None),
    ('{"op":"publish","args":[{"data":1}]}', "INVALID_ARGS", "Each publish item is", None),
    ('{"op":"subscribe","args":["a"],"recover":"x"}', "INVALID_ARGS", "'recover' maps", None),
    ('{"op":"subscribe","args":["a"],"recover":{"a":{"epoch":"e","offset":1.0}}}',
     "INVALID_ARGS", "recover['a'] must be", None),
    ('{"op":"subscribe","args":["a"],"recover":{"a":{"epoch":null,"offset":1}}}',
     "INVALID_ARGS", "recover['a'] must be", None),
    ('{"op":"subscribe","args":["a"],"recover":{"a":{"offset":1}}}',
     "INVALID_ARGS", "recover['a'] must be", None),
    ('{"op":"subscribe","args":["a"],"recover":{"a":[1]}}',
     "INVALID_ARGS", "recover['a'] must be", None),
])
def test_parse_invalid(text: str | bytes, code: str, message: str, rid: Any) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request(text)
    assert info.value.code == code
    assert code in ERROR_CODES
    assert info.value.message.startswith(message), info.value.message
    # Once the frame's id could be read, the error carries it, so the reply can echo it.
    if rid is not None:
        assert isinstance(info.value, FrameError) and info.value.id == rid
    else:
        assert getattr(info.value, "id", None) is None


def test_publish_data_keeps_exact_numbers() -> None:
    # orjson would make floats of both (1.2345678901234568e+29, 1.5): publish frames are read
    # again with exact numbers, and their data is written back with the digits sent.
    req = parse_request(b'{"id":7,"op":"publish","args":[{"channel":"app:x","data":'
                        b'{"n":123456789012345678901234567890,"px":1.50,"k":3}}]}')
    assert req.id == 7 and req.args[0]["channel"] == "app:x"
    assert orjson.dumps(req.args[0]["data"]) == \
        b'{"n":123456789012345678901234567890,"px":1.50,"k":3}'


def test_publish_data_nested_deeper_than_json_allows_is_refused() -> None:
    deep = "[" * 2000 + "]" * 2000
    with pytest.raises(ProtocolError) as info:
        parse_request(f'{{"id":1,"op":"publish","args":[{{"channel":"app:x","data":{deep}}}]}}')
    assert info.value.code == "INVALID_JSON" and "depth" in info.value.message


# -- replies -----------------------------------------------------------------------------------


def test_reply_echoes_the_id_first() -> None:
    assert payload(native.reply(5, {"op": "channels"})) == {"id": 5, "op": "channels"}
    assert native.reply(5, {"op": "x"}) == text_frame(b'{"id":5,"op":"x"}')
    assert native.reply(None, {"op": "x"}) == text_frame(b'{"op":"x"}')
    assert payload(native.reply("abc", {"op": "x"}))["id"] == "abc"


def test_error() -> None:
    frame = native.error("INVALID_JSON", "Frame is not valid JSON: Expecting value at char 0")
    assert payload(frame) == {"op": "error", "code": "INVALID_JSON",
                              "message": "Frame is not valid JSON: Expecting value at char 0"}
    assert payload(native.error("FORBIDDEN", "no", 3)) == {
        "id": 3, "op": "error", "code": "FORBIDDEN", "message": "no"}


def test_pong() -> None:
    before = now_ms()
    body = payload(native.pong())
    assert set(body) == {"op", "timestamp"} and body["op"] == "pong"
    assert type(body["timestamp"]) is int and before <= body["timestamp"] <= now_ms()
    assert payload(native.pong(9))["id"] == 9


def test_subscribe_reply_as_in_protocols_md() -> None:
    result = SubscribeResult(
        accepted=["ticker:BTCUSDT", "swap:eth"],
        rejected=[("kline:7m:ETHUSDT", "Unknown kline interval '7m'. Use one of "
                                       "1m,3m,5m,15m,30m,1h,2h,4h,6h,12h,1d,1w,1M.")],
        positions={"ticker:BTCUSDT": ("k2f9", 120), "swap:eth": ("a1b2", 0)},
    )
    assert payload(native.subscribe_reply(2, result)) == {
        "id": 2, "op": "subscribe", "success": True, "args": ["ticker:BTCUSDT", "swap:eth"],
        "message": "Subscribed to 2 streams",
        "rejected": [{"arg": "kline:7m:ETHUSDT", "reason": "Unknown kline interval '7m'. Use "
                      "one of 1m,3m,5m,15m,30m,1h,2h,4h,6h,12h,1d,1w,1M."}],
        "positions": {"ticker:BTCUSDT": {"epoch": "k2f9", "offset": 120},
                      "swap:eth": {"epoch": "a1b2", "offset": 0}},
    }


def test_subscribe_reply_003_shape_when_nothing_rejected() -> None:
    result = SubscribeResult(accepted=["ticker:BTCUSDT"],
                             positions={"ticker:BTCUSDT": ("e", 1)})
    body = payload(native.subscribe_reply(None, result))
    assert body["rejected"] is None and body["success"] is True and "id" not in body
    assert "recovered" not in body


def test_subscribe_reply_counts_already_subscribed_and_recovered() -> None:
    result = SubscribeResult(accepted=["app:b"], positions={"app:b": ("e", 3)},
                             recovered={"app:b": False})
    body = payload(native.subscribe_reply(1, result, already=["app:a"]))
    assert body["args"] == ["app:a", "app:b"]
    assert body["message"] == "Subscribed to 2 streams"
    assert body["recovered"] == {"app:b": False}


def test_subscribe_reply_all_rejected_is_not_success() -> None:
    result = SubscribeResult(rejected=[("x", "why")])
    body = payload(native.subscribe_reply(1, result))
    assert body["success"] is False and body["args"] == []
    assert body["message"] == "Subscribed to 0 streams"


def test_unsubscribe_reply() -> None:
    assert payload(native.unsubscribe_reply(4, ["ticker:BTCUSDT"], [])) == {
        "id": 4, "op": "unsubscribe", "success": True, "args": ["ticker:BTCUSDT"],
        "message": "Unsubscribed from 1 streams", "rejected": None}
    body = payload(native.unsubscribe_reply(None, [], [("app:x", "Not subscribed.")]))
    assert body["rejected"] == [{"arg": "app:x", "reason": "Not subscribed."}]


# -- data frames -----------------------------------------------------------------------------


def test_native_data_frame() -> None:
    frame = NativeEncoder().frame_publication(pub(data={"symbol": "BTCUSDT",
                                                        "price": "44578.50"}))
    assert frame is not None
    assert payload(frame) == {"channel": "ticker:BTCUSDT", "type": "snapshot", "epoch": "k2f9",
                              "offset": 121, "ts": 1704063600000, "source": "bybit",
                              "data": {"symbol": "BTCUSDT", "price": "44578.50"}}


def test_native_data_frame_keeps_decimal_strings_and_non_object_data() -> None:
    enc = NativeEncoder()
    for data in (["a", 1], "text", 0, {"amount": "0.000000000000000001"}):
        frame = enc.frame_publication(pub("app:x", data=data, source=""))
        assert frame is not None
        body = payload(frame)
        assert body["data"] == data
        assert "source" not in body  # no empty source


def test_native_data_frame_large_payload_uses_the_long_header() -> None:
    frame = NativeEncoder().frame_publication(pub("app:x", data={"pad": "x" * 70_000}))
    assert frame is not None and frame[1] == 127
    assert payload(frame)["data"]["pad"] == "x" * 70_000


def test_mudrex_envelope_for_market_channels() -> None:
    enc = MudrexEncoder()
    frame = enc.frame_publication(pub("kline:1h:ETHUSDT", data={"close": "1.0"}))
    assert frame is not None
    # the seed 003 transformer's stream names: klines carry Bybit's interval
    assert payload(frame) == {"stream": "mudrex.futures.kline.60.ETHUSDT", "type": "snapshot",
                              "data": {"close": "1.0"}, "timestamp": 1704063600000,
                              "source": "mudrex"}
    snap = enc.frame_publication(pub("ticker:BTCUSDT@spot", type="snapshot"))
    assert snap is not None
    assert payload(snap)["stream"] == "mudrex.spot.ticker.BTCUSDT"
    assert payload(snap)["type"] == "snapshot"
    # a 003 client knows only snapshot/update: no gap frames in this envelope
    assert enc.frame_publication(pub("ticker:BTCUSDT", type="gap")) is None
    # Other channels keep the native frame.
    other = enc.frame_publication(pub("app:x", data=1))
    assert other == NativeEncoder().frame_publication(pub("app:x", data=1))
