"""The SDK's ``Book`` over literal hub frames, and what conflation changes in the client: batch
frames, ``interval_ms`` kept across reconnects, the snapshot after a subscribe reply."""

from __future__ import annotations

from typing import Any

import pytest

from cryptowire.client import Book, Disconnected, Gap, Message, SubscribeReply
from cryptowire.client._book import book_channel
from cryptowire.client._inbox import Inbox
from cryptowire.client._messages import Batch, FrameError, Reply, parse_frame
from cryptowire.client._subscriptions import Subscriptions, check_interval
from cryptowire.client._tracker import ChannelTracker

CH = "book:50:BTCUSDT"


def frame(kind: str, offset: int, data: Any, epoch: str = "k2f9",
          channel: str = CH) -> Message:
    return Message(channel, kind, epoch, offset, 1671179923000 + offset, "bybit", data)


def snap(offset: int, bids: list[list[str]], asks: list[list[str]],
         epoch: str = "k2f9") -> Message:
    return frame("snapshot", offset, {"symbol": "BTCUSDT", "bids": bids, "asks": asks,
                                      "venueSeq": 1000 + offset}, epoch)


def delta(offset: int, bids: list[list[str]], asks: list[list[str]],
          epoch: str = "k2f9") -> Message:
    return frame("delta", offset, {"symbol": "BTCUSDT", "bids": bids, "asks": asks,
                                   "venueSeq": 1000 + offset}, epoch)


SNAP = snap(17, [["17440.00", "40.833"], ["17439.50", "0.513"]], [["17440.50", "78.815"]])


def test_snapshot_then_deltas() -> None:
    book = Book(CH)
    assert not book.valid and book.reason == "no snapshot yet" and book.offset is None
    assert book.apply(SNAP) and book.valid
    assert (book.epoch, book.offset, book.symbol, book.venue_seq) == ("k2f9", 17, "BTCUSDT",
                                                                      1017)
    assert book.best_bid() == ["17440.00", "40.833"] and book.best_ask() == ["17440.50",
                                                                              "78.815"]
    assert book.apply(delta(18, [], [["17440.50", "78.857"], ["17442.00", "0"]]))
    assert book.apply(delta(19, [["17439.50", "0"], ["17440.10", "1.000"]],
                            [["17441.00", "2"]]))
    assert book.valid and book.offset == 19 and len(book) == 4
    assert book.levels("bids") == [["17440.10", "1.000"], ["17440.00", "40.833"]]
    assert book.levels("asks", 1) == [["17440.50", "78.857"]]
    assert not book.crossed()


def test_deltas_before_the_first_snapshot_are_skipped() -> None:
    book = Book(CH)
    assert book.apply(delta(16, [["1", "1"]], []))
    assert not book.valid and len(book) == 0 and book.offset == 16
    book.apply(SNAP)
    assert book.valid and len(book) == 3


def test_a_hole_in_offsets_invalidates_until_the_next_snapshot() -> None:
    book = Book(CH)
    book.apply(SNAP)
    book.apply(delta(19, [["17440.00", "1"]], []))  # 18 never came
    assert not book.valid and "offsets 18..18 of epoch k2f9 are missing" in book.reason
    assert book.best_bid() == ["17440.00", "40.833"]  # not applied; stale levels readable
    book.apply(delta(20, [["17440.00", "2"]], []))
    assert not book.valid and book.best_bid() == ["17440.00", "40.833"]
    book.apply(snap(25, [["17450.00", "1"]], [["17451.00", "1"]]))
    assert book.valid and book.reason == "" and book.levels("bids") == [["17450.00", "1"]]
    book.apply(delta(26, [["17450.00", "3"]], []))
    assert book.valid and book.best_bid() == ["17450.00", "3"]


def test_a_gap_frame_invalidates_until_the_snapshot_after_it() -> None:
    book = Book(CH)
    book.apply(SNAP)
    assert book.apply(frame("gap", 18, {"reason": "u jumped from 5 to 7"}))
    assert not book.valid and "u jumped from 5 to 7" in book.reason and book.offset == 18
    book.apply(delta(19, [["1", "1"]], []))
    assert not book.valid
    book.apply(snap(20, [["17441.00", "1"]], [["17442.00", "1"]]))
    assert book.valid and book.best_bid() == ["17441.00", "1"]


def test_a_client_gap_invalidates() -> None:
    book = Book(CH)
    book.apply(SNAP)
    assert not book.apply(Gap("book:50:ETHUSDT", "lost"))  # another channel
    assert book.valid
    assert book.apply(Gap(CH, "the hub lost its history (epoch a -> b)"))
    assert not book.valid and "the hub lost its history" in book.reason


def test_an_epoch_change_without_a_snapshot_invalidates() -> None:
    book = Book(CH)
    book.apply(SNAP)
    book.apply(delta(1, [["17440.00", "9"]], [], epoch="new1"))
    assert not book.valid and "epoch changed from k2f9 to new1" in book.reason
    book.apply(snap(2, [["1.5", "1"]], [["2.5", "1"]], epoch="new1"))
    assert book.valid and book.epoch == "new1"


def test_a_malformed_delta_invalidates_and_changes_nothing() -> None:
    book = Book(CH)
    book.apply(SNAP)
    book.apply(delta(18, [["17440.00", "5"]], [["17440.50", "-1"]]))
    assert not book.valid and "delta at offset 18 refused" in book.reason
    assert book.best_bid() == ["17440.00", "40.833"]
    book.apply(frame("snapshot", 19, "not a book"))
    assert not book.valid and "snapshot at offset 19 refused" in book.reason


def test_duplicates_and_other_items_are_ignored() -> None:
    book = Book(CH)
    book.apply(SNAP)
    book.apply(delta(18, [["17440.00", "1"]], []))
    assert not book.apply(delta(18, [["17440.00", "7"]], []))  # already applied
    assert not book.apply(frame("update", 19, {}))
    assert not book.apply(frame("delta", 19, {}, channel="book:50:ETHUSDT"))
    assert not book.apply(Disconnected(1006, "gone", 0.5))
    assert book.valid and book.best_bid() == ["17440.00", "1"] and book.offset == 18


def test_conflated_snapshots_skip_offsets_by_design() -> None:
    book = Book(CH)
    book.apply(SNAP)
    book.apply(snap(40, [["1", "1"]], [["2", "1"]]))
    assert book.valid and book.offset == 40


def test_channel_names() -> None:
    assert book_channel("orderbook.200.ETHUSDT") == ("book:200:ETHUSDT", 200)
    assert book_channel("book:50:BTCUSDT@spot") == ("book:50:BTCUSDT@spot", 50)
    assert Book("orderbook.50.BTCUSDT").channel == CH and Book(CH).depth == 50
    for bad in ("ticker:BTCUSDT", "book:x:BTCUSDT", "orderbook.50"):
        with pytest.raises(ValueError, match="not a book channel"):
            Book(bad)


def test_the_book_cuts_at_its_depth() -> None:
    book = Book("book:1:BTCUSDT")
    book.apply(frame("snapshot", 1, {"bids": [["2", "1"], ["1", "1"]], "asks": []},
                     channel="book:1:BTCUSDT"))
    assert book.levels("bids") == [["2", "1"]]


# -- batch frames ---------------------------------------------------------------------------


def test_batch_frames_become_one_message_per_event() -> None:
    batch = parse_frame('{"channel":"trade:BTCUSDT","type":"batch","epoch":"e1",'
                        '"offsets":[41,43],"ts":99,"source":"bybit",'
                        '"data":[{"n":1},{"n":2,"price":"0.10"},{"n":3}]}')
    assert isinstance(batch, Batch)
    assert batch.messages() == [
        Message("trade:BTCUSDT", "update", "e1", 41, 99, "bybit", {"n": 1}),
        Message("trade:BTCUSDT", "update", "e1", 42, 99, "bybit", {"n": 2, "price": "0.10"}),
        Message("trade:BTCUSDT", "update", "e1", 43, 99, "bybit", {"n": 3}),
    ]


@pytest.mark.parametrize("bad", [
    '{"channel":"t","type":"batch","epoch":"e","offsets":[1,3],"ts":1,"data":[1,2]}',
    '{"channel":"t","type":"batch","epoch":"e","offsets":[1],"ts":1,"data":[1]}',
    '{"channel":"t","type":"batch","epoch":"e","offsets":[1,true],"ts":1,"data":[1]}',
    '{"channel":"t","type":"batch","epoch":"e","offsets":[1,1],"ts":1,"data":{}}',
    '{"channel":"t","type":"batch","offsets":[1,1],"ts":1,"data":[1]}',
])
def test_malformed_batches_are_refused(bad: str) -> None:
    with pytest.raises(FrameError, match="malformed batch"):
        parse_frame(bad)


# -- conflation in the tracker and the subscriptions ------------------------------------------


def reply(channels: dict[str, int], recovered: dict[str, bool] | None = None) -> Reply:
    body: dict[str, Any] = {"op": "subscribe", "args": list(channels), "rejected": None,
                            "positions": {c: {"epoch": "e1", "offset": o}
                                          for c, o in channels.items()}}
    if recovered is not None:
        body["recovered"] = recovered
    return Reply("subscribe", 1, body)


def test_the_snapshot_after_a_subscribe_reply_is_delivered() -> None:
    tracker = ChannelTracker()
    tracker.on_subscribed(SubscribeReply.from_raw(reply({CH: 17}).body))
    state = snap(17, [], [], epoch="e1")
    assert tracker.on_message(state) == [state]  # the reply's position: not a duplicate
    assert tracker.on_message(state) == []  # but only once
    after = delta(18, [], [], epoch="e1")
    assert tracker.on_message(after) == [after]
    assert tracker.duplicates == 1


def test_conflated_snapshots_are_no_gap_but_other_holes_are() -> None:
    tracker = ChannelTracker()
    tracker.on_subscribed(SubscribeReply.from_raw(reply({CH: 17, "trade:X": 3}).body))
    tracker.conflated.update({CH, "trade:X"})
    state = snap(30, [], [], epoch="e1")
    assert tracker.on_message(state) == [state]
    trade = Message("trade:X", "update", "e1", 9, 0, "", {})
    out = tracker.on_message(trade)
    assert isinstance(out[0], Gap) and out[1] == trade  # events are never skipped by design


def test_intervals_are_kept_across_reconnects() -> None:
    subs = Subscriptions(Inbox(10))
    subs.on_subscribed(reply({"trade:BTCUSDT": 1, CH: 2}), interval_ms=250)
    subs.on_subscribed(reply({"ticker:BTCUSDT": 3}))
    frames = list(subs.resubscribe_frames())
    assert {tuple(f["args"]): f.get("interval_ms") for f in frames} == {
        (CH, "trade:BTCUSDT"): 250, ("ticker:BTCUSDT",): None}
    assert subs.tracker.conflated == {CH, "trade:BTCUSDT"}
    subs.on_subscribed(reply({CH: 2}))  # subscribed again without: live again
    assert subs.tracker.conflated == {"trade:BTCUSDT"} and CH not in subs.intervals
    subs.forget("trade:BTCUSDT")
    assert not subs.intervals and not subs.tracker.conflated


@pytest.mark.parametrize("bad", [49, 60_001, True, 250.0, "250", 0])
def test_interval_range_is_checked_before_sending(bad: object) -> None:
    with pytest.raises(ValueError, match="interval_ms must be a whole number"):
        check_interval(bad)
    assert check_interval(50) == 50 and check_interval(60_000) == 60_000
