"""The Redis state key's logic without Redis (bus/redis_state.py): what the publish script is
told per event, when a book checkpoint is due, and the rebuild from a script's answer."""

from __future__ import annotations

from typing import Any

import orjson

from cryptowire.bus.redis import encode_payload
from cryptowire.bus.redis_state import Checkpoints, rebuild, state_mode, state_payload
from cryptowire.events import Event, Publication

BOOK = "book:50:BTCUSDT"


def book(type_: str, bids: list[list[str]], asks: list[list[str]]) -> Event:
    return Event(channel=BOOK, type=type_, data={"symbol": "BTCUSDT", "bids": bids,
                                                  "asks": asks}, ts_received=1000)


def confirmed(event: Event, offset: int, ts: int = 1000) -> Publication:
    return Publication(channel=event.channel, type=event.type, epoch="e1", offset=offset, ts=ts,
                       ts_received=ts, source="", data_json=orjson.dumps(event.data))


def test_state_mode_per_event() -> None:
    assert state_mode(Event("trade:BTCUSDT", {})) == "n"
    assert state_mode(Event("app:x", {})) == "n"
    assert state_mode(Event("ticker:BTCUSDT", {})) == "1"  # every ticker is the state
    assert state_mode(Event("kline:1m:BTCUSDT", {})) == "1"
    # a gap keeps a full-state channel's last value (the key plus the gap after it)
    assert state_mode(Event("ticker:BTCUSDT", {"reason": "x"}, type="gap")) == "0"
    assert state_mode(book("snapshot", [], [])) == "1"
    assert state_mode(book("delta", [], [])) == "0"  # the key plus the stream after it
    assert state_mode(Event(BOOK, {"reason": "x"}, type="gap")) == "3"  # unknown: deleted


def test_a_checkpoint_every_n_deltas_and_none_on_an_unknown_book() -> None:
    points = Checkpoints(every=3, max_age_ms=10**9, max_bytes=10**9, max_channels=10)
    assert points.confirmed(confirmed(book("snapshot", [["100", "1"]], [["101", "1"]]), 1)) \
        is None  # the publish script wrote the snapshot itself
    due = [points.confirmed(confirmed(book("delta", [[f"{90 + i}", "1"]], []), 2 + i))
           for i in range(6)]
    assert [d is not None for d in due] == [False, False, True, False, False, True]
    assert points.written == 2
    head, data = due[2].split(b"\n", 1)  # type: ignore[union-attr]
    assert orjson.loads(head)[0] == "snapshot"
    assert orjson.loads(data)["bids"] == [["100", "1"], ["92", "1"], ["91", "1"], ["90", "1"]]
    # A hole in the offsets: the book is unknown here, no checkpoint is ever written of it.
    assert all(points.confirmed(confirmed(book("delta", [["80", "1"]], []), o)) is None
               for o in (20, 21, 22, 23))


def test_a_checkpoint_when_the_deltas_grow_old_or_large() -> None:
    old = Checkpoints(every=100, max_age_ms=50, max_bytes=10**9, max_channels=10)
    old.confirmed(confirmed(book("snapshot", [["100", "1"]], []), 1))
    assert old.confirmed(confirmed(book("delta", [["99", "1"]], []), 2, ts=1000)) is None
    assert old.confirmed(confirmed(book("delta", [["98", "1"]], []), 3, ts=1060)) is not None
    big = Checkpoints(every=100, max_age_ms=10**9, max_bytes=100, max_channels=10)
    big.confirmed(confirmed(book("snapshot", [["100", "1"]], []), 1))
    assert big.confirmed(confirmed(book("delta", [["99", "1"]], []), 2)) is None
    assert big.confirmed(confirmed(book("delta", [["98", "1" * 60]], []), 3)) is not None


def entry(offset: int, event: Event) -> list[Any]:
    payload, _ = encode_payload(event)
    return [f"{offset}-0".encode(), [b"t", b"1000", b"p", payload]]


def test_rebuild_replays_the_stream_after_the_key() -> None:
    base = state_payload(confirmed(book("snapshot", [["100", "1"]], [["101", "1"]]), 4))
    entries = [entry(5, book("delta", [["99", "2"]], [])),
               entry(6, book("delta", [], [["101", "0"], ["102", "1"]]))]
    snap = rebuild(BOOK, [b"e1", 6, [b"4", base], entries])
    assert snap is not None and (snap.epoch, snap.offset, snap.type) == ("e1", 6, "snapshot")
    assert orjson.loads(snap.data_json) == {"symbol": "BTCUSDT",
                                            "bids": [["100", "1"], ["99", "2"]],
                                            "asks": [["102", "1"]]}
    # Anything short of exactly key+1..top is no state.
    assert rebuild(BOOK, [b"e1", 7, [b"4", base], entries]) is None  # ends before the top
    assert rebuild(BOOK, [b"e1", 6, [b"4", base], entries[1:]]) is None  # a hole
    assert rebuild(BOOK, [b"e1", 6, None, []]) is None  # no key (unknown)
    assert rebuild(BOOK, None) is None  # no meta hash
