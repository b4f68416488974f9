"""The wire side of the delivery modes (PROTOCOLS.md 4.2, 4.3), without sockets: the
subscribe's ``interval_ms``, the ``batch`` frame, and a ``snapshot`` in the 003 envelope."""

from __future__ import annotations

from typing import Any

import pytest
from tests.unit.wire.test_native import payload, pub

from cryptowire.errors import ProtocolError
from cryptowire.wire.mudrex003 import MudrexEncoder
from cryptowire.wire.native import NativeEncoder, Request, parse_request


@pytest.mark.parametrize(("text", "interval"), [
    ('{"op":"subscribe","args":["book:50:BTCUSDT","trade:BTCUSDT"],"interval_ms":250}', 250),
    ('{"op":"subscribe","args":["app:x"],"interval_ms":50}', 50),
    ('{"op":"subscribe","args":["app:x"],"interval_ms":60000}', 60_000),
])
def test_subscribe_takes_an_interval(text: str, interval: int) -> None:
    req = parse_request(text)
    assert req.op == "subscribe" and req.interval_ms == interval


def test_without_interval_delivery_is_immediate() -> None:
    assert parse_request('{"op":"subscribe","args":["app:x"]}') == Request(
        op="subscribe", args=["app:x"], interval_ms=None)


@pytest.mark.parametrize(("value", "shown"), [
    ("49", "49"), ("60001", "60001"), ("0", "0"), ("-250", "-250"), ("250.0", "250.0"),
    ('"250"', '"250"'), ("true", "true"), ("null", "null"), ("[250]", "[250]"),
])
def test_an_interval_out_of_range_or_not_an_integer_is_refused(value: str, shown: str) -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request(f'{{"id":9,"op":"subscribe","args":["app:x"],"interval_ms":{value}}}')
    assert info.value.code == "INVALID_ARGS"
    assert info.value.message == ("'interval_ms' must be an integer from 50 to 60000 "
                                  f"(milliseconds), not {shown}.")
    assert getattr(info.value, "id", None) == 9  # the error reply echoes the request's id


def test_an_interval_on_another_op_is_refused() -> None:
    with pytest.raises(ProtocolError) as info:
        parse_request('{"op":"unsubscribe","args":["app:x"],"interval_ms":250}')
    assert info.value.message == "'interval_ms' applies to 'subscribe' only."


def trades(n: int, **kw: Any) -> list[Any]:
    return [pub("trade:BTCUSDT", {"id": str(i), "price": f"1.{i}0"}, type="update",
                offset=40 + i, ts=1000 + i, **kw) for i in range(n)]


def test_native_batch_frame_as_fixed_in_the_brief() -> None:
    frame = NativeEncoder().frame_batch(trades(3))
    assert frame is not None
    assert payload(frame) == {
        "channel": "trade:BTCUSDT", "type": "batch", "epoch": "k2f9", "offsets": [40, 42],
        "ts": 1002, "source": "bybit",
        "data": [{"id": "0", "price": "1.00"}, {"id": "1", "price": "1.10"},
                 {"id": "2", "price": "1.20"}]}
    # The data is spliced as encoded: decimal strings stay as they were published.
    assert b'"price":"1.10"' in frame
    assert "source" not in payload(NativeEncoder().frame_batch(trades(1, source="")) or b"")


def test_mudrex_batch_is_one_update_frame_per_event_for_003_streams() -> None:
    """The 003 envelope knows ``snapshot`` and ``update`` only: a conflated 003 trade stream
    gets every event of the interval as its own frame, in one write."""
    enc = MudrexEncoder()
    out = enc.frame_batch(trades(2))
    assert out is not None
    first = enc.frame_publication(trades(2)[0])
    assert first is not None and out.startswith(first)
    assert payload(out[len(first):])["data"] == {"id": "1", "price": "1.10"}
    # Channels the 003 envelope does not name keep the native batch.
    apps = [pub("app:x", {"n": i}, type="update", offset=i + 1) for i in range(2)]
    assert payload(enc.frame_batch(apps) or b"")["offsets"] == [1, 2]


def test_a_snapshot_frame_in_the_003_envelope() -> None:
    """The latest value on subscribe is a ``snapshot`` publication: the 003 envelope has that
    type, so a 003 ticker client reads it like Bybit's first ticker frame."""
    frame = MudrexEncoder().frame_publication(pub(type="snapshot"))
    assert frame is not None
    assert payload(frame) == {"stream": "mudrex.futures.ticker.BTCUSDT", "type": "snapshot",
                              "data": {"price": "1.50"}, "timestamp": 1704063600000,
                              "source": "mudrex"}
