"""Positions, dedupe and gap detection of the client (sans-I/O)."""

from __future__ import annotations

from typing import Any

from cryptowire.client import Gap, Message, SubscribeReply
from cryptowire.client._tracker import ChannelTracker


def msg(offset: int, epoch: str = "e1", channel: str = "app:x") -> Message:
    return Message(channel, "update", epoch, offset, 0, "app", {"n": offset})


def reply(positions: dict[str, tuple[str, int]],
          recovered: dict[str, bool] | None = None) -> SubscribeReply:
    raw: dict[str, Any] = {
        "op": "subscribe", "args": list(positions), "rejected": None,
        "positions": {ch: {"epoch": e, "offset": o} for ch, (e, o) in positions.items()},
    }
    if recovered:
        raw["recovered"] = recovered
    return SubscribeReply.from_raw(raw)


def test_first_subscribe_then_contiguous_messages() -> None:
    t = ChannelTracker()
    assert t.on_subscribed(reply({"app:x": ("e1", 5)})) == []
    assert t.recover_args(["app:x", "app:y"]) == {"app:x": {"epoch": "e1", "offset": 5}}
    assert t.on_message(msg(6)) == [msg(6)]
    assert t.on_message(msg(7)) == [msg(7)]
    assert t.position("app:x") == ("e1", 7)


def test_duplicates_are_dropped() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    for n in (1, 2, 3):
        t.on_message(msg(n))
    assert t.on_message(msg(2)) == []
    assert t.on_message(msg(3)) == []
    assert t.position("app:x") == ("e1", 3)
    assert t.duplicates == 2
    assert t.on_message(msg(4)) == [msg(4)]


def test_skipped_offsets_are_a_gap() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    t.on_message(msg(1))
    out = t.on_message(msg(5))
    assert isinstance(out[0], Gap) and out[1] == msg(5)
    assert "3 message(s) missing" in out[0].reason and "2..4" in out[0].reason


def test_epoch_change_in_stream_is_a_gap() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    t.on_message(msg(1))
    out = t.on_message(msg(1, epoch="e2"))
    assert isinstance(out[0], Gap) and "e1 to e2" in out[0].reason
    assert t.position("app:x") == ("e2", 1)


def test_recovered_keeps_position_and_dedupes_overlap() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    t.on_message(msg(1))
    t.on_message(msg(2))
    # reconnect: the hub is at 9 and recovers everything after our 2
    assert t.on_subscribed(reply({"app:x": ("e1", 9)}, {"app:x": True})) == []
    assert t.position("app:x") == ("e1", 2)
    assert t.on_message(msg(2)) == []
    assert [m.offset for n in range(3, 10) for m in t.on_message(msg(n))] == list(range(3, 10))


def test_refused_recovery_is_one_gap_then_live() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    t.on_message(msg(7))
    gaps = t.on_subscribed(reply({"app:x": ("e2", 3)}, {"app:x": False}))
    assert len(gaps) == 1 and gaps[0].channel == "app:x"
    assert "e1 -> e2" in gaps[0].reason and "after offset 7" in gaps[0].reason
    assert t.on_message(msg(4, epoch="e2")) == [msg(4, epoch="e2")]  # no second gap


def test_refused_recovery_same_epoch_says_history_window() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    t.on_message(msg(1))
    gaps = t.on_subscribed(reply({"app:x": ("e1", 5000)}, {"app:x": False}))
    assert "no longer covers offset 1" in gaps[0].reason


def test_forget_and_positionless_messages() -> None:
    t = ChannelTracker()
    t.on_subscribed(reply({"app:x": ("e1", 0)}))
    t.forget("app:x")
    assert t.recover_args(["app:x"]) == {}
    envelope = Message("mudrex.futures.ticker.BTCUSDT", "update", "", -1, 0, "mudrex", {})
    assert t.on_message(envelope) == [envelope]
    assert t.on_message(envelope) == [envelope]  # never deduplicated: no position
