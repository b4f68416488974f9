"""History never has a hole, and recovery never claims to be complete across one (issue 10,
item 5): the offset is taken only once the data is encoded, and ``since`` checks that what it
returns is exactly ``offset+1 .. top``."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from cryptowire.core.history import ChannelHistory, HistoryStore
from cryptowire.events import Event

T0 = 1_700_000_000_000


def ev(data: Any, channel: str = "app:x") -> Event:
    return Event(channel=channel, data=data, ts_received=T0)


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth - 1):
        value = [value]
    return value


UNENCODABLE = [nested(300), {"s": "\ud800"}, {"n": 2**70}]


@pytest.mark.parametrize("bad", UNENCODABLE)
def test_an_event_that_cannot_be_encoded_takes_no_offset(bad: Any) -> None:
    h = ChannelHistory(10, 60_000, clock=lambda: T0)
    first = h.append(ev({"n": 1}))
    with pytest.raises(orjson.JSONEncodeError):
        h.append(ev(bad))
    assert h.top == 1 and len(h) == 1
    third = h.append(ev({"n": 3}))
    assert third.offset == 2
    assert h.since(h.epoch, 1) == [third]
    assert h.since(h.epoch, 0) == [first, third]


def test_the_store_keeps_offsets_contiguous_after_a_refused_event() -> None:
    s = HistoryStore(10, 60, 100, clock=lambda: T0)
    one = s.append(ev({"n": 1}))
    with pytest.raises(orjson.JSONEncodeError):
        s.append(ev(nested(300)))
    two = s.append(ev({"n": 2}))
    assert two.offset == 2 and s.position("app:x") == (one.epoch, 2)
    assert s.since("app:x", one.epoch, 0) == [one, two]


def test_since_never_spans_a_missing_offset() -> None:
    h = ChannelHistory(10, 60_000, clock=lambda: T0)
    h.append(ev({"n": 1}))
    h.top += 1  # offset 2 was taken and never stored (what a failed encode used to do)
    h.append(ev({"n": 3}))
    assert h.top == 3
    assert h.since(h.epoch, 1) is None  # 2 is missing: a gap, not recovered=true
    assert h.since(h.epoch, 0) is None
    assert h.since(h.epoch, 3) == []  # up to date is still up to date


def test_since_never_returns_less_than_up_to_the_top() -> None:
    h = ChannelHistory(10, 60_000, clock=lambda: T0)
    h.append(ev({"n": 1}))
    h.append(ev({"n": 2}))
    h.top += 1  # the last offset was taken and never stored
    assert h.since(h.epoch, 1) is None
