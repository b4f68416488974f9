"""The native protocol on ``/ws`` over real sockets (PROTOCOLS.md section 1): every op, every
malformed frame, and recovery."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import orjson
import pytest
from tests.integration.server.conftest import (
    Hub,
    HubFactory,
    assert_alive,
    call,
    expect_close,
    next_data,
    recv_json,
    subscribe,
)
from websockets.asyncio.client import ClientConnection

from cryptowire.clock import now_ms
from cryptowire.core.channels import KINDS

pytestmark = pytest.mark.integration

INTERVALS = "1m,3m,5m,15m,30m,1h,2h,4h,6h,12h,1d,1w,1M"


# -- auth --------------------------------------------------------------------------------


async def test_auth_op_with_good_key_answers_success_and_scopes(hub: Hub) -> None:
    key, record = await hub.create_key("bot", ("read", "publish"))
    ws = await hub.connect()
    reply = await call(ws, {"id": 1, "op": "auth", "args": [key]})
    assert reply == {"id": 1, "op": "auth", "success": True,
                     "message": "Authenticated as bot", "scopes": ["publish", "read"]}
    # The session is now that key's: it may publish.
    ok = await call(ws, {"id": 2, "op": "publish",
                         "args": [{"channel": "app:x", "data": {"n": 1}}]})
    assert ok["success"] is True and ok["id"] == 2


@pytest.mark.parametrize("bad_key", [
    "cw_aaaaaaaa_" + "A" * 43,  # well formed, unknown
    "not-a-key",                # malformed
])
async def test_auth_op_with_wrong_key_errors_then_closes_4001(
    hub: Hub, watcher: ClientConnection, bad_key: str
) -> None:
    ws = await hub.connect()
    await ws.send(orjson.dumps({"id": 9, "op": "auth", "args": [bad_key]}).decode())
    code, seen = await expect_close(ws)
    assert code == 4001
    assert seen == [{"id": 9, "op": "error", "code": "UNAUTHORIZED",
                     "message": "Invalid or revoked API key."}]
    await assert_alive(hub, watcher)


async def test_wrong_key_of_a_real_key_is_refused(hub: Hub) -> None:
    key, _ = await hub.create_key()
    forged = key[:-4] + ("AAAA" if not key.endswith("AAAA") else "BBBB")
    ws = await hub.connect()
    await ws.send(orjson.dumps({"op": "auth", "args": [forged]}).decode())
    code, seen = await expect_close(ws)
    assert code == 4001 and seen[0]["code"] == "UNAUTHORIZED"


def _present(key: str, how: str) -> dict[str, Any]:
    if how == "header":
        return {"headers": {"X-API-Key": key}}
    if how == "query":
        return {"query": {"api_key": key}}
    return {"headers": {"Authorization": f"Bearer {key}"}}


@pytest.mark.hub_settings(server={"anonymous_read": False})
@pytest.mark.parametrize("how", ["header", "query", "bearer"])
async def test_key_on_the_upgrade_request(hub: Hub, how: str) -> None:
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect(**_present(key, how))
    reply = await subscribe(ws, "app:feed")
    assert reply["success"] is True and reply["args"] == ["app:feed"]
    pub = await hub.publish("app:feed", {"v": 1})
    assert (await next_data(ws, "app:feed"))["offset"] == pub.offset


@pytest.mark.parametrize("how", ["header", "query", "bearer"])
async def test_wrong_key_on_the_upgrade_request_errors_then_closes_4001(
    hub: Hub, watcher: ClientConnection, how: str
) -> None:
    ws = await hub.connect(**_present("cw_zzzzzzzz_" + "B" * 43, how))
    code, seen = await expect_close(ws)
    assert code == 4001
    assert [m["code"] for m in seen] == ["UNAUTHORIZED"]
    await assert_alive(hub, watcher)


@pytest.mark.hub_settings(server={"anonymous_read": False})
async def test_anonymous_read_off_subscribe_is_unauthorized_until_auth(hub: Hub) -> None:
    ws = await hub.connect()
    err = await call(ws, {"id": "s1", "op": "subscribe", "args": ["app:feed"]})
    assert err["op"] == "error" and err["code"] == "UNAUTHORIZED" and err["id"] == "s1"
    assert "auth" in err["message"]
    key, _ = await hub.create_key("reader", ("read",))
    assert (await call(ws, {"op": "auth", "args": [key]}))["success"] is True
    reply = await subscribe(ws, "app:feed")
    assert reply["args"] == ["app:feed"]


@pytest.mark.hub_settings(server={"anonymous_read": False})
async def test_key_without_read_scope_is_forbidden_to_subscribe(hub: Hub) -> None:
    # The key is valid but lacks the scope: FORBIDDEN (sending a key again cannot help),
    # not UNAUTHORIZED. (Where anonymous reading is on, every key reads public channels:
    # scopes add to what anonymous may, see test_access.py.)
    key, _ = await hub.create_key("pusher", ("publish",))
    ws = await hub.connect(headers={"X-API-Key": key})
    err = await call(ws, {"op": "subscribe", "args": ["app:feed"]})
    assert err["op"] == "error" and err["code"] == "FORBIDDEN", err
    assert "read" in err["message"]


# -- subscribe / unsubscribe ---------------------------------------------------------------


async def test_subscribe_reply_shape(hub: Hub) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "ticker:BTCUSDT", "kline:7m:ETHUSDT", "swap:eth", id=2)
    assert set(reply) == {"id", "op", "success", "args", "message", "rejected", "positions"}
    assert reply["id"] == 2
    assert reply["op"] == "subscribe"
    assert reply["success"] is True
    assert reply["args"] == ["ticker:BTCUSDT", "swap:eth"]
    assert reply["message"] == "Subscribed to 2 streams"
    assert reply["rejected"] == [{
        "arg": "kline:7m:ETHUSDT",
        "reason": f"Unknown kline interval '7m'. Use one of {INTERVALS}.",
    }]
    assert set(reply["positions"]) == {"ticker:BTCUSDT", "swap:eth"}
    for pos in reply["positions"].values():
        assert set(pos) == {"epoch", "offset"}
        assert isinstance(pos["epoch"], str) and pos["epoch"]
        assert type(pos["offset"]) is int
    # Data follows the reply, after the position it announced.
    msg = await next_data(ws, "ticker:BTCUSDT")
    start = reply["positions"]["ticker:BTCUSDT"]
    assert msg["epoch"] == start["epoch"] and msg["offset"] == start["offset"] + 1
    assert {"channel", "type", "epoch", "offset", "ts", "data"} <= set(msg)
    assert type(msg["ts"]) is int
    assert isinstance(msg["data"]["price"], str)  # decimal strings, never floats
    assert re.fullmatch(r"\d+\.\d+", msg["data"]["price"])


async def test_subscribe_nothing_rejected_gives_rejected_null(hub: Hub) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "app:a", "app:b")
    assert reply["rejected"] is None
    assert reply["message"] == "Subscribed to 2 streams"
    assert "id" not in reply


async def test_subscribe_everything_rejected_is_not_success(hub: Hub) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "nonsense")
    assert reply["success"] is False
    assert reply["args"] == [] and reply["positions"] == {}
    assert reply["message"] == "Subscribed to 0 streams"
    assert reply["rejected"][0]["arg"] == "nonsense"


async def test_aliases_are_canonicalized(hub: Hub) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, "tickers.BTCUSDT", "kline.60.ETHUSDT", "publicTrade.SOLUSDT",
                            "ticker:BTCUSDT", "swap:1")
    assert reply["args"] == ["ticker:BTCUSDT", "kline:1h:ETHUSDT", "trade:SOLUSDT", "swap:eth"]
    assert reply["rejected"] is None
    msg = await next_data(ws, "ticker:BTCUSDT")
    assert msg["data"]["symbol"] == "BTCUSDT"
    # Subscribing again (by another name) is not a second subscription.
    again = await subscribe(ws, "tickers.BTCUSDT")
    assert again["args"] == ["ticker:BTCUSDT"] and again["positions"] == {}
    stats = await hub.stats()
    assert stats["subscriptions"] == 4


@pytest.mark.parametrize(("arg", "reason"), [
    ("kline:7m:ETHUSDT", f"Unknown kline interval '7m'. Use one of {INTERVALS}."),
    ("tickers.*", "Wildcards (e.g. tickers.*) are not supported. Use specific symbols like "
                  "tickers.BTCUSDT or ticker:ETHUSDT."),
    ("ticker:*", "Wildcards"),
    ("weather:berlin", "Unknown channel kind 'weather'"),
    ("BTCUSDT", "Unknown channel 'BTCUSDT'"),
    ("swap:solana", "Unknown chain 'solana'. Known chains: eth (1), bsc (56)."),
    ("ticker:DOGEUSDT", "Unknown symbol 'DOGEUSDT' on the demo market."),  # the source's reason
    ("swap:bsc", "The demo chain is 'eth'"),
    ("pg:fill_event", "Postgres channels need an API key"),  # anonymous: refused first
])
async def test_rejections_carry_the_human_reason(hub: Hub, arg: str, reason: str) -> None:
    ws = await hub.connect()
    reply = await subscribe(ws, arg, "app:ok")
    assert reply["args"] == ["app:ok"]
    assert reply["success"] is True
    assert len(reply["rejected"]) == 1
    assert reply["rejected"][0]["arg"] == arg
    assert reply["rejected"][0]["reason"].startswith(reason), reply["rejected"][0]["reason"]


@pytest.mark.hub_settings(server={"max_subscriptions": 3})
async def test_too_many_subscriptions_are_rejected_with_the_limit(hub: Hub) -> None:
    ws = await hub.connect()
    limit_reason = "Subscription limit reached: at most 3 channels per connection."
    reply = await subscribe(ws, "app:a", "app:b", "app:c", "app:d", "app:e")
    assert reply["args"] == ["app:a", "app:b", "app:c"]
    assert reply["rejected"] == [{"arg": "app:d", "reason": limit_reason},
                                 {"arg": "app:e", "reason": limit_reason}]
    more = await subscribe(ws, "app:f")
    assert more["success"] is False and more["rejected"][0]["reason"] == limit_reason
    await call(ws, {"op": "unsubscribe", "args": ["app:a"]})
    room = await subscribe(ws, "app:f")
    assert room["args"] == ["app:f"] and room["rejected"] is None


async def test_unsubscribe(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "app:a", "app:b")
    reply = await call(ws, {"id": 4, "op": "unsubscribe", "args": ["app:a", "app:zzz", "bad"]})
    assert reply["id"] == 4 and reply["op"] == "unsubscribe" and reply["success"] is True
    assert reply["args"] == ["app:a"]
    assert reply["message"] == "Unsubscribed from 1 streams"
    rejected = {r["arg"]: r["reason"] for r in reply["rejected"]}
    assert rejected["app:zzz"] == "Not subscribed."
    assert rejected["bad"].startswith("Unknown channel")
    # app:a no longer arrives; app:b still does (it is published after, so it would be
    # preceded by app:a's frame if that were still delivered).
    await hub.publish("app:a", {"gone": True})
    pub = await hub.publish("app:b", {"here": True})
    msg = await next_data(ws)
    assert msg["channel"] == "app:b" and msg["offset"] == pub.offset
    assert (await hub.stats())["channels"] == {"app:b": 1}


async def test_unsubscribe_releases_upstream_demand(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "ticker:ETHUSDT")
    assert (await hub.stats())["upstream_topics"] == {"ticker:ETHUSDT": 1}
    await call(ws, {"op": "unsubscribe", "args": ["tickers.ETHUSDT"]})
    assert hub.node.demand.count("ticker:ETHUSDT") == 0


# -- ping, channels, id ---------------------------------------------------------------------


async def test_ping_pong_has_integer_timestamp(hub: Hub) -> None:
    ws = await hub.connect()
    before = now_ms()
    pong = await call(ws, {"op": "ping"})
    assert set(pong) == {"op", "timestamp"}
    assert pong["op"] == "pong"
    assert type(pong["timestamp"]) is int
    assert before - 1000 <= pong["timestamp"] <= now_ms() + 1000


async def test_channels_catalog(hub: Hub) -> None:
    ws = await hub.connect()
    reply = await call(ws, {"id": 5, "op": "channels"})
    assert reply["id"] == 5 and reply["op"] == "channels" and reply["success"] is True
    data = reply["data"]
    assert set(data["kinds"]) == set(KINDS)
    assert data["kinds"]["kline"]["intervals"] == INTERVALS.split(",")
    assert data["chains"] == {"eth": 1, "bsc": 56}
    assert data["aliases"]["tickers.<SYMBOL>"] == "ticker:<SYMBOL>"


@pytest.mark.parametrize("rid", [1, 0, -3, "abc", "req-7"])
async def test_id_is_echoed_on_every_op(hub: Hub, rid: int | str) -> None:
    ws = await hub.connect()
    frames: list[dict[str, Any]] = [
        {"op": "ping"}, {"op": "channels"}, {"op": "subscribe", "args": ["app:x"]},
        {"op": "unsubscribe", "args": ["app:x"]},
        {"op": "publish", "args": [{"channel": "app:x", "data": 1}]},  # error (anonymous)
        {"op": "nope"},  # error
        {"op": "subscribe", "args": "app:x"},  # error
    ]
    for frame in frames:
        reply = await call(ws, {"id": rid, **frame})
        assert reply.get("id") == rid, (frame, reply)


# -- publish op ----------------------------------------------------------------------------


async def test_publish_op_anonymous_is_unauthorized(hub: Hub) -> None:
    ws = await hub.connect()
    err = await call(ws, {"op": "publish", "args": [{"channel": "app:x", "data": {}}]})
    assert err["op"] == "error" and err["code"] == "UNAUTHORIZED"
    assert "publish" in err["message"]


async def test_publish_op_read_key_is_forbidden(hub: Hub) -> None:
    key, _ = await hub.create_key("reader", ("read",))
    ws = await hub.connect(headers={"X-API-Key": key})
    err = await call(ws, {"op": "publish", "args": [{"channel": "app:x", "data": {}}]})
    assert err["op"] == "error" and err["code"] == "FORBIDDEN"
    assert "reader" in err["message"] and "publish" in err["message"]


@pytest.mark.parametrize("scopes", [("publish",), ("admin",)])
async def test_publish_op_reaches_subscribers(hub: Hub, scopes: tuple[str, ...]) -> None:
    key, _ = await hub.create_key("pub", scopes)
    listener = await hub.connect()
    await subscribe(listener, "app:signals")
    ws = await hub.connect(headers={"X-API-Key": key})
    reply = await call(ws, {"id": 8, "op": "publish", "args": [
        {"channel": "app:signals", "data": {"buy": "1.50"}},
        {"channel": "app:signals", "data": {"sell": "2.25"}},
    ]})
    assert reply["id"] == 8 and reply["success"] is True
    offsets = [p["offset"] for p in reply["positions"]]
    assert [p["channel"] for p in reply["positions"]] == ["app:signals"] * 2
    first = await next_data(listener, "app:signals")
    second = await next_data(listener, "app:signals")
    assert [first["offset"], second["offset"]] == offsets
    assert first["data"] == {"buy": "1.50"} and second["data"] == {"sell": "2.25"}
    assert first["source"] == "app"


async def test_publish_op_to_a_non_app_channel_is_invalid_args(hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    ws = await hub.connect(headers={"X-API-Key": key})
    err = await call(ws, {"op": "publish", "args": [
        {"channel": "app:ok", "data": 1}, {"channel": "ticker:BTCUSDT", "data": 2}]})
    assert err["code"] == "INVALID_ARGS"
    assert "only app:<name> channels" in err["message"]
    # All or nothing: the valid first item was not published either.
    assert hub.node.broker.published == 0  # type: ignore[attr-defined]


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(("frame", "code", "message"), [
    ("{not json", "INVALID_JSON", "Frame is not valid JSON: "),
    ("", "INVALID_JSON", "Frame is not valid JSON: "),
    ('{"op": "ping"', "INVALID_JSON", "Frame is not valid JSON: "),
    ("[1, 2]", "INVALID_JSON", "Frame must be a JSON object"),
    ("42", "INVALID_JSON", "Frame must be a JSON object"),
    ('"ping"', "INVALID_JSON", "Frame must be a JSON object"),
    ("null", "INVALID_JSON", "Frame must be a JSON object"),
    ('{"op": "dance"}', "UNKNOWN_OP", "Unknown op 'dance'. Use one of: auth, subscribe"),
    ('{"args": []}', "UNKNOWN_OP", "Missing 'op'."),
    ('{"op": 5}', "UNKNOWN_OP", "Missing 'op'."),
    ('{"op": "subscribe", "args": "ticker:BTCUSDT"}', "INVALID_ARGS", "'args' must be a list."),
    ('{"op": "subscribe", "args": {"a": 1}}', "INVALID_ARGS", "'args' must be a list."),
    ('{"op": "subscribe", "args": []}', "INVALID_ARGS", "'subscribe' needs a non-empty"),
    ('{"op": "subscribe"}', "INVALID_ARGS", "'subscribe' needs a non-empty"),
    ('{"op": "unsubscribe", "args": []}', "INVALID_ARGS", "'unsubscribe' needs a non-empty"),
    ('{"op": "auth", "args": []}', "INVALID_ARGS", "'auth' takes one argument"),
    ('{"op": "auth", "args": [1]}', "INVALID_ARGS", "'auth' takes one argument"),
    ('{"op": "publish", "args": []}', "INVALID_ARGS", "'publish' needs args"),
    ('{"op": "publish", "args": [{"channel": "app:x"}]}', "INVALID_ARGS", "Each publish item"),
    ('{"op": "ping", "id": true}', "INVALID_ARGS", "'id' must be a number or a string."),
    ('{"op": "ping", "id": [1]}', "INVALID_ARGS", "'id' must be a number or a string."),
    ('{"op": "subscribe", "args": ["app:x"], "recover": []}', "INVALID_ARGS", "'recover' maps"),
    ('{"op": "subscribe", "args": ["app:x"], "recover": {"app:x": 5}}', "INVALID_ARGS",
     "recover['app:x'] must be"),
    ('{"op": "subscribe", "args": ["app:x"], "recover": {"app:x": {"epoch": "e"}}}',
     "INVALID_ARGS", "recover['app:x'] must be"),
    ('{"op": "subscribe", "args": ["app:x"], "recover": {"app:x": {"epoch": 1, "offset": 1}}}',
     "INVALID_ARGS", "recover['app:x'] must be"),
    ('{"op": "subscribe", "args": ["app:x"], "recover": {"app:x": {"epoch": "e", '
     '"offset": "3"}}}', "INVALID_ARGS", "recover['app:x'] must be"),
    ('{"op": "subscribe", "args": ["app:x"], "recover": {"app:x": {"epoch": "e", '
     '"offset": true}}}', "INVALID_ARGS", "recover['app:x'] must be"),
])
async def test_bad_frames_get_an_error_and_the_session_stays_usable(
    hub: Hub, frame: str, code: str, message: str
) -> None:
    ws = await hub.connect()
    err = await call(ws, frame)
    assert err["op"] == "error", err
    assert err["code"] == code
    assert err["message"].startswith(message), err["message"]
    # Nothing was subscribed by a refused frame, and the session still works.
    assert (await hub.stats())["subscriptions"] == 0
    assert (await call(ws, {"op": "ping"}))["op"] == "pong"
    reply = await subscribe(ws, "app:x")
    assert reply["args"] == ["app:x"]


async def test_error_on_a_frame_with_an_id_echoes_it(hub: Hub) -> None:
    ws = await hub.connect()
    for frame, code in [({"id": 11, "op": "dance"}, "UNKNOWN_OP"),
                        ({"id": "x", "op": "subscribe", "args": []}, "INVALID_ARGS"),
                        ({"id": 12, "op": "subscribe", "args": ["app:x"], "recover": 3},
                         "INVALID_ARGS")]:
        err = await call(ws, frame)
        assert err["code"] == code and err["id"] == frame["id"], err


async def test_binary_frame_is_invalid_json_and_session_stays_usable(hub: Hub) -> None:
    ws = await hub.connect()
    await subscribe(ws, "app:b")
    await ws.send(b'{"op": "ping"}')
    err = await recv_json(ws)
    assert err == {"op": "error", "code": "INVALID_JSON",
                   "message": "Binary frames are not supported; send JSON as text frames."}
    assert (await call(ws, {"op": "ping"}))["op"] == "pong"
    pub = await hub.publish("app:b", {"still": "here"})
    assert (await next_data(ws, "app:b"))["offset"] == pub.offset


# -- recovery --------------------------------------------------------------------------------


async def _position(ws: ClientConnection, channel: str) -> tuple[str, int]:
    reply = await subscribe(ws, channel)
    pos = reply["positions"][channel]
    return pos["epoch"], pos["offset"]


async def test_recover_delivers_exactly_the_missed_then_live(hub: Hub) -> None:
    ch = "app:orders"
    for i in range(3):
        await hub.publish(ch, {"before": i})
    ws = await hub.connect()
    epoch, offset = await _position(ws, ch)
    assert offset == 3
    live = await hub.publish(ch, {"seen": True})
    last = await next_data(ws, ch)
    assert last["offset"] == live.offset == 4
    await ws.close()

    missed = [await hub.publish(ch, {"missed": i}) for i in range(5)]
    ws2 = await hub.connect()
    reply = await subscribe(ws2, ch, id=3, recover={ch: {"epoch": epoch,
                                                        "offset": last["offset"]}})
    assert reply["recovered"] == {ch: True}
    # the stream resumes after the client's own offset: the missed ones follow
    assert reply["positions"][ch] == {"epoch": epoch, "offset": last["offset"]}
    got = [await next_data(ws2, ch) for _ in missed]
    assert [m["offset"] for m in got] == [p.offset for p in missed] == [5, 6, 7, 8, 9]
    assert [m["data"] for m in got] == [{"missed": i} for i in range(5)]
    after = [await hub.publish(ch, {"live": i}) for i in range(2)]
    got_live = [await next_data(ws2, ch) for _ in after]
    assert [m["offset"] for m in got_live] == [10, 11]
    # Nothing else was queued: no duplicate arrives before the next publication.
    marker = await hub.publish(ch, {"end": True})
    assert (await next_data(ws2, ch))["offset"] == marker.offset


async def test_recover_with_alias_and_nothing_missed(hub: Hub) -> None:
    # Recovery keys are canonicalized like args; an up-to-date client gets nothing extra.
    ws = await hub.connect()
    epoch, offset = await _position(ws, "app:q")
    await ws.close()
    ws2 = await hub.connect()
    reply = await subscribe(ws2, "app:q", recover={"app:q": {"epoch": epoch, "offset": offset}})
    assert reply["recovered"] == {"app:q": True}
    pub = await hub.publish("app:q", {"n": 1})
    assert (await next_data(ws2, "app:q"))["offset"] == pub.offset


async def test_recover_with_a_wrong_epoch_says_false(hub: Hub) -> None:
    ch = "app:orders"
    await hub.publish(ch, {"n": 1})
    ws = await hub.connect()
    reply = await subscribe(ws, ch, recover={ch: {"epoch": "not-the-epoch", "offset": 0}})
    assert reply["recovered"] == {ch: False}
    assert reply["args"] == [ch] and reply["success"] is True
    # No stale replay: the next frame is the next live one.
    pub = await hub.publish(ch, {"n": 2})
    assert (await next_data(ws, ch))["offset"] == pub.offset
    assert (await hub.stats())["subscriptions"] == 1


@pytest.mark.hub_settings(history={"size": 3})
async def test_recover_from_an_offset_older_than_history_says_false(hub: Hub) -> None:
    ch = "app:orders"
    pubs = [await hub.publish(ch, {"n": i}) for i in range(10)]
    epoch = pubs[0].epoch
    ws = await hub.connect()
    # Offsets 8..10 are held: from 7 it works, from 6 it cannot.
    reply = await subscribe(ws, ch, recover={ch: {"epoch": epoch, "offset": 1}})
    assert reply["recovered"] == {ch: False}
    ws2 = await hub.connect()
    ok = await subscribe(ws2, ch, recover={ch: {"epoch": epoch, "offset": 7}})
    assert ok["recovered"] == {ch: True}
    assert [(await next_data(ws2, ch))["offset"] for _ in range(3)] == [8, 9, 10]


async def test_recover_while_publishing_has_no_gap_and_no_duplicate(
    hub_factory: HubFactory,
) -> None:
    # Publications race the subscribe frame (the loop yields between them): the client must
    # still see every offset once, in order.
    hub = await hub_factory()
    ch = "app:busy"
    first = await hub.publish(ch, {"n": 0})
    ws = await hub.connect()
    await ws.send(orjson.dumps({"op": "subscribe", "args": [ch], "recover": {
        ch: {"epoch": first.epoch, "offset": 0}}}).decode())
    for i in range(1, 20):
        await hub.publish(ch, {"n": i})
        await asyncio.sleep(0)
    offsets = []
    while len(offsets) < 20:
        msg = await recv_json(ws)
        if msg.get("channel") == ch:
            offsets.append(msg["offset"])
        else:
            assert msg["op"] == "subscribe" and msg["recovered"] == {ch: True}
    assert offsets == list(range(1, 21))


# -- JWT in place of a key (PROTOCOLS 1: "Authorization: Bearer <key or JWT>") -------------

JWT_SECRET = "j" * 40


@pytest.mark.hub_settings(auth={"jwt_secret": JWT_SECRET, "jwt_scopes": True},
                          server={"anonymous_read": False})
async def test_bearer_jwt_authenticates_with_its_scopes(hub: Hub) -> None:
    import time

    import jwt

    token = jwt.encode({"sub": "dash", "scopes": ["read", "publish"],
                        "exp": int(time.time()) + 60}, JWT_SECRET, algorithm="HS256")
    ws = await hub.connect(headers={"Authorization": f"Bearer {token}"})
    reply = await call(ws, {"id": 1, "op": "subscribe", "args": ["app:jwt"]})
    assert reply["success"] is True
    ok = await call(ws, {"id": 2, "op": "publish",
                         "args": [{"channel": "app:jwt", "data": {"n": 1}}]})
    assert ok["success"] is True
    # a token signed with another secret, or expired, is refused like a wrong key
    for bad in (jwt.encode({"sub": "x"}, "k" * 40, algorithm="HS256"),
                jwt.encode({"sub": "x", "exp": int(time.time()) - 5}, JWT_SECRET,
                           algorithm="HS256")):
        ws = await hub.connect()
        await ws.send(orjson.dumps({"op": "auth", "args": [bad]}).decode())
        code, seen = await expect_close(ws)
        assert code == 4001 and seen[0]["code"] == "UNAUTHORIZED"
        assert "JWT" in seen[0]["message"]


async def test_subscribe_asks_the_access_rule_once_per_channel(
        hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    """The op's own gate is asked only when no channel was accepted; each channel once, in
    the hub (docs/architecture.md, "Paths")."""
    from cryptowire.core import access

    asked: list[object] = []
    authorize = access.authorize

    def counted(principal: Any, target: Any, action: Any, policy: Any) -> Any:
        asked.append(getattr(target, "name", target))
        return authorize(principal, target, action, policy)

    ws = await hub.connect()
    monkeypatch.setattr(access, "authorize", counted)
    reply = await subscribe(ws, "app:one", "app:two")
    assert reply["args"] == ["app:one", "app:two"]
    assert asked == ["app:one", "app:two"]
    asked.clear()
    reply = await call(ws, {"op": "subscribe", "args": ["app:one"]})  # nothing new
    assert reply["op"] == "subscribe" and asked == ["channels"]
