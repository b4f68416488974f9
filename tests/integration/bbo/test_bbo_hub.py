"""``bbo:<SYMBOL>`` over a real hub socket (PROTOCOLS.md 4.5, docs/protocol.md): the hub's
:class:`~cryptowire.sources.bbo.BboSource` consumes ``book:1:BTCUSDT`` (Bybit linear),
``book:5:BTCUSDT@binance`` and ``book:1:BTCUSDT@okx``, whose events the test publishes
through the node's broker (tests/integration/bbo/books.py); a websockets client reads the
``bbo`` frames. Covered: demand (the books are held only while ``bbo:X`` is), the best venue
per side, a gap dropping a venue until its snapshot, staleness, a refused venue, latest
value on subscribe, every venue refusing, a refusing venue asked again, and two nodes on
Redis (the bbo's leader serving a client of the other node)."""

from __future__ import annotations

import asyncio
import itertools

import orjson
import pytest
from tests.integration.bbo.support import BINANCE, BYBIT, OKX, TIMEOUT, BboReader, HubFactory, best
from tests.waiting import eventually

pytestmark = pytest.mark.integration


async def test_the_best_venue_per_side_a_gap_and_the_demand_behind_it(
        hub_factory: HubFactory) -> None:
    hub = await hub_factory()
    reader = BboReader(await hub.client())
    reply = await reader.subscribe()
    assert reply["success"] is True and reply["args"] == ["bbo:BTCUSDT"]
    # The books are held because bbo:BTCUSDT is, at each venue's smallest depth.
    assert hub.books.active == {BYBIT, BINANCE, OKX}
    first = await reader.until(lambda d: True, "a first state")
    assert first["type"] == "snapshot" and first["source"] == "bbo"
    assert first["data"] == {"symbol": "BTCUSDT", "bid": None, "ask": None, "venues": {},
                             "excluded": {"bybit": "waiting", "binance": "waiting",
                                          "okx": "waiting"}}

    await hub.book(BYBIT, "snapshot", [["100.0", "1"]], [["100.5", "2"]])
    await hub.book(BINANCE, "snapshot", [["100.2", "3"], ["100.1", "1"]], [["100.6", "1"]])
    await hub.book(OKX, "snapshot", [["99.9", "5"]], [["100.40", "0.5"]])
    frame = await reader.until(lambda d: len(d["venues"]) == 3, "three venues in")
    assert frame["type"] == "update"
    data = frame["data"]
    assert best(data, "bid") == ("binance", "100.2", "3")
    assert best(data, "ask") == ("okx", "100.40", "0.5")
    assert data["venues"]["bybit"]["bid"] == ["100.0", "1"]
    assert data["venues"]["binance"]["ask"] == ["100.6", "1"]
    assert isinstance(data["venues"]["okx"]["ts"], int) and data["excluded"] == {}

    # A delta that moves a best (exact: "100.20" ties binance's "100.2"; the larger size wins).
    await hub.book(BYBIT, "delta", [["100.20", "4"], ["100.0", "0"]], [])
    frame = await reader.until(lambda d: best(d, "bid") == ("bybit", "100.20", "4"),
                               "bybit's larger size at the same price")
    # A gap: okx leaves (its ask no longer counts) until its next snapshot.
    await hub.gap(OKX)
    frame = await reader.until(lambda d: d["excluded"].get("okx") == "gap", "okx out")
    assert "okx" not in frame["data"]["venues"]
    assert best(frame["data"], "ask") == ("bybit", "100.5", "2")
    await hub.book(OKX, "delta", [], [["100.3", "1"]])  # a delta does not bring it back
    await hub.book(BINANCE, "delta", [["100.2", "0"]], [])  # (a change to see it passed)
    frame = await reader.until(lambda d: best(d, "bid") == ("bybit", "100.20", "4")
                               and d["venues"]["binance"]["bid"] == ["100.1", "1"],
                               "binance's delta")
    assert "okx" not in frame["data"]["venues"]
    await hub.book(OKX, "snapshot", [["99.9", "5"]], [["100.3", "1"]])
    frame = await reader.until(lambda d: "okx" in d["venues"], "okx back after its snapshot")
    assert best(frame["data"], "ask") == ("okx", "100.3", "1")

    # Latest value on subscribe: a second client gets the state at once.
    other = BboReader(await hub.client())
    await other.subscribe()
    latest = await other.until(lambda d: True, "the latest state")
    assert latest["type"] == "snapshot" and latest["data"] == frame["data"]

    # Nobody left: the venues' books are released (demand-driven), after the linger.
    for ws in (reader.ws, other.ws):
        await ws.send(orjson.dumps({"op": "unsubscribe", "args": ["bbo:BTCUSDT"]}).decode())
    await eventually(lambda: not hub.books.active, TIMEOUT, "the books released")
    assert sorted(hub.books.unsubscribed) == sorted([BYBIT, BINANCE, OKX])


async def test_a_stale_venue_drops_out_and_returns_with_its_next_update(
        hub_factory: HubFactory) -> None:
    hub = await hub_factory(stale_after_ms=400)
    reader = BboReader(await hub.client())
    await reader.subscribe()
    await hub.book(BYBIT, "snapshot", [["100", "1"]], [["101", "1"]])
    await hub.book(BINANCE, "snapshot", [["100.5", "1"]], [["100.9", "1"]])
    await hub.book(OKX, "snapshot", [["99", "1"]], [["102", "1"]])
    await reader.until(lambda d: best(d, "bid") == ("binance", "100.5", "1"), "binance best")

    quiet = asyncio.Event()

    async def keep_alive() -> None:  # bybit and okx keep updating (paced like a venue),
        n = itertools.count(2)        # binance goes quiet
        while not quiet.is_set():
            size = str(next(n))
            await hub.book(BYBIT, "delta", [["100", size]], [])
            await hub.book(OKX, "delta", [["99", size]], [])
            await asyncio.sleep(0.05)

    task = asyncio.create_task(keep_alive())
    try:
        frame = await reader.until(lambda d: d["excluded"].get("binance") == "stale",
                                   "binance stale")
        assert best(frame["data"], "bid")[0] == "bybit"  # type: ignore[index]
        assert set(frame["data"]["venues"]) == {"bybit", "okx"}
        await hub.book(BINANCE, "delta", [], [["100.8", "2"]])  # exact again: back in
        frame = await reader.until(lambda d: "binance" in d["venues"], "binance back")
        assert best(frame["data"], "bid") == ("binance", "100.5", "1")
        assert best(frame["data"], "ask") == ("binance", "100.8", "2")
    finally:
        quiet.set()
        await task
    # Everybody quiet: every venue drops out, and the bbo says so.
    frame = await reader.until(lambda d: not d["venues"], "no venue left")
    assert frame["data"]["bid"] is None and frame["data"]["ask"] is None
    assert frame["data"]["excluded"] == {"bybit": "stale", "binance": "stale", "okx": "stale"}


async def test_a_refusing_venue_is_left_out_and_all_refusing_refuses_the_bbo(
        hub_factory: HubFactory) -> None:
    hub = await hub_factory(refuse={"binance": "Binance does not list BTCUSDT."},
                            retry_refused_s=0.1)
    reader = BboReader(await hub.client())
    assert (await reader.subscribe())["success"] is True
    assert hub.books.active == {BYBIT, OKX}
    first = await reader.until(lambda d: True, "a first state")
    assert first["data"]["excluded"] == {"bybit": "waiting", "okx": "waiting"}
    await hub.book(OKX, "snapshot", [["99", "1"]], [["102", "1"]])
    frame = await reader.until(lambda d: "okx" in d["venues"], "okx in")
    assert "binance" not in frame["data"]["venues"] | frame["data"]["excluded"]
    await eventually(lambda: hub.books.refusals["binance"] >= 2, TIMEOUT, "a second try")

    # Binance lists it later: the bbo asks the refusing venues again and takes it in.
    assert hub.books.refusals["binance"] >= 2  # asked again (every 0.1 s here), refused
    del hub.books.refuse["binance"]
    frame = await reader.until(lambda d: "binance" in d["excluded"], "binance waiting")
    assert frame["data"]["excluded"]["binance"] == "waiting"
    assert hub.books.active == {BYBIT, BINANCE, OKX}
    await hub.book(BINANCE, "snapshot", [["99.5", "1"]], [["101", "1"]])
    frame = await reader.until(lambda d: "binance" in d["venues"], "binance in")
    assert best(frame["data"], "bid") == ("binance", "99.5", "1")

    everyone = await hub_factory(refuse={v: f"{v} refuses" for v in ("linear", "binance",
                                                                      "okx")})
    reply = await BboReader(await everyone.client()).subscribe()
    assert reply["success"] is False
    (arg, reason), = ((r["arg"], r["reason"]) for r in reply["rejected"])
    assert arg == "bbo:BTCUSDT"
    assert "bybit: linear refuses" in reason and "okx: okx refuses" in reason
    assert not everyone.books.active  # nothing held


async def test_two_nodes_on_redis_the_bbo_leader_serves_a_client_of_the_other(
        hub_factory: HubFactory, redis_url: str, prefix: str) -> None:
    bus = {"url": redis_url, "prefix": prefix}
    a = await hub_factory(bus=bus)
    b = await hub_factory(bus=bus)
    reader = BboReader(await b.client())
    assert (await reader.subscribe())["success"] is True
    # Whichever node leads the books source holds the three books for the bbo's leader.
    await eventually(lambda: a.books.active | b.books.active == {BYBIT, BINANCE, OKX},
                     TIMEOUT, "the books held through the cluster's demand")
    await reader.until(lambda d: set(d["excluded"]) == {"bybit", "binance", "okx"},
                       "the first state, from the bbo's leader")
    await a.book(BYBIT, "snapshot", [["100.0", "1"]], [["100.5", "2"]])
    await a.book(BINANCE, "snapshot", [["100.2", "3"]], [["100.6", "1"]])
    await b.book(OKX, "snapshot", [["99.9", "5"]], [["100.40", "0.5"]])
    frame = await reader.until(lambda d: len(d["venues"]) == 3, "three venues in")
    assert best(frame["data"], "bid") == ("binance", "100.2", "3")
    assert best(frame["data"], "ask") == ("okx", "100.40", "0.5")
    await a.gap(OKX)
    frame = await reader.until(lambda d: d["excluded"].get("okx") == "gap", "okx out")
    assert best(frame["data"], "ask") == ("bybit", "100.5", "2")
    # A client of node a gets the same latest state (read from Redis).
    other = BboReader(await a.client())
    await other.subscribe()
    latest = await other.until(lambda d: True, "the latest state")
    assert latest["type"] == "snapshot" and latest["data"] == frame["data"]
