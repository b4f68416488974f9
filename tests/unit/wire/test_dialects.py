"""Every socket dialect behind the one :class:`~cryptowire.wire.dialect.Dialect` protocol:
frames in (publications, rate events, binary frames), frames out, asserted byte for byte."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cryptowire.events import Publication
from cryptowire.wire import mudrex003, native, pg002, rfq001, services004, swaps000
from cryptowire.wire.dialect import Dialect

DIALECTS: list[Dialect] = [native.NativeDialect(), mudrex003.MudrexDialect(),
                           services004.Services004Dialect(), swaps000.Swaps000Dialect(),
                           rfq001.RfqDialect(), pg002.PgDialect()]


def body(frame: bytes | None) -> Any:
    """The JSON inside one unmasked server text frame (short or 16-bit length)."""
    assert frame is not None and frame[0] == 0x81
    n = frame[1]
    return orjson.loads(frame[4:] if n == 126 else frame[2:])


def pub(channel: str, data: bytes, type_: str = "update") -> Publication:
    return Publication(channel=channel, type=type_, epoch="e1", offset=7, ts=1700000000000,
                       ts_received=1700000000001, source="", data_json=data)


@pytest.mark.parametrize("dialect", DIALECTS, ids=lambda d: d.name)
def test_each_dialect_names_its_encoder(dialect: Dialect) -> None:
    assert dialect.encoder().name.startswith(dialect.name)


def test_native_and_003_answer_the_rate_and_binary_frames_with_native_errors() -> None:
    for dialect in (native.NativeDialect(), mudrex003.MudrexDialect()):
        assert body(dialect.dropped(5)) == {
            "op": "error", "code": "RATE_LIMIT_EXCEEDED",
            "message": "More than 5 messages per second; this one was dropped."}
        assert body(dialect.flooding()) == {"op": "error", "code": "RATE_LIMIT_EXCEEDED",
                                            "message": "Flooding: closing."}
        assert body(dialect.binary())["code"] == "INVALID_JSON"


def test_003_frames_market_channels_in_its_envelope_and_others_natively() -> None:
    enc = mudrex003.MudrexDialect().encoder()
    assert body(enc.frame_publication(pub("ticker:BTCUSDT", b'{"p":"1.5"}'))) == {
        "stream": "mudrex.futures.ticker.BTCUSDT", "type": "update", "data": {"p": "1.5"},
        "timestamp": 1700000000000, "source": "mudrex"}
    assert enc.frame_publication(pub("ticker:BTCUSDT", b"{}", "gap")) is None
    assert body(enc.frame_publication(pub("app:x", b"1")))["channel"] == "app:x"


def test_004_answers_in_its_system_error_envelope() -> None:
    dialect = services004.Services004Dialect()
    for frame, message in [
        (dialect.dropped(3), "More than 3 messages per second; this one was dropped."),
        (dialect.flooding(), "Flooding: closing."),
        (dialect.binary(), "Binary frames are not supported; send JSON text frames."),
    ]:
        got = body(frame)
        assert (got["type"], got["data"]) == ("error", {"message": message})


def test_000_answers_with_status_bodies() -> None:
    dialect = swaps000.Swaps000Dialect()
    assert body(dialect.dropped(2)) == {
        "status": 429, "message": "More than 2 messages per second; this one was dropped."}
    assert body(dialect.flooding()) == {"status": 429, "message": "Flooding: closing."}
    assert body(dialect.binary()) == {"status": 400, "message": "Send text frames."}


def test_001_answers_with_its_error_object_and_frames_channels_with_exact_data() -> None:
    dialect = rfq001.RfqDialect()
    assert body(dialect.dropped(9)) == {
        "status": "error", "error": {"message": "Rate limit exceeded; message dropped."}}
    assert body(dialect.flooding())["error"] == {"message": "Flooding: closing."}
    frame = dialect.encoder().frame_publication(pub("ticker:BTCUSDT",
                                                    b'{"p":"0.000000010"}'))
    assert frame is not None and b'"data":{"p":"0.000000010"}}' in frame
    assert body(frame) == {"channel": "ticker:BTCUSDT", "type": "update",
                           "ts": 1700000000000, "data": {"p": "0.000000010"}}


def test_002_frames_only_pg_updates_and_answers_nothing() -> None:
    dialect = pg002.PgDialect()
    enc = dialect.encoder()
    payload = b'{"id":1,"amount":12.50}'
    frame = enc.frame_publication(pub("pg:orders", payload))
    assert frame is not None
    assert frame[2:] == b'{"channel":"orders","payload":' + payload + b"}"  # byte-identical
    assert enc.frame_publication(pub("pg:orders", b"{}", "gap")) is None
    assert enc.frame_publication(pub("ticker:BTCUSDT", b"{}")) is None
    assert (dialect.dropped(1), dialect.flooding(), dialect.binary()) == (None, None, None)


def test_001_client_frames_become_actions_or_channel_ops() -> None:
    assert rfq001.parse('{"subscribe": "ticker:BTCUSDT"}') == rfq001.ChannelOp(
        "subscribe", ["ticker:BTCUSDT"])
    assert rfq001.parse('{"unsubscribe": ["a", "b"]}') == rfq001.ChannelOp(
        "unsubscribe", ["a", "b"])
    action = rfq001.parse(b'{"rfq": {"action": "startSession", "x": 1}}')
    assert isinstance(action, rfq001.RfqAction) and action.action == "startSession"
    for bad, says in [("nope", "Invalid JSON"), ("[1]", "Expected a JSON object"),
                      ('{"subscribe": []}', "takes a channel name"),
                      ('{"rfq": 3}', "'rfq' must be an object"),
                      ('{"rfq": {"action": "fly"}}', "Unknown action 'fly'")]:
        with pytest.raises(rfq001.RfqFrameError, match=says):
            rfq001.parse(bad)


def test_000_state_starts_at_the_key_frame_and_commands_are_read_leniently() -> None:
    state = swaps000.SwapsState()
    assert (state.step, state.told) == ("key", False)
    assert swaps000.command("swaps") == "swaps"
    assert body(swaps000.Swaps000Dialect().no_key(10)) == {
        "status": 401, "message": "No API key within 10 s: send it as the first frame."}
    assert body(swaps000.Swaps000Dialect().refused("LIMIT_EXCEEDED", "full")) == {
        "status": 503, "message": "full"}


def test_native_key_deadline_frame() -> None:
    assert body(native.NativeDialect().no_key(10)) == {
        "op": "error", "code": "UNAUTHORIZED",
        "message": 'No API key within 10 s: send {"op":"auth","args":["<key>"]} first, '
                   "or connect with a key."}
