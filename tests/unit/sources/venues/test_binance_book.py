"""DepthSync (Binance's documented local book procedure) over the fixtures of
``tests/fixtures/binance`` and over literal events for each documented rule."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from cryptowire.sources.venues.binance_book import DepthSync, DepthSyncError, Market

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "binance"
MARKETS: tuple[Market, ...] = ("spot", "futures")


def frames(name: str) -> list[dict[str, Any]]:
    lines = (FIXTURES / name).read_text().splitlines()
    return [json.loads(line)["data"] for line in lines]


def snapshot(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def reference(snap: dict[str, Any], events: list[dict[str, Any]], market: Market
              ) -> tuple[list[list[str]], list[list[str]]]:
    """The naive reading: the snapshot, then every event not older than it, in order."""
    last = snap["lastUpdateId"]
    book = {"b": {Decimal(p): [p, q] for p, q in snap["bids"]},
            "a": {Decimal(p): [p, q] for p, q in snap["asks"]}}
    for event in events:
        if event["u"] < last or (market == "spot" and event["u"] == last):
            continue
        for side in "ba":
            for price, size in event[side]:
                if Decimal(size) == 0:
                    book[side].pop(Decimal(price), None)
                else:
                    book[side][Decimal(price)] = [price, size]
    bids = [book["b"][k] for k in sorted(book["b"], reverse=True)]
    asks = [book["a"][k] for k in sorted(book["a"])]
    return bids, asks


def levels(sync: DepthSync) -> tuple[list[list[str]], list[list[str]]]:
    return sync.book.levels("bids"), sync.book.levels("asks")


def run(market: Market, events: list[dict[str, Any]], snap: dict[str, Any], after: int
        ) -> tuple[DepthSync, list[Any]]:
    """Feed ``after`` events, then the snapshot, then the rest; collect every step."""
    sync, steps = DepthSync(market), []
    for event in events[:after]:
        steps.append(sync.on_event(event))
    steps.append(sync.on_snapshot(snap))
    for event in events[after:]:
        steps.append(sync.on_event(event))
    return sync, steps


@pytest.mark.parametrize("market", MARKETS)
@pytest.mark.parametrize("after", [0, 3, 6, 7, 15, 40])
def test_the_synced_book_equals_the_naive_reference(market: Market, after: int) -> None:
    events, snap = frames(f"{market}-depth.jsonl"), snapshot(f"{market}-depth-snapshot.json")
    sync, steps = run(market, events, snap, after)
    assert all(step.resync is None for step in steps)
    assert sync.synced and sync.update_id == events[-1]["u"]
    assert levels(sync) == reference(snap, events, market)
    assert not sync.book.crossed()


@pytest.mark.parametrize("market", MARKETS)
def test_the_bridging_event_is_the_documented_one_and_is_not_dropped(market: Market) -> None:
    events, snap = frames(f"{market}-depth.jsonl"), snapshot(f"{market}-depth-snapshot.json")
    last = snap["lastUpdateId"]
    sync, steps = run(market, events, snap, len(events))
    first = steps[-1].applied[0]
    if market == "spot":  # U <= lastUpdateId + 1 <= u
        assert first.first_id <= last + 1 <= first.final_id
    else:  # U <= lastUpdateId AND u >= lastUpdateId
        assert first.first_id <= last <= first.final_id
    assert first.first_id < last  # the fixture's snapshot holds part of this event ...
    before = [e for e in events if e["u"] < first.first_id]
    assert len(before) == 6  # ... and the six events before it are dropped
    # right after the bridge, the book differs from the snapshot alone: a sync that
    # dropped the bridging event would be wrong, so the fixture really tests the bridge
    at_bridge = DepthSync(market)
    at_bridge.on_snapshot(snap)
    for event in events[:7]:
        at_bridge.on_event(event)
    assert levels(at_bridge) == reference(snap, events[:7], market)
    assert levels(at_bridge) != reference(snap, [], market)


@pytest.mark.parametrize("market", MARKETS)
def test_a_missing_event_is_detected_and_a_new_snapshot_recovers(market: Market) -> None:
    full, gap = frames(f"{market}-depth.jsonl"), frames(f"{market}-depth-gap.jsonl")
    sync = DepthSync(market)
    sync.on_snapshot(snapshot(f"{market}-depth-snapshot.json"))
    reasons = [(i, sync.on_event(e).resync) for i, e in enumerate(gap)]
    broken = [(i, r) for i, r in reasons if r is not None]
    assert [i for i, _ in broken] == [20]  # the event after the missing one (index 20)
    assert ("pu=" if market == "futures" else "missed events") in str(broken[0][1])
    assert sync.needs_snapshot and not sync.synced and len(sync.book) == 0
    # a fresh snapshot as of event 30 (built from the full stream) brings the book back
    fresh = full[30]
    bids, asks = reference(snapshot(f"{market}-depth-snapshot.json"), full[:31], market)
    step = sync.on_snapshot({"lastUpdateId": fresh["u"], "bids": bids, "asks": asks})
    assert step.resync is None and step.snapshot
    # futures keep the event whose u == lastUpdateId (documented), spot drops it
    kept = full[30:] if market == "futures" else full[31:]
    assert [e.final_id for e in step.applied] == [e["u"] for e in kept]
    assert levels(sync) == reference(snapshot(f"{market}-depth-snapshot.json"), full, market)


@pytest.mark.parametrize("market", MARKETS)
def test_a_snapshot_older_than_the_stream_asks_for_another(market: Market) -> None:
    events = frames(f"{market}-depth.jsonl")
    sync = DepthSync(market)
    for event in events[:3]:
        sync.on_event(event)
    step = sync.on_snapshot(snapshot(f"{market}-depth-snapshot-stale.json"))
    assert step.resync is not None and "first event" in step.resync
    assert step.applied == () and not step.snapshot
    assert sync.needs_snapshot and len(sync.book) == 0
    # the buffered events are kept: the right snapshot then syncs with nothing lost
    for event in events[3:]:
        sync.on_event(event)
    step = sync.on_snapshot(snapshot(f"{market}-depth-snapshot.json"))
    assert step.resync is None
    assert levels(sync) == reference(snapshot(f"{market}-depth-snapshot.json"), events, market)


def test_futures_pu_must_chain_even_when_u_runs_on() -> None:
    events = frames("futures-depth.jsonl")
    sync = DepthSync("futures")
    sync.on_snapshot(snapshot("futures-depth-snapshot.json"))
    for event in events[:12]:
        assert sync.on_event(event).resync is None
    bad = dict(events[12], pu=events[12]["pu"] - 1)
    step = sync.on_event(bad)
    assert step.resync is not None and step.resync.startswith(f"pu={bad['pu']}")
    assert sync.needs_snapshot


def spot(first: int, final: int, bids: list[list[str]] | None = None) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 1, "s": "BTCUSDT", "U": first, "u": final,
            "b": bids or [], "a": []}


def fut(first: int, final: int, prev: int, bids: list[list[str]] | None = None
        ) -> dict[str, Any]:
    return {"e": "depthUpdate", "E": 1, "T": 1, "s": "BTCUSDT", "U": first, "u": final,
            "pu": prev, "b": bids or [], "a": []}


SNAP = {"lastUpdateId": 100, "bids": [["10.0", "1"]], "asks": [["11.0", "1"]]}


def test_spot_rules_on_literal_events() -> None:
    sync = DepthSync("spot")
    sync.on_snapshot(SNAP)
    assert not sync.synced
    assert sync.on_event(spot(90, 100, [["10.0", "9"]])).applied == ()  # u <= id: dropped
    assert sync.book.levels("bids") == [["10.0", "1"]]
    assert len(sync.on_event(spot(101, 105, [["9.5", "2"]])).applied) == 1  # U == id + 1
    assert sync.synced and sync.update_id == 105
    assert len(sync.on_event(spot(104, 107)).applied) == 1  # overlap: applied (documented)
    step = sync.on_event(spot(109, 110))  # U > id + 1: missed 108
    assert step.resync is not None and "U=109" in step.resync
    assert sync.needs_snapshot


def test_spot_first_event_must_reach_the_snapshot() -> None:
    sync = DepthSync("spot")
    sync.on_event(spot(102, 110))
    step = sync.on_snapshot(SNAP)  # lastUpdateId 100: 101 missing
    assert step.resync is not None and "first event U=102" in step.resync


def test_futures_rules_on_literal_events() -> None:
    sync = DepthSync("futures")
    sync.on_event(fut(80, 99, 70))  # u < lastUpdateId: dropped
    sync.on_event(fut(100, 100, 99, [["10.0", "3"]]))  # u == lastUpdateId: kept (documented)
    step = sync.on_snapshot(SNAP)
    assert [e.final_id for e in step.applied] == [100] and sync.synced
    assert sync.book.levels("bids") == [["10.0", "3"]]
    assert sync.on_event(fut(130, 140, 100)).resync is None  # ids skip: pu chains
    assert sync.on_event(fut(150, 160, 141)).resync is not None


def test_futures_first_event_after_the_snapshot_is_refused() -> None:
    sync = DepthSync("futures")
    sync.on_snapshot(SNAP)
    step = sync.on_event(fut(101, 120, 100))  # U > lastUpdateId: not the documented bridge
    assert step.resync is not None and "older than the stream" in step.resync


@pytest.mark.parametrize("payload", [
    {"e": "trade", "U": 1, "u": 2, "b": [], "a": []},
    {"e": "depthUpdate", "U": "1", "u": 2, "b": [], "a": []},
    {"e": "depthUpdate", "U": 3, "u": 2, "b": [], "a": []},
    {"e": "depthUpdate", "U": 1, "u": 2, "b": [["1.0", 2.5]], "a": []},
    {"e": "depthUpdate", "U": 1, "u": 2, "b": [["1e5", "-1"]], "a": []},
    {"e": "depthUpdate", "U": 1, "u": 2, "b": [], "a": [["NaN", "1"]]},
    {"e": "depthUpdate", "U": 1, "u": 2, "b": "x", "a": []},
])
def test_malformed_events_are_refused_without_touching_the_book(payload: dict[str, Any]
                                                                  ) -> None:
    sync = DepthSync("spot")
    sync.on_snapshot(SNAP)
    with pytest.raises(DepthSyncError):
        sync.on_event(payload)
    assert sync.update_id == 100 and sync.book.levels("bids") == [["10.0", "1"]]


def test_futures_events_need_pu() -> None:
    with pytest.raises(DepthSyncError, match="pu"):
        DepthSync("futures").on_event(spot(1, 2))


def test_the_buffer_is_bounded_and_drops_the_oldest() -> None:
    sync = DepthSync("spot", max_buffer=3)
    for n in range(10):
        sync.on_event(spot(101 + n, 101 + n))
    step = sync.on_snapshot(SNAP)  # 101..107 were dropped: the oldest kept is 108
    assert step.resync is not None and "U=108" in step.resync
