"""Bad input gets a 400-class answer with a reason: no 500, no traceback, nothing of the
database's words (issue 10, items 17 and 19). REST, the native socket, the 000 and 004
sockets and /rfq, against a running hub; the token admin against SQLite and Postgres."""

from __future__ import annotations

import asyncio
import logging
import sqlite3
from typing import Any

import orjson
import pytest
from tests.integration.server.conftest import (
    TIMEOUT,
    Hub,
    HubFactory,
    RawClient,
    call,
    recv_json,
)

from cryptowire import logthrottle
from cryptowire.server import ws_rfq
from cryptowire.wire import services004

pytestmark = pytest.mark.integration

PEPE = "0x6982508145454Ce325dDbE47a25d4ec3d2311933"
PAIR = "0xA43fe16908251ee70EF74718545e4FE6C5cCEc9f"
DEEP = "[" * 300 + "]" * 300  # orjson reads it; it writes at most 254 levels
#: Words of drivers and databases that must never reach a client.
DRIVER_WORDS = ("sqlite", "asyncpg", "psycopg", "ProgrammingError", "DataError",
                "IntegrityError", "OperationalError", "binding parameter", "Traceback")


def token(**fields: Any) -> dict[str, Any]:
    """The seed's explicit add_token shape (no chain read needed)."""
    return {"chain": 1, "address": PEPE, "name": "PEPE", "decimals": 18, "pair": PAIR,
            "isToken0": True, "group": "alpha", **fields}


@pytest.fixture
def fresh_throttle(monkeypatch: pytest.MonkeyPatch) -> None:
    """A throttle of this test's own: an earlier test may have logged the same error within
    the interval (the shared one is per process)."""
    monkeypatch.setattr(logthrottle, "THROTTLE", logthrottle.Throttle())


def no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    bad = [r.getMessage() for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert bad == []


async def admin_key(hub: Hub) -> str:
    plaintext, _ = await hub.create_key("admin", ("admin",))
    return plaintext


async def rest(hub: Hub, method: str, path: str, key: str, body: bytes | None = None,
               ) -> tuple[int, Any]:
    async with hub.http.request(method, f"{hub.url}{path}", data=body,
                                headers={"X-API-Key": key}) as resp:
        text = await resp.text()
        assert not any(w.lower() in text.lower() for w in DRIVER_WORDS), text
        return resp.status, orjson.loads(text) if text.startswith(("{", "[")) else text


# -- REST ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("since", "why"), [
    ("1180591620717411303424", "the block is 0 to 9223372036854775807"),  # was a 500
    ("5:1180591620717411303424", "the log index 0 to 2147483647"),
    ("-1", "the block is 0 to"),
    ("9" * 5000, "e.g. since=19000000:41"),
    ("abc", "e.g. since=19000000:41"),
])
async def test_events_since_out_of_range_is_400(hub: Hub, since: str, why: str,
                                                caplog: pytest.LogCaptureFixture) -> None:
    key = await admin_key(hub)
    status, body = await rest(hub, "GET", f"/api/v1/events?channel=swap:eth&since={since}",
                              key)
    assert status == 400, body
    assert body["error"]["code"] == "INVALID_ARGS"
    assert body["error"]["message"].startswith("'since' is <block> or <block>:<log index>")
    assert why in body["error"]["message"]
    no_tracebacks(caplog)


#: For every field of the token admin body: values of the wrong type or range, and the
#: word the refusal names. Each was a 500, a stored str(value), or a driver error before.
BAD_FIELDS: list[tuple[str, str, str]] = [
    *[("paired_decimals", v, "'paired_decimals' must be an integer 0-77")
      for v in ('"abc"', "[]", "{}", "-5", "78", "1.5", "true", "18446744073709551616", DEEP)],
    *[("decimals", v, "'decimals' must be an integer 0-77")
      for v in ('"18"', "[]", "-1", "1e3", "true", "18446744073709551616")],
    *[("paired_symbol", v, "'paired_symbol' must be a string")
      for v in ("{}", "[]", "5", "true", DEEP)],
    ("paired_symbol", '"W\\u0000ETH"', "'paired_symbol' cannot contain control characters"),
    *[("group", v, "'group' must be a string") for v in ("{}", "[]", "7", "true")],
    ("group", '"' + "g" * 101 + '"', "'group' is longer than 100 characters"),
    ("group", '"al\\npha"', "'group' cannot contain control characters"),
    *[("name", v, "'name' must be a string") for v in ('{"a": 1}', "[1]", "5")],
    ("name", '"PE\\u0000PE"', "'name' cannot contain control characters"),
    ("symbol", "[1]", "'symbol' must be a string"),
    *[("isToken0", v, "'isToken0' must be true or false") for v in ('"no"', "1", "[]", "{}")],
    *[("chain", v, "'chain' is a chain id or name") for v in ("true", "{}", "[]", "1.0", DEEP)],
    ("chain", '"mars"', "Unknown chain 'mars'"),
    *[(f, v, f"'{f}' must be a 0x-prefixed 40-hex-digit address")
      for f in ("address", "pair", "paired")
      for v in ("{}", "[]", "5", '"0x12"', f'"{PEPE}\\n"', DEEP)],
]


async def test_token_admin_refuses_bad_types_for_every_field(
        hub_factory: HubFactory, store_url: str, caplog: pytest.LogCaptureFixture) -> None:
    hub = await hub_factory(store={"url": store_url})
    key = await admin_key(hub)
    good = orjson.dumps(token()).decode()
    for field, raw, reason in BAD_FIELDS:
        # The body as text, so the values stay exactly as written (a deep list, a big int).
        body = good[:-1] + f',"{field}":{raw}}}' if field not in token() else \
            orjson.dumps({k: v for k, v in token().items() if k != field}).decode()[:-1] \
            + f',"{field}":{raw}}}'
        status, reply = await rest(hub, "POST", "/api/v1/tokens", key, body.encode())
        assert (status, reply["error"]["code"]) == (400, "INVALID_ARGS"), (field, raw, reply)
        assert reason in reply["error"]["message"], (field, raw, reply)
    status, listed = await rest(hub, "GET", "/api/v1/tokens", key)
    assert (status, listed) == (200, {"tokens": []})  # nothing was stored
    no_tracebacks(caplog)


async def test_the_same_token_with_a_trailing_newline_is_not_tracked_twice(
        hub_factory: HubFactory, store_url: str) -> None:
    hub = await hub_factory(store={"url": store_url})
    key = await admin_key(hub)
    status, _ = await rest(hub, "POST", "/api/v1/tokens", key, orjson.dumps(token()))
    assert status == 201
    status, reply = await rest(hub, "POST", "/api/v1/tokens", key,
                               orjson.dumps(token(address=PEPE + "\n")))
    assert status == 400 and "40-hex-digit address" in reply["error"]["message"]
    _, listed = await rest(hub, "GET", "/api/v1/tokens", key)
    assert [t["address"] for t in listed["tokens"]] == [PEPE.lower()]


async def test_native_and_000_token_ops_answer_bad_types_with_a_reason(
        hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    key = await admin_key(hub)
    ws = await hub.connect(query={"api_key": key})
    for i, bad in enumerate(("abc", [], {})):
        reply = await call(ws, {"op": "add_token", "id": i,
                                "args": [token(paired_decimals=bad)]})
        assert reply == {"id": i, "op": "error", "code": "INVALID_ARGS",
                         "message": "'paired_decimals' must be an integer 0-77."}
    reply = await call(ws, {"op": "add_token", "id": 9, "args": [token(paired_symbol={})]})
    assert reply["code"] == "INVALID_ARGS" and "'paired_symbol'" in reply["message"]
    for bad in ("abc", []):
        swaps = await hub.connect("/swaps")
        await swaps.send(key)
        await swaps.send("add_token")
        await swaps.send(orjson.dumps(token(paired_decimals=bad)).decode())
        assert await recv_json(swaps) == {"status": 400, "message":
                                          "'paired_decimals' must be an integer 0-77."}
    no_tracebacks(caplog)


async def test_a_database_failure_is_503_without_its_words_and_logged_once(
        hub: Hub, caplog: pytest.LogCaptureFixture, fresh_throttle: None) -> None:
    key = await admin_key(hub)
    database = hub.node.settings.store.url.split("///", 1)[1]
    with sqlite3.connect(database) as db:
        db.execute("ALTER TABLE tokens RENAME TO tokens_away")
    caplog.set_level(logging.WARNING, logger="cryptowire.store.evm")
    for _ in range(20):
        status, reply = await rest(hub, "GET", "/api/v1/tokens", key)
        assert (status, reply) == (503, {"error": {
            "code": "INTERNAL_ERROR", "message": "list tokens failed (a database error)"}})
    logged = [r.getMessage() for r in caplog.records if r.name == "cryptowire.store.evm"]
    assert len(logged) == 1 and "no such table: tokens" in logged[0]  # the operator sees it


@pytest.mark.parametrize(("body", "reason"), [
    ({"group": "g" * 101, "chat_id": 1}, "'group' is 1-100 printable characters"),
    ({"group": "al\u0000pha", "chat_id": 1}, "'group' is 1-100 printable characters"),
    ({"group": "alpha", "chat_id": "c" * 65}, "'chat_id' is an integer or an @username"),
    ({"group": "alpha", "chat_id": True}, "'chat_id' is an integer or an @username"),
    ({"group": "alpha", "chat_id": "-100\n"}, "'chat_id' is an integer or an @username"),
    ({"group": "alpha", "chat_id": [1]}, "'chat_id' is an integer or an @username"),
])
async def test_telegram_bindings_refuse_what_the_columns_cannot_hold(
        hub: Hub, body: dict[str, Any], reason: str) -> None:
    key = await admin_key(hub)
    status, reply = await rest(hub, "POST", "/api/v1/telegram/bindings", key,
                               orjson.dumps(body))
    assert status == 400 and reason in reply["error"]["message"], reply
    status, reply = await rest(hub, "POST", "/api/v1/telegram/bindings", key,
                               orjson.dumps({"group": "alpha", "chat_id": -100123}))
    assert status == 201, reply


async def test_a_key_name_with_a_control_character_is_refused(hub: Hub) -> None:
    key = await admin_key(hub)
    status, reply = await rest(hub, "POST", "/api/v1/keys", key,
                               orjson.dumps({"name": "ops\u0000bot"}))
    assert status == 400
    assert reply["error"]["message"] == "a key name cannot contain control characters"


@pytest.mark.parametrize("raw", [b"\xff\xfe{", b'{"chain": "\xff"}', DEEP.encode() * 2])
async def test_bodies_that_are_not_json_are_400_everywhere(hub: Hub, raw: bytes) -> None:
    key = await admin_key(hub)
    for path in ("/api/v1/tokens", "/api/v1/telegram/bindings", "/api/v1/keys"):
        status, reply = await rest(hub, "POST", path, key, raw)
        assert status == 400 and reply["error"]["code"] in ("INVALID_JSON", "INVALID_ARGS")


# -- sockets ------------------------------------------------------------------------------


@pytest.mark.hub_settings(server={"max_inbound_rate": 1000})
async def test_a_deep_ping_gets_a_reason_on_004_and_native_and_logs_nothing(
        hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    frame = '{"action":"ping","data":' + DEEP + "}"
    reason = "'data' of a ping is echoed in the pong and cannot be nested this deeply."
    master = await hub.connect("/ws/master")
    native = await hub.connect("/ws")
    for ws in (master, native):
        for _ in range(50):
            await ws.send(frame)
        async with asyncio.timeout(TIMEOUT):
            errors = 0
            while errors < 50:
                msg = await recv_json(ws)
                if msg.get("type") == "error":
                    assert msg["data"] == {"message": reason}
                    errors += 1
        await ws.send('{"action":"ping","data":{"n":1}}')
        async with asyncio.timeout(TIMEOUT):
            while (msg := await recv_json(ws)).get("type") != "pong":
                pass
        assert msg["data"] == {"n": 1}
    no_tracebacks(caplog)


async def test_an_unencodable_action_name_gets_a_reason(hub: Hub) -> None:
    ws = await hub.connect("/ws/master")
    await ws.send('{"action":' + DEEP + "}")
    async with asyncio.timeout(TIMEOUT):
        while (msg := await recv_json(ws)).get("type") != "error":
            pass
    assert msg["data"]["message"] == "Unknown action: a JSON list"


async def test_repeated_failures_of_a_handler_are_logged_once(
        hub: Hub, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        fresh_throttle: None) -> None:
    """Whatever fails unexpectedly on a client's frame, repeating it does not write the log
    (4,500 frames were 3.9 MB of tracebacks)."""

    def broken(data: Any, ts_ms: int) -> bytes:
        raise TypeError("Recursion limit reached")

    monkeypatch.setattr(services004, "pong", broken)
    caplog.set_level(logging.ERROR)
    ws = await hub.connect("/ws/master")
    for _ in range(40):
        await ws.send('{"action":"ping"}')
    async with asyncio.timeout(TIMEOUT):
        answers = 0
        while answers < 40:
            msg = await recv_json(ws)
            if msg.get("type") == "error":
                assert msg["data"] == {"message": "Internal error; try again."}
                answers += 1
    failures = [r for r in caplog.records if r.name == "cryptowire.server.services"]
    assert len(failures) == 1 and failures[0].exc_info is not None


async def test_a_handler_failing_on_every_connection_is_logged_once(
        hub: Hub, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch,
        fresh_throttle: None) -> None:
    def broken(self: ws_rfq.RfqSocket) -> Any:
        raise RuntimeError("rates unavailable")

    monkeypatch.setattr(ws_rfq.RfqSocket, "_rates", broken)
    caplog.set_level(logging.ERROR)
    for _ in range(10):
        raw = await RawClient.connect(hub.port, "/rfq")
        try:
            assert await raw.read_to_end() == 1011
        finally:
            raw.close()
    failures = [r for r in caplog.records if r.name == "cryptowire.server.connection"]
    assert len(failures) == 1 and failures[0].exc_info is not None


async def test_non_utf8_text_frames_close_1007_and_others_go_on(hub: Hub) -> None:
    watcher = await hub.connect()
    for path in ("/ws", "/ws/master", "/rfq", "/swaps"):
        raw = await RawClient.connect(hub.port, path)
        try:
            raw.send_text(b"\xff\xfe\xfd")
            assert await raw.read_to_end() == 1007
        finally:
            raw.close()
    assert (await call(watcher, {"op": "ping"}))["op"] == "pong"


async def test_rfq_fields_of_any_type_get_a_reply(hub: Hub) -> None:
    ws = await hub.connect("/rfq")
    await recv_json(ws)  # handshake
    await ws.send('{"rfq":{"action":"acceptOffer","quoteId":' + DEEP + ',"key":' + DEEP + "}}")
    assert await recv_json(ws) == {
        "action": "orderFailed", "channel": "rfq", "key": None, "quoteId": None,
        "message": "Order failed: this needs an API key with the 'rfq' scope."}
    key, _ = await hub.create_key("trader", ("read", "rfq"))
    trader = await hub.connect("/rfq", query={"api_key": key})
    await recv_json(trader)
    await trader.send('{"rfq":{"action":"acceptOffer","quoteId":' + DEEP + ',"key":"k"}}')
    reply = await recv_json(trader)
    assert reply["action"] == "orderFailed" and reply["quoteId"] is None
    assert reply["message"].startswith("Order failed: unknown quote")
