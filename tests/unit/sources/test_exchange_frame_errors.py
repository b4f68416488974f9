"""A frame one topic's state cannot read (any of FRAME_ERRORS, overflow included) is counted
on the connection and dropped for that topic alone: the other topics of a shared stream
still publish theirs (sources/exchange/subs.py ``apply_guarded``)."""

from __future__ import annotations

import decimal
import logging
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any

import pytest

from cryptowire.core.channels import Channel
from cryptowire.sources.exchange.codec import FRAME_ERRORS, BaseState, Data, Pub
from cryptowire.sources.exchange.subs import TopicSub, apply_guarded


class Conn:
    name = "okx okx public#1"
    errors = 0


class Echo(BaseState):
    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterable[Pub]:
        return [Pub(channel=name, data=data.frame, type="update") for name in channels]


class Raises(BaseState):
    def __init__(self, error: Exception) -> None:
        self.error = error

    def apply(self, data: Data, channels: Mapping[str, Channel]) -> Iterable[Pub]:
        raise self.error


def sub(state: BaseState, channel: str) -> TopicSub:
    nothing: Any = None
    topic: Any = SimpleNamespace(key="liquidation-orders:SWAP")
    return TopicSub(market=nothing, topic=topic, state=state, channels={channel: nothing})


@pytest.mark.parametrize("error", [decimal.Overflow(), OverflowError("time_t"), KeyError("px"),
                                   IndexError("data[0]"), ValueError("bad"), TypeError("x")])
def test_a_bad_frame_costs_only_its_own_topic(error: Exception,
                                              caplog: pytest.LogCaptureFixture) -> None:
    assert isinstance(error, FRAME_ERRORS)
    conn, item = Conn(), Data("liquidation-orders:SWAP", {"n": 1})
    bad = sub(Raises(error), "liquidation:ETHUSDT@okx")
    good = sub(Echo(), "liquidation:BTCUSDT@okx")
    with caplog.at_level(logging.WARNING):
        assert apply_guarded(bad, item, conn, logging.getLogger("t")) == []
    assert conn.errors == 1 and "dropped a frame" in caplog.text
    pubs = apply_guarded(good, item, conn, logging.getLogger("t"))
    assert [(p.channel, p.data) for p in pubs] == [("liquidation:BTCUSDT@okx", {"n": 1})]
    assert conn.errors == 1
