"""Each dialect's input side (:meth:`cryptowire.wire.dialect.Dialect.parse`): literal client
frames in, the dialect's command records out; refused input is :class:`Invalid` carrying the
exact reply frame, which the server sends as is."""

from __future__ import annotations

import pytest

from cryptowire.wire import mudrex003, native, pg002, rfq001, services004, swaps000
from cryptowire.wire.dialect import IGNORED, Dialect, Invalid
from cryptowire.wire.frames import text_frame


def test_every_dialect_has_the_input_side() -> None:
    dialects: list[Dialect] = [native.NativeDialect(), mudrex003.MudrexDialect(),
                               services004.Services004Dialect(), swaps000.Swaps000Dialect(),
                               rfq001.RfqDialect(), pg002.PgDialect()]
    for dialect in dialects:
        assert callable(dialect.parse) and callable(dialect.new_state)


@pytest.mark.parametrize("dialect", [native.NativeDialect(), mudrex003.MudrexDialect()])
def test_native_ops_become_requests(dialect: native.NativeDialect) -> None:
    assert dialect.new_state() is None
    assert dialect.parse('{"op":"ping","id":7}', None) == native.Request("ping", 7)
    assert dialect.parse('{"op":"subscribe","args":["ticker:BTCUSDT@binance"]}', None) \
        == native.Request("subscribe", None, ["ticker:BTCUSDT@binance"])


def test_native_invalid_frames_carry_the_error_reply() -> None:
    d = native.NativeDialect()
    assert d.parse("[1]", None) == Invalid(text_frame(
        b'{"op":"error","code":"INVALID_JSON","message":'
        b'"Frame must be a JSON object such as {\\"op\\": \\"ping\\"}."}'))
    # Once the id was read, the error echoes it.
    assert d.parse('{"op":"bogus","id":"a"}', None) == Invalid(text_frame(
        b'{"id":"a","op":"error","code":"UNKNOWN_OP","message":"Unknown op \'bogus\'. Use '
        b'one of: auth, subscribe, unsubscribe, ping, channels, publish, add_token, '
        b'remove_token, list_tokens."}'))
    bad = d.parse("nope", None)
    assert isinstance(bad, Invalid)
    assert b'"code":"INVALID_JSON","message":"Frame is not valid JSON: ' in bad.frame


def test_services004_actions_and_the_error_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(services004, "now_ms", lambda: 1_700_000_000_000)
    d = services004.Services004Dialect()
    state = d.new_state()
    assert state.client_id and state.connected_ms == 1_700_000_000_000
    assert d.parse('{"action":"ping","data":1}', state) == services004.Action("ping", data=1)
    assert d.parse('{"action":"subscribe","service":"system"}', state) \
        == services004.Action("subscribe", "system")
    assert d.parse('{"action":"fly"}', state) == Invalid(text_frame(
        b'{"service":"system","type":"error","data":{"message":"Unknown action: fly",'
        b'"supported_actions":["subscribe","unsubscribe","get_status","ping"]},'
        b'"timestamp":"2023-11-14T22:13:20.000Z"}'))


def test_rfq001_actions_channel_ops_and_errors() -> None:
    d = rfq001.RfqDialect()
    assert d.new_state() is None
    assert d.parse('{"subscribe":"rfq"}', None) == rfq001.ChannelOp("subscribe", ["rfq"])
    assert d.parse('{"rfq":{"action":"startSession","uuid":"u"}}', None) \
        == rfq001.RfqAction("startSession", {"action": "startSession", "uuid": "u"})
    assert d.parse('{"rfq":{"action":"x"}}', None) == Invalid(text_frame(
        b'{"status":"error","error":{"message":"Unknown action \'x\'. Use one of: '
        b'startSession, updateSession, stopSession, acceptOffer, placeOrder."}}'))
    assert d.parse('{"subscribe":[]}', None) == Invalid(text_frame(
        b'{"status":"error","error":{"message":"\'subscribe\' takes a channel name or a '
        b'list of them."}}'))


def test_swaps000_follows_the_connection_state() -> None:
    d = swaps000.Swaps000Dialect()
    state = d.new_state()
    assert state == swaps000.SwapsState("key", False)
    assert d.parse(" k1 \n", state) == swaps000.Key("k1")
    assert d.parse("", state) == swaps000.Key("")
    state.step = "command"  # the server moves it on once the key is accepted
    assert d.parse("swap", state) == swaps000.Command("swaps")
    assert d.parse("burns\n", state) == swaps000.Command("burns")
    assert d.parse("add_token", state) == swaps000.Command("add_token")
    assert d.parse("bogus", state) == Invalid(text_frame(
        b'{"status":400,"message":"Unknown event \'bogus\'. Send one of: swaps, burns, '
        b'add_token, remove_token, token_symbol (swap, burn are accepted for swaps, burns)."}'))
    state.step = "add_token"
    assert d.parse('{"a":1}', state) == swaps000.Payload("add_token", '{"a":1}')
    state.step = "streaming"
    told = text_frame(b'{"status":400,"message":"This connection streams; client frames are '
                      b'ignored."}')
    assert d.parse("x", state) == Invalid(told)  # said once...
    assert state.told
    assert d.parse("x", state) is IGNORED  # ...then dropped


def test_pg002_ignores_client_text() -> None:
    d = pg002.PgDialect()
    assert d.new_state() is None
    assert d.parse('{"channel":"x"}', None) is IGNORED


def test_services004_parses_a_decoded_action_form() -> None:
    d = services004.Services004Dialect()
    assert d.parse_object({"action": "get_status"}) == services004.Action("get_status")
    bad = d.parse_object({"action": "subscribe", "service": "nope"})
    assert isinstance(bad, Invalid)
    assert b'"data":{"message":"Invalid service: nope","available_services":[' in bad.frame
