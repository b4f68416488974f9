"""Published data on the wire (issue 10, items 5 and 7): what cannot be encoded is refused
before it takes an offset (a batch is all or nothing, the error names the item), and numbers
keep their digits from the publish to delivery, recovery and the Redis bus.

Frames are compared as the text the hub sent: parsing them with orjson (or json) on this
side would turn ``123456789012345678901234567890`` into a float and hide the defect.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest
from tests.integration.server.conftest import TIMEOUT, Hub, HubFactory, call, subscribe
from websockets.asyncio.client import ClientConnection

pytestmark = pytest.mark.integration

#: Nested 300 deep: orjson parses it (up to 1024) but cannot encode it (at most 254).
DEEP = "[" * 300 + "]" * 300
BIG = "123456789012345678901234567890"
#: Data whose numbers a float or a 64-bit integer would alter, as sent and as expected back.
EXACT = f'{{"id":{BIG},"neg":-{BIG}7,"u64":18446744073709551616,"px":1.50,"tiny":1e-30}}'


async def post(hub: Hub, body: bytes, key: str) -> tuple[int, Any]:
    async with hub.http.post(f"{hub.url}/api/v1/publish", data=body,
                             headers={"X-API-Key": key,
                                      "Content-Type": "application/json"}) as resp:
        return resp.status, await resp.json()


async def next_raw(ws: ClientConnection, channel: str) -> str:
    """The next data frame of ``channel``, as the text the hub sent."""
    async with asyncio.timeout(TIMEOUT):
        while True:
            raw = await ws.recv()
            assert isinstance(raw, str)
            msg = orjson.loads(raw)
            if isinstance(msg, dict) and msg.get("channel") == channel and "offset" in msg:
                return raw


def data_text(raw: str) -> str:
    """The ``data`` of a native frame as sent: it is spliced in last, as the broker's bytes."""
    head, sep, data = raw.partition(',"data":')
    assert sep and data.endswith("}"), raw
    return data[:-1]


# -- item 5: nothing that cannot be encoded takes an offset -----------------------------------


async def test_rest_batch_with_unencodable_data_is_400_naming_the_item_and_publishes_nothing(
        hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    listener = await hub.connect()
    await subscribe(listener, "app:batch")
    body = (f'[{{"channel":"app:batch","data":{{"n":1}}}},'
            f'{{"channel":"app:batch","data":{DEEP}}},'
            f'{{"channel":"app:batch","data":{{"n":3}}}}]').encode()
    status, reply = await post(hub, body, key)
    assert status == 400, reply
    assert reply["error"]["code"] == "INVALID_ARGS"
    assert reply["error"]["message"] == "Item 1: 'data' nested deeper than 254 levels."
    assert hub.node.broker.published == 0  # type: ignore[attr-defined]
    # The channel's history starts clean: the next publication is offset 1, and it is the
    # first thing the listener receives.
    status, reply = await post(hub, b'{"channel":"app:batch","data":{"n":"after"}}', key)
    assert status == 200 and reply["positions"][0]["offset"] == 1
    raw = await next_raw(listener, "app:batch")
    assert orjson.loads(raw)["offset"] == 1 and data_text(raw) == '{"n":"after"}'


async def test_native_publish_of_unencodable_data_gets_a_precise_error_and_leaves_no_hole(
        hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    ws = await hub.connect(headers={"X-API-Key": key})
    one = await call(ws, {"id": 1, "op": "publish",
                          "args": [{"channel": "app:r", "data": {"n": 1}}]})
    epoch = one["positions"][0]["epoch"]
    assert one["positions"][0]["offset"] == 1
    bad = await call(ws, '{"id":2,"op":"publish","args":[{"channel":"app:r","data":'
                         f'{DEEP}}}]}}')
    assert bad == {"id": 2, "op": "error", "code": "INVALID_ARGS",
                   "message": "Item 0: 'data' nested deeper than 254 levels."}
    surrogate = await call(ws, '{"id":3,"op":"publish","args":[{"channel":"app:r",'
                               '"data":{"s":"\\ud800"}}]}')
    # (a lone surrogate is not JSON text to orjson: the frame itself is refused)
    assert surrogate["op"] == "error" and surrogate["code"] == "INVALID_JSON"
    three = await call(ws, {"id": 4, "op": "publish",
                            "args": [{"channel": "app:r", "data": {"n": 3}}]})
    assert three["positions"][0] == {"channel": "app:r", "epoch": epoch, "offset": 2}
    # A client that saw offset 1 recovers exactly what followed it.
    reader = await hub.connect()
    reply = await subscribe(reader, "app:r", recover={"app:r": {"epoch": epoch, "offset": 1}})
    assert reply["recovered"] == {"app:r": True}
    raw = await next_raw(reader, "app:r")
    assert orjson.loads(raw)["offset"] == 2 and data_text(raw) == '{"n":3}'
    assert await call(ws, {"op": "ping"}) is not None  # the session goes on


# -- item 7: numbers keep their digits end to end ---------------------------------------------


async def test_exact_numbers_through_rest_native_ws_and_recovery(hub: Hub) -> None:
    key, _ = await hub.create_key("pub", ("publish",))
    listener = await hub.connect()
    await subscribe(listener, "app:big")
    status, reply = await post(hub, f'{{"channel":"app:big","data":{EXACT}}}'.encode(), key)
    assert status == 200, reply
    epoch = reply["positions"][0]["epoch"]
    assert data_text(await next_raw(listener, "app:big")) == EXACT
    ws = await hub.connect(headers={"X-API-Key": key})
    ok = await call(ws, f'{{"op":"publish","args":[{{"channel":"app:big","data":[{BIG}]}}]}}')
    assert ok["success"] is True
    assert data_text(await next_raw(listener, "app:big")) == f"[{BIG}]"
    # Recovery replays the same bytes from history.
    late = await hub.connect()
    reply = await subscribe(late, "app:big", recover={"app:big": {"epoch": epoch, "offset": 0}})
    assert reply["recovered"] == {"app:big": True}
    assert [data_text(await next_raw(late, "app:big")) for _ in range(2)] == [EXACT, f"[{BIG}]"]


async def test_exact_numbers_across_the_redis_bus(
        hub_factory: HubFactory, redis_url: str, prefix: str) -> None:
    bus = {"url": redis_url, "prefix": prefix}
    a = await hub_factory(bus=bus, demo={"mode": "off"})
    b = await hub_factory(bus=bus, demo={"mode": "off"})
    key, _ = await a.create_key("pub", ("publish",))
    listener = await b.connect()
    await subscribe(listener, "app:bus")
    ws = await a.connect(headers={"X-API-Key": key})
    ok = await call(ws, f'{{"op":"publish","args":[{{"channel":"app:bus","data":{EXACT}}}]}}')
    epoch = ok["positions"][0]["epoch"]
    assert data_text(await next_raw(listener, "app:bus")) == EXACT  # pub/sub to node b
    late = await b.connect()
    reply = await subscribe(late, "app:bus", recover={"app:bus": {"epoch": epoch, "offset": 0}})
    assert reply["recovered"] == {"app:bus": True}
    assert data_text(await next_raw(late, "app:bus")) == EXACT  # the Redis stream
