"""The handover of a socket rotation (sources/exchange/rotation.py ``Handover``), pure: which
frames of the old socket and of its replacement reach the topic states, so the stream each
state sees is the venue's, each update once, whichever socket is ahead."""

from __future__ import annotations

import pytest

from cryptowire.sources.exchange.codec import Data
from cryptowire.sources.exchange.pacing import Pacer
from cryptowire.sources.exchange.rotation import Handover
from cryptowire.sources.exchange.venue import Limits


class Feed:
    """Plays frames through a handover the way ExchangeSource.data does; records what was
    delivered (the seq of each)."""

    def __init__(self, keys: tuple[str, ...] = ("book",), applied: int | None = 5) -> None:
        self.applied: dict[str, int] = {} if applied is None else dict.fromkeys(keys, applied)
        self.handover = Handover(keys, self.applied)
        self.delivered: list[tuple[str, int | None]] = []

    def frame(self, new: bool, seq: int | None, prev: int | None = None,
              stream: str = "book") -> bool:
        item = Data(stream, {}, None, seq=seq, prev=prev)
        if not self.handover.accept(item, new):
            return False
        if seq is not None:
            self.applied[stream] = seq
        self.delivered.append(("new" if new else "old", seq))
        return True


def seqs(feed: Feed) -> list[int | None]:
    return [seq for _, seq in feed.delivered]


def test_the_replacement_ahead_waits_for_the_old_socket_to_catch_up() -> None:
    feed = Feed()  # 5 delivered from the old socket
    assert not feed.frame(True, 8)  # the replacement's snapshot at 8: an anchor only
    assert not feed.frame(True, 9)  # ahead: 6..8 not delivered yet
    assert not feed.handover.complete
    for seq in (6, 7, 8, 9):
        assert feed.frame(False, seq)  # the old socket is the authority meanwhile
    assert feed.frame(True, 10)  # follows 9: handed over
    assert feed.handover.complete
    assert not feed.frame(False, 10) and not feed.frame(False, 11)  # old: dropped from now on
    assert feed.frame(True, 11)
    assert seqs(feed) == [6, 7, 8, 9, 10, 11]
    assert [src for src, _ in feed.delivered] == ["old"] * 4 + ["new"] * 2


def test_the_replacement_behind_catches_up_then_takes_over() -> None:
    feed = Feed(applied=5)
    assert feed.frame(False, 6) and feed.frame(False, 7)
    assert not feed.frame(True, 4)  # its snapshot is older than what was delivered
    assert not feed.frame(True, 5) and not feed.frame(True, 6)
    assert not feed.handover.complete
    assert not feed.frame(True, 7)  # caught up exactly: the next one follows
    assert feed.handover.complete
    assert not feed.frame(False, 8)
    assert feed.frame(True, 8)
    assert seqs(feed) == [6, 7, 8]


def test_the_venues_own_predecessor_field_decides_contiguity() -> None:
    feed = Feed(applied=100)  # Binance futures: u, with pu the previous frame's u
    assert not feed.frame(True, 130, prev=120)  # a first diff that does not follow 100
    assert feed.frame(False, 120, prev=100)
    assert not feed.frame(True, 120, prev=110)  # already delivered
    assert feed.frame(True, 135, prev=120) and feed.handover.complete
    assert not feed.frame(False, 130, prev=120)  # the old socket's frames are duplicates now
    assert seqs(feed) == [120, 135]


def test_a_frame_overlapping_what_was_delivered_follows_it() -> None:
    feed = Feed(applied=100)  # Binance spot: U..u, prev = U - 1
    assert feed.frame(True, 110, prev=95)  # 96..110 covers 101: applied (levels are absolute)
    assert feed.handover.complete and seqs(feed) == [110]


def test_a_stream_without_a_sequence_switches_at_the_replacements_first_frame() -> None:
    feed = Feed(keys=("ticker",), applied=None)
    assert feed.frame(False, None, stream="ticker")
    assert feed.frame(True, None, stream="ticker") and feed.handover.complete
    assert not feed.frame(False, None, stream="ticker")
    assert feed.frame(True, None, stream="ticker")
    assert feed.delivered == [("old", None), ("new", None), ("new", None)]


def test_nothing_delivered_yet_lets_the_replacement_start_the_stream() -> None:
    feed = Feed(applied=None)
    assert feed.frame(True, 3)
    assert feed.handover.complete
    assert not feed.frame(False, 3) and feed.frame(True, 4)


def test_streams_added_during_the_rotation_and_restarts() -> None:
    feed = Feed(keys=("a",), applied=None)
    assert feed.frame(False, None, stream="x")  # not part of the rotation: old only
    assert not feed.frame(True, None, stream="x")
    feed.handover.track("x")
    assert not feed.handover.complete
    feed.handover.forget("x")
    feed.applied["a"] = 9
    feed.handover.restart("a")  # a broken state re-syncs on the replacement
    assert feed.handover.complete and "a" not in feed.applied
    assert not feed.frame(False, 10, stream="a")
    assert feed.frame(True, 4, stream="a")  # its fresh snapshot, whatever its sequence


def test_rotation_timing_of_a_declaration() -> None:
    assert Limits().rotate_after_s is None
    assert Limits(max_lifetime_s=86400.0).rotate_after_s == 86400.0 - 600.0
    assert Limits(max_lifetime_s=100.0).rotate_after_s == 90.0  # a tenth by default
    assert Limits(max_lifetime_s=4.0, rotation_margin_s=3.0).rotate_after_s == 1.0
    with pytest.raises(ValueError, match="must be above 0 and below max_lifetime_s"):
        Limits(max_lifetime_s=2.0, rotation_margin_s=2.0)  # would rotate for ever


async def test_the_request_budget_counts_each_socket_afresh() -> None:
    pacer = Pacer(Limits(requests_per_connection=2))
    assert pacer.left() == 2
    await pacer.wait()
    await pacer.wait()
    assert pacer.left() == 0
    pacer.reset()
    assert pacer.left() == 2
    assert Pacer(Limits()).left() is None
