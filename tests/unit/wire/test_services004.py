"""The seed 004 dialect, sans I/O: literal client frames in, literal server frames out."""

from __future__ import annotations

import re
from decimal import Decimal

import orjson
import pytest

from cryptowire.clock import iso
from cryptowire.core.channels import SERVICES
from cryptowire.events import Event, Publication
from cryptowire.jsonnum import number
from cryptowire.wire import services004 as s004
from cryptowire.wire.frames import text_frame
from cryptowire.wire.native import NativeEncoder

TS = 1_731_319_200_000  # 2024-11-11T10:00:00.000Z
ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def body(frame: bytes) -> dict:
    assert frame[0] == 0x81  # FIN + text
    n = frame[1]
    start = 2 if n < 126 else 4 if n == 126 else 10
    return orjson.loads(frame[start:])


def test_iso_has_z_and_millis() -> None:
    assert iso(TS) == "2024-11-11T10:00:00.000Z"
    assert iso(TS + 7) == "2024-11-11T10:00:00.007Z"


def test_client_ids_are_numbered_with_unix_seconds() -> None:
    a, b = s004.new_client_id(TS), s004.new_client_id(TS)
    assert re.match(r"^client_\d+_1731319200$", a)
    assert int(b.split("_")[1]) == int(a.split("_")[1]) + 1


def test_catalog_covers_every_service_and_the_seed_paths() -> None:
    assert sorted(s for c in s004.CATALOG.values() for s in c) == sorted(SERVICES)
    paths = {e.path: e for e in s004.ENDPOINTS}
    for path in ("/ws/master", "/ws/all", "/ws/data", "/ws/monitoring", "/ws/integration",
                 "/ws/market_data", "/ws/whale_tracking", "/ws/news", "/ws/sentiment",
                 "/ws/health", "/ws/pool_status", "/ws/scheduler_status", "/ws/huggingface",
                 "/ws/ai", "/ws/persistence"):
        assert path in paths
    assert paths["/ws/health"].auto == ("health_checker",)
    assert paths["/ws/pool_status"].auto == ("pool_manager",)
    assert paths["/ws/scheduler_status"].auto == ("scheduler",)
    assert paths["/ws/ai"].auto == ("huggingface",)
    assert paths["/ws/all"].auto == SERVICES
    assert paths["/ws/master"].welcome and not paths["/ws/master"].auto
    assert set(paths["/ws/monitoring"].services) == {"health_checker", "pool_manager",
                                                     "scheduler"}


def test_connection_established_has_client_id_top_level_and_under_data() -> None:
    state = s004.ClientState("client_1_1731319200", TS, TS)
    msg = body(s004.connection_established(state, s004.ENDPOINTS[0], TS))
    assert msg["type"] == "connection_established"
    assert msg["client_id"] == msg["data"]["client_id"] == "client_1_1731319200"
    assert msg["available_services"] == list(SERVICES)
    assert msg["timestamp"] == "2024-11-11T10:00:00.000Z"


def test_welcome_shape() -> None:
    msg = body(s004.welcome(TS))
    assert msg["service"] == "system" and msg["type"] == "welcome"
    assert msg["data"]["message"] == "Connected to master WebSocket endpoint"
    assert set(msg["data"]["available_services"]) == {"data_collection", "monitoring",
                                                      "integration"}
    assert msg["data"]["usage"]["subscribe"] == {"action": "subscribe",
                                                 "service": "service_name"}
    assert ISO.match(msg["timestamp"])


@pytest.mark.parametrize("frame, expected", [
    ({"action": "subscribe", "service": "market_data"}, s004.Action("subscribe", "market_data")),
    ({"action": "unsubscribe", "service": "all"}, s004.Action("unsubscribe", "all")),
    ({"action": "subscribe", "service": "system"}, s004.Action("subscribe", "system")),
    ({"action": "get_status"}, s004.Action("get_status")),
    ({"action": "ping", "data": {"custom": "data"}}, s004.Action("ping", data={"custom": "data"})),
])
def test_parse_good_actions(frame: dict, expected: s004.Action) -> None:
    assert s004.parse_text(orjson.dumps(frame)) == expected


def test_invalid_service_lists_available_services() -> None:
    with pytest.raises(s004.ActionError) as err:
        s004.parse_text('{"action": "subscribe", "service": "weather"}')
    assert err.value.data["message"] == "Invalid service: weather"
    assert "market_data" in err.value.data["available_services"]
    assert "all" in err.value.data["available_services"]


def test_unknown_action_lists_supported_actions() -> None:
    with pytest.raises(s004.ActionError) as err:
        s004.parse_text('{"action": "dance"}')
    assert err.value.data == {"message": "Unknown action: dance",
                              "supported_actions": ["subscribe", "unsubscribe", "get_status",
                                                    "ping"]}
    with pytest.raises(s004.ActionError, match="Invalid JSON"):
        s004.parse_text("{nope")
    with pytest.raises(s004.ActionError, match="JSON object"):
        s004.parse_text("[1]")


def test_expand() -> None:
    assert s004.expand("all") == SERVICES
    assert s004.expand("system") == ()
    assert s004.expand("news") == ("news",)


def test_replies() -> None:
    state = s004.ClientState("client_9_1", TS, TS + 5000, ["market_data", "whale_tracking"])
    assert body(s004.status(state, 5, TS + 5000)) == {
        "service": "system", "type": "status", "timestamp": "2024-11-11T10:00:05.000Z",
        "data": {"client_id": "client_9_1", "connected_at": "2024-11-11T10:00:00.000Z",
                 "last_activity": "2024-11-11T10:00:05.000Z",
                 "subscriptions": ["market_data", "whale_tracking"], "total_clients": 5}}
    assert body(s004.pong({"custom": "data"}, TS)) == {
        "service": "system", "type": "pong", "data": {"custom": "data"},
        "timestamp": "2024-11-11T10:00:00.000Z"}
    confirmed = body(s004.subscription_confirmed("news", ["news"], TS))
    assert confirmed["type"] == "subscription_confirmed"
    assert confirmed["data"] == {"service": "news", "subscriptions": ["news"]}
    assert body(s004.subscription_confirmed("all", [], TS, auto=True))["data"][
        "auto_subscribed"] is True
    gone = body(s004.unsubscription_confirmed("news", [], TS))
    assert gone["type"] == "unsubscription_confirmed" and gone["data"]["subscriptions"] == []
    assert s004.envelope("success", {"a": 1}, TS) == {
        "status": "success", "data": {"a": 1}, "timestamp": "2024-11-11T10:00:00.000Z"}


def _pub(channel: str, data: object, type_: str = "update") -> Publication:
    return Publication.from_event(Event(channel=channel, data=data, type=type_, ts_source=TS),
                                  "e1", 7)


def test_encoder_frames_service_publications_once_in_the_seed_shape() -> None:
    pub = _pub("service:market_data", {"prices": {"BTCUSDT": "66000.10"}})
    frame = s004.Services004Encoder().frame_publication(pub)
    assert frame == text_frame(b'{"service":"market_data","type":"update","data":'
                               b'{"prices":{"BTCUSDT":"66000.10"}},'
                               b'"timestamp":"2024-11-11T10:00:00.000Z"}')
    assert s004.Services004Encoder().frame_publication(_pub("ticker:BTCUSDT", {})) is None


def test_hybrid_encoder_keeps_native_frames_for_other_channels() -> None:
    native = NativeEncoder()
    hybrid = s004.Services004Encoder(native)
    pub = _pub("ticker:BTCUSDT", {"symbol": "BTCUSDT"})
    assert hybrid.frame_publication(pub) == native.frame_publication(pub)
    assert body(hybrid.frame_publication(_pub("service:news", {"articles": []})))[
        "service"] == "news"


# -- numbers: the seed's JSON numbers, digit for digit (never through float) --------------


@pytest.mark.parametrize(("value", "token"), [
    ("66000.180", b"66000.180"),  # a trailing zero survives: no float on the way
    ("0.1000000000000000055511151231257827", b"0.1000000000000000055511151231257827"),
    ("430774", b"430774"), ("-1.5", b"-1.5"), ("0", b"0"), (" 7.10 ", b"7.10"),
    ("1E+3", b"1000"), ("2.5e-3", b"0.0025"), (".5", b"0.5"), ("+2", b"2"), ("007", b"7"),
    (Decimal("5000000000"), b"5000000000"), (Decimal("1E+1"), b"10"), (1_000_000, b"1000000"),
    ("1E+999", b"1E+999"),  # plain would be 1,000 digits: the exponent form is JSON too
])
def test_number_emits_the_exact_digits_as_a_json_number(value: object, token: bytes) -> None:
    assert orjson.dumps({"v": number(value)}) == b'{"v":' + token + b"}"


@pytest.mark.parametrize("value", [
    None, True, "NaN", "Infinity", "-inf", "abc", "", "1,2", '1,"x":2', "0x10", 1.5,
    Decimal("NaN"), [1],
])
def test_number_is_null_for_anything_but_a_finite_decimal(value: object) -> None:
    assert number(value) is None
    assert orjson.dumps({"v": number(value)}) == b'{"v":null}'


def test_numbers_reach_the_004_frame_verbatim() -> None:
    pub = _pub("service:market_data", {"prices": {"bitcoin": number("45000.00")},
                                       "volumes": {"bitcoin": number("25000000000")}})
    frame = s004.Services004Encoder().frame_publication(pub)
    assert frame is not None
    assert b'"data":{"prices":{"bitcoin":45000.00},"volumes":{"bitcoin":25000000000}}' in frame
    assert body(frame)["data"]["prices"] == {"bitcoin": 45000.0}


def test_auto_subscribed_is_the_seeds_frame() -> None:
    assert body(s004.auto_subscribed(TS)) == {
        "service": "system", "type": "auto_subscribed",
        "data": {"message": "Automatically subscribed to all services", "subscription": "all"},
        "timestamp": "2024-11-11T10:00:00.000Z"}


def test_the_native_socket_greeting_lists_every_service() -> None:
    state = s004.ClientState("client_3_1731319200", TS, TS)
    hello = body(s004.connection_established(state, s004.NATIVE_ENDPOINT, TS))
    assert hello["type"] == "connection_established"
    assert hello["client_id"] == hello["data"]["client_id"] == "client_3_1731319200"
    assert hello["data"]["endpoint"] == "/ws"
    assert hello["available_services"] == list(SERVICES)
