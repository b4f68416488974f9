"""Conflation groups (core/conflation.py) through the hub, with a fake transport at the one
seam: one encode per (channel, interval, dialect) per interval, every event of an interval
in one batch, the state at the end of an interval only when it changed, timers that go
with their group, the fan-out's bound."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from tests.unit.core.test_hub import FakeTransport, Gated, tick
from tests.waiting import eventually

from cryptowire.bus.memory import MemoryBroker
from cryptowire.closecodes import CLOSE_SLOW_CONSUMER
from cryptowire.core.channels import ChannelGrammar
from cryptowire.core.demand import Demand
from cryptowire.core.hub import Hub, SubscribeResult
from cryptowire.core.session import Principal, Session
from cryptowire.events import Event, Publication
from cryptowire.settings import HistorySettings

GRAMMAR = ChannelGrammar()
BOOK = "book:50:BTCUSDT"


class BatchEncoder:
    """Frames a publication as one JSON line ``{"o": offset, "t": type, "d": data}`` and a
    batch as ``{"b": [from, to], "d": [...]}``; counts both."""

    def __init__(self, name: str = "batch") -> None:
        self.name = name
        self.calls = 0
        self.batches = 0

    def frame_publication(self, pub: Publication) -> bytes | None:
        self.calls += 1
        return b'{"o":%d,"t":"%s","d":%s}\n' % (pub.offset, pub.type.encode(), pub.data_json)

    def frame_batch(self, pubs: list[Publication]) -> bytes | None:
        self.batches += 1
        data = b",".join(p.data_json for p in pubs)
        return b'{"b":[%d,%d],"d":[%s]}\n' % (pubs[0].offset, pubs[-1].offset, data)


class Env:
    def __init__(self, hub: Hub, broker: MemoryBroker) -> None:
        self.hub = hub
        self.broker = broker
        self.closes: dict[int, int] = {}

    def session(self, encoder: Any) -> Session:
        transport = FakeTransport()

        def close(session: Session, code: int, reason: str) -> None:
            self.closes[session.id] = code
            transport.closing = True

        sess = Session(transport, encoder, close, principal=Principal())
        self.hub.register(sess)
        return sess

    def publish(self, channel: str, data: Any, type_: str = "update") -> Publication:
        return self.broker.publish_now(Event(channel=channel, data=data, type=type_))

    async def sub(self, session: Session, *names: str, interval_ms: int | None = 50,
                  recover: dict[str, tuple[str, int]] | None = None) -> SubscribeResult:
        return await self.hub.subscribe(session, [GRAMMAR.parse(n) for n in names], recover,
                                        interval_ms=interval_ms)


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    broker = MemoryBroker(HistorySettings(size=100))
    source = Gated()
    source.gate.set()
    demand = Demand(lambda channel: source, linger_s=0.01)
    hub = Hub(broker, demand, outbound_limit=64 * 1024)
    await broker.start(hub.deliver)
    yield Env(hub, broker)
    await demand.close()
    await broker.stop()


def lines(session: Session) -> list[Any]:
    assert isinstance(session.transport, FakeTransport)
    return [orjson.loads(line) for chunk in session.transport.writes
            for line in chunk.splitlines() if line]


async def frames_of(session: Session, count: int) -> list[Any]:
    await eventually(lambda: len(lines(session)) >= count, what=f"{count} frames")
    return lines(session)


def book_data(bids: list[list[str]], asks: list[list[str]]) -> dict[str, Any]:
    return {"symbol": "BTCUSDT", "bids": bids, "asks": asks}


async def test_event_channel_one_batch_per_interval_encoded_once_per_dialect(env: Env) -> None:
    a, b = BatchEncoder("a"), BatchEncoder("b")
    sessions = [env.session(a) for _ in range(30)] + [env.session(b) for _ in range(20)]
    for s in sessions:
        await env.sub(s, "app:x")
    for i in range(5):
        env.publish("app:x", {"i": i})
    for s in sessions:
        assert await frames_of(s, 1) == [{"b": [1, 5], "d": [{"i": i} for i in range(5)]}]
    assert (a.batches, b.batches, a.calls, b.calls) == (1, 1, 0, 0)
    assert env.hub.conflation.encodes == 2 and env.hub.conflation.frames == 50
    # The bytes are shared by the members of a dialect.
    writes = [s.transport.writes[0] for s in sessions[:30]]  # type: ignore[attr-defined]
    assert all(w is writes[0] for w in writes)
    # Nothing new: the group's timer is not re-armed (no empty frames, no idle wake-ups).
    [group] = env.hub.conflation.channels["app:x"]
    assert group.timer is None
    env.publish("app:x", {"i": 5})
    assert group.timer is not None
    assert (await frames_of(sessions[0], 2))[1] == {"b": [6, 6], "d": [{"i": 5}]}


async def test_a_member_that_joined_mid_interval_gets_the_rest_only(env: Env) -> None:
    enc = BatchEncoder()
    early, late = env.session(enc), env.session(enc)
    await env.sub(early, "app:x")
    env.publish("app:x", {"i": 1})
    env.publish("app:x", {"i": 2})
    # ``late`` starts at the top (offset 2): only what follows is its.
    await env.sub(late, "app:x")
    env.publish("app:x", {"i": 3})
    assert await frames_of(early, 1) == [{"b": [1, 3], "d": [{"i": 1}, {"i": 2}, {"i": 3}]}]
    assert await frames_of(late, 1) == [{"b": [3, 3], "d": [{"i": 3}]}]


async def test_a_recovered_backlog_comes_as_one_batch(env: Env) -> None:
    enc = BatchEncoder()
    first = env.publish("app:x", {"i": 1})
    env.publish("app:x", {"i": 2})
    s = env.session(enc)
    result = await env.sub(s, "app:x", recover={"app:x": (first.epoch, 0)})
    assert result.recovered == {"app:x": True}
    await tick()
    assert lines(s) == [{"b": [1, 2], "d": [{"i": 1}, {"i": 2}]}]


async def test_state_channel_snapshot_at_once_then_once_per_interval_if_changed(
        env: Env) -> None:
    enc = BatchEncoder()
    env.publish("ticker:BTCUSDT", {"price": "1"}, "snapshot")
    sessions = [env.session(enc) for _ in range(10)]
    for s in sessions:
        await env.sub(s, "ticker:BTCUSDT")
    await tick()
    for s in sessions:  # the latest value at once (PROTOCOLS.md 4.2)
        assert lines(s) == [{"o": 1, "t": "snapshot", "d": {"price": "1"}}]
    enc.calls = 0
    for price in ("2", "3", "4"):
        env.publish("ticker:BTCUSDT", {"price": price})
    for s in sessions:
        assert (await frames_of(s, 2))[1] == {"o": 4, "t": "snapshot", "d": {"price": "4"}}
    assert enc.calls == 1  # one encode for the group, whatever its size
    [group] = env.hub.conflation.channels["ticker:BTCUSDT"]
    assert group.timer is None


async def test_book_conflated_snapshot_is_the_book_at_the_end_of_the_interval(
        env: Env) -> None:
    enc = BatchEncoder()
    env.publish(BOOK, book_data([["100", "1"]], [["101", "1"]]), "snapshot")
    s = env.session(enc)
    await env.sub(s, BOOK, interval_ms=100)
    env.publish(BOOK, book_data([["100", "0"], ["99", "2"]], []), "delta")
    env.publish(BOOK, book_data([], [["101", "5"], ["102", "1"]]), "delta")
    got = await frames_of(s, 2)
    assert got[0] == {"o": 1, "t": "snapshot", "d": book_data([["100", "1"]], [["101", "1"]])}
    assert got[1] == {"o": 3, "t": "snapshot",
                      "d": book_data([["99", "2"]], [["101", "5"], ["102", "1"]])}
    # A gap: the members learn the book is unknown (once), then the next snapshot.
    env.publish(BOOK, {"reason": "resync"}, "gap")
    assert (await frames_of(s, 3))[2] == {"o": 4, "t": "gap", "d": {"reason": "resync"}}
    env.publish(BOOK, book_data([["90", "1"]], [["91", "1"]]), "snapshot")
    assert (await frames_of(s, 4))[3] == {"o": 5, "t": "snapshot",
                                          "d": book_data([["90", "1"]], [["91", "1"]])}


async def test_groups_and_timers_go_with_their_last_member(env: Env) -> None:
    enc = BatchEncoder()
    a, b = env.session(enc), env.session(enc)
    await env.sub(a, "app:x")
    await env.sub(b, "app:x", interval_ms=60_000)
    assert env.hub.conflation.groups() == 2 and env.hub.subscribers("app:x") == 2
    env.publish("app:x", {"i": 1})
    slow = env.hub.conflation.channels["app:x"][1]
    timer = slow.timer
    assert timer is not None
    await env.hub.unsubscribe(b, ["app:x"])
    assert timer.cancelled() and env.hub.conflation.groups() == 1
    await env.hub.unregister(a)
    assert env.hub.conflation.groups() == 0 and env.hub.conflation.sessions() == 0
    assert "app:x" not in env.hub.conflation.channels


async def test_one_channel_conflated_another_live_on_one_session(env: Env) -> None:
    enc = BatchEncoder()
    s = env.session(enc)
    await env.sub(s, "app:slow")
    await env.sub(s, "app:fast", interval_ms=None)
    env.publish("app:slow", {"i": 1})
    env.publish("app:fast", {"i": 2})
    env.publish("app:slow", {"i": 3})
    await tick()
    assert lines(s) == [{"o": 1, "t": "update", "d": {"i": 2}}]  # live at once
    assert (await frames_of(s, 2))[1] == {"b": [1, 2], "d": [{"i": 1}, {"i": 3}]}


async def test_an_interval_bigger_than_a_session_may_hold_closes_it_4008(env: Env) -> None:
    enc = BatchEncoder()
    s, live = env.session(enc), env.session(enc)
    await env.sub(s, "app:x", interval_ms=60_000)
    await env.sub(live, "app:x", interval_ms=None)
    for _ in range(5):  # 5 x 20 KB > the 64 KB bound: the batch goes out at once, too big
        env.publish("app:x", {"pad": "x" * 20_000})
    assert env.closes == {s.id: CLOSE_SLOW_CONSUMER}
    assert env.hub.stats.slow_consumer_closes == 1
    [group] = env.hub.conflation.channels["app:x"]
    assert [p.offset for p in group.events] == [5]  # nothing held past the bound
    assert group.size <= env.hub.outbound_limit
