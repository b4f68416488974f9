"""The hub's fan-out, with a fake transport at the one seam (``Transport``): encode once per
dialect, one write per session per tick, the byte bound, and subscribe/recover ordering."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from tests.waiting import eventually

from cryptowire.bus.memory import MemoryBroker
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.core.demand import Demand
from cryptowire.core.hub import Hub, SubscribeResult
from cryptowire.core.session import Principal, Session
from cryptowire.events import Event, Publication
from cryptowire.settings import HistorySettings

GRAMMAR = ChannelGrammar()


class FakeTransport:
    """Records writes; ``buffered`` is what the kernel would not take yet."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.buffered = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.writes.append(data)

    def get_write_buffer_size(self) -> int:
        return self.buffered

    def is_closing(self) -> bool:
        return self.closing


class CountingEncoder:
    """A dialect that frames ``<name>|<offset>|<data>`` and counts its calls."""

    def __init__(self, name: str = "count") -> None:
        self.name = name
        self.calls = 0

    def frame_publication(self, pub: Publication) -> bytes | None:
        self.calls += 1
        return f"{self.name}|{pub.offset}|".encode() + pub.data_json + b";"


class SilentEncoder(CountingEncoder):
    def frame_publication(self, pub: Publication) -> bytes | None:
        self.calls += 1
        return None


class Gated:
    """An upstream source whose subscribe waits for ``gate``."""

    name = "gated"

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.unsubscribed: list[str] = []

    async def subscribe(self, channel: Channel) -> None:
        await self.gate.wait()

    async def unsubscribe(self, channel: Channel) -> None:
        self.unsubscribed.append(channel.name)


class Env:
    def __init__(self, hub: Hub, broker: MemoryBroker, source: Gated) -> None:
        self.hub = hub
        self.broker = broker
        self.source = source
        self.closes: dict[int, tuple[int, str]] = {}

    def session(self, encoder: Any, transport: FakeTransport | None = None) -> Session:
        transport = transport or FakeTransport()

        def close(session: Session, code: int, reason: str) -> None:
            self.closes[session.id] = (code, reason)
            transport.closing = True

        sess = Session(transport, encoder, close, principal=Principal())
        self.hub.register(sess)
        return sess

    def publish(self, channel: str, data: Any) -> Publication:
        return self.broker.publish_now(Event(channel=channel, data=data))


@pytest.fixture
async def env() -> AsyncIterator[Env]:
    broker = MemoryBroker(HistorySettings(size=100))
    source = Gated()
    demand = Demand(lambda channel: source, linger_s=0.01)
    hub = Hub(broker, demand, outbound_limit=64 * 1024)
    await broker.start(hub.deliver)
    yield Env(hub, broker, source)
    await demand.close()


def transport(session: Session) -> FakeTransport:
    assert isinstance(session.transport, FakeTransport)
    return session.transport


async def tick() -> None:
    """Let the end-of-tick flush run."""
    for _ in range(3):
        await asyncio.sleep(0)


async def sub(env: Env, session: Session, *names: str,
              recover: dict[str, tuple[str, int]] | None = None) -> SubscribeResult:
    return await env.hub.subscribe(session, [GRAMMAR.parse(n) for n in names], recover)


def frames(session: Session, encoder_name: str = "count") -> list[tuple[int, Any]]:
    """The publications a session was written, as ``(offset, data)``."""
    out = []
    for chunk in transport(session).writes:
        for part in chunk.split(b";"):
            if part:
                name, offset, data = part.split(b"|", 2)
                assert name.decode() == encoder_name
                out.append((int(offset), orjson.loads(data)))
    return out


# -- encode once, write once ---------------------------------------------------------------


async def test_each_publication_is_encoded_once_for_100_sessions(env: Env) -> None:
    encoder = CountingEncoder()
    sessions = [env.session(encoder) for _ in range(100)]
    for s in sessions:
        await sub(env, s, "app:x")
    encoder.calls = 0
    env.publish("app:x", {"n": 1})
    env.publish("app:x", {"n": 2})
    assert encoder.calls == 2
    await tick()
    for s in sessions:
        assert frames(s) == [(1, {"n": 1}), (2, {"n": 2})]
    assert env.hub.stats.messages_out == 200
    assert env.hub.stats.publications == 2


async def test_encoded_once_per_dialect(env: Env) -> None:
    a, b = CountingEncoder("a"), CountingEncoder("b")
    sa = [env.session(a) for _ in range(50)]
    sb = [env.session(b) for _ in range(50)]
    for s in sa + sb:
        await sub(env, s, "app:x")
    a.calls = b.calls = 0
    env.publish("app:x", {"n": 1})
    assert (a.calls, b.calls) == (1, 1)
    await tick()
    assert frames(sa[0], "a") == [(1, {"n": 1})]
    assert frames(sb[-1], "b") == [(1, {"n": 1})]
    # The bytes are shared, not copied per session.
    assert transport(sa[0]).writes[0] is transport(sa[1]).writes[0]


async def test_a_dialect_may_skip_a_publication(env: Env) -> None:
    silent = SilentEncoder()
    s = env.session(silent)
    await sub(env, s, "app:x")
    env.publish("app:x", 1)
    await tick()
    assert transport(s).writes == []


async def test_publications_of_one_tick_are_one_write_per_session(env: Env) -> None:
    encoder = CountingEncoder()
    sessions = [env.session(encoder) for _ in range(10)]
    for s in sessions:
        await sub(env, s, "app:x", "app:y")
    for i in range(5):
        env.publish("app:x" if i % 2 else "app:y", {"i": i})
    for s in sessions:
        assert transport(s).writes == []  # nothing before the end of the tick
    await tick()
    for s in sessions:
        assert len(transport(s).writes) == 1
        assert [d["i"] for _, d in frames(s)] == [0, 1, 2, 3, 4]
    assert env.hub.stats.writes == 10
    # The next tick is a new write.
    env.publish("app:x", {"i": 5})
    await tick()
    assert all(len(transport(s).writes) == 2 for s in sessions)


async def test_only_subscribers_of_the_channel_get_it(env: Env) -> None:
    encoder = CountingEncoder()
    a, b = env.session(encoder), env.session(encoder)
    await sub(env, a, "app:x")
    await sub(env, b, "app:y")
    env.publish("app:x", "for a")
    await tick()
    assert frames(a) == [(1, "for a")]
    assert transport(b).writes == []


# -- the byte bound ----------------------------------------------------------------------------


async def test_session_over_the_byte_bound_alone_is_closed_4008(env: Env) -> None:
    encoder = CountingEncoder()
    slow_t = FakeTransport()
    slow = env.session(encoder, slow_t)
    others = [env.session(encoder) for _ in range(5)]
    for s in [slow, *others]:
        await sub(env, s, "app:x")
    slow_t.buffered = env.hub.outbound_limit - 10  # the kernel is not taking its bytes
    env.publish("app:x", {"pad": "x" * 100})
    await tick()
    assert env.closes == {slow.id: (4008, "Slow consumer: outbound buffer full")}
    assert slow.closed and slow_t.writes == []
    assert env.hub.stats.slow_consumer_closes == 1
    for s in others:
        assert len(frames(s)) == 1 and not s.closed
    # Later publications go to the others only, and the slow one is not closed twice.
    env.publish("app:x", {"n": 2})
    await tick()
    assert slow_t.writes == []
    assert all(len(frames(s)) == 2 for s in others)
    assert env.hub.stats.slow_consumer_closes == 1


async def test_pending_bytes_over_the_bound_within_one_tick_close_4008(env: Env) -> None:
    env.hub.outbound_limit = 1_000
    encoder = CountingEncoder()
    busy = env.session(encoder)  # subscribed to two channels: twice the bytes
    calm = env.session(encoder)
    await sub(env, busy, "app:x", "app:y")
    await sub(env, calm, "app:x")
    for _ in range(6):  # ~110 bytes a frame: 12 for busy (over 1,000), 6 for calm
        env.publish("app:x", "x" * 100)
        env.publish("app:y", "y" * 100)
    await tick()
    assert env.closes == {busy.id: (4008, "Slow consumer: outbound buffer full")}
    assert transport(busy).writes == []  # dropped, not written
    assert env.hub.stats.dropped > 0
    assert len(frames(calm)) == 6


async def test_over_the_node_bound_the_largest_buffers_are_closed_first(env: Env) -> None:
    env.hub.max_outbound = 10_000
    encoder = CountingEncoder()
    sessions = [env.session(encoder) for _ in range(4)]
    for s, held in zip(sessions, (1_000, 6_000, 4_000, 500), strict=True):
        await sub(env, s, "app:x")
        transport(s).buffered = held  # what each one's kernel would not take
    env.publish("app:x", "x")
    await tick()
    # 11,500 bytes held (+ the frames): closing the largest (6,000) is enough.
    assert env.closes == {sessions[1].id: (4008, "Slow consumer: outbound buffer full")}
    assert env.hub.stats.outbound_budget_closes == env.hub.stats.slow_consumer_closes == 1
    assert env.hub.outbound_bytes == 5_500
    assert all(len(frames(s)) == 1 for s in sessions if s is not sessions[1])


async def test_a_drained_buffer_is_not_held_against_the_node_bound(env: Env) -> None:
    env.hub.max_outbound = 10_000
    encoder = CountingEncoder()
    a, b = env.session(encoder), env.session(encoder)
    await sub(env, a, "app:a")
    await sub(env, b, "app:b")
    transport(a).buffered = 6_000
    env.publish("app:a", "1")
    await tick()
    assert env.hub.outbound_bytes > 6_000  # noted at a's write
    transport(a).buffered = 0  # drained since, unseen by the hub
    transport(b).buffered = 6_000
    env.publish("app:b", "2")
    await tick()
    # The noted total passed the bound; the recount found 6,000 and closed nobody.
    assert env.closes == {}
    assert env.hub.outbound_bytes == 6_000
    await env.hub.unregister(b)
    assert env.hub.outbound_bytes == 0


async def test_close_flushes_pending_frames_first(env: Env) -> None:
    encoder = CountingEncoder()
    s = env.session(encoder)
    await sub(env, s, "app:x")
    env.publish("app:x", "last words")
    env.hub.fanout.close(s, 1001, "bye")
    assert frames(s) == [(1, "last words")]
    assert env.closes[s.id] == (1001, "bye")
    env.publish("app:x", "after")
    await tick()
    assert len(transport(s).writes) == 1


async def test_close_all(env: Env) -> None:
    sessions = [env.session(CountingEncoder()) for _ in range(3)]
    env.hub.close_all(1001, "Server shutting down")
    assert set(env.closes.values()) == {(1001, "Server shutting down")}
    assert len(env.closes) == 3
    for s in sessions:
        assert s.closed


# -- subscribe, recover, unsubscribe -------------------------------------------------------


async def test_reply_is_queued_before_any_data(env: Env) -> None:
    encoder = CountingEncoder()
    s = env.session(encoder)
    for i in range(3):
        env.publish("app:x", i)
    order: list[str] = []

    def on_accepted(result: SubscribeResult) -> None:
        order.append(f"reply:{result.accepted}:{result.positions['app:x'][1]}")
        env.hub.fanout.send(s, b"REPLY;")

    epoch, _ = await env.broker.position("app:x")
    await env.hub.subscribe(s, [GRAMMAR.parse("app:x")], {"app:x": (epoch, 1)},
                            on_accepted=on_accepted)
    await tick()
    assert order == ["reply:['app:x']:1"]  # the stream starts after offset 1
    data = b"".join(transport(s).writes)
    assert data.startswith(b"REPLY;")
    assert data[len(b"REPLY;"):].startswith(b"count|2|")


async def test_recover_sends_missed_then_live_exactly_once(env: Env) -> None:
    encoder = CountingEncoder()
    s = env.session(encoder)
    pubs = [env.publish("app:x", i) for i in range(5)]
    result = await sub(env, s, "app:x", recover={"app:x": (pubs[0].epoch, 2)})
    assert result.recovered == {"app:x": True}
    assert result.positions == {"app:x": (pubs[0].epoch, 2)}  # the stream starts after 2
    env.publish("app:x", 5)
    await tick()
    assert [o for o, _ in frames(s)] == [3, 4, 5, 6]
    assert env.hub.stats.recovered == 1


async def test_recover_gap(env: Env) -> None:
    s = env.session(CountingEncoder())
    env.publish("app:x", 0)
    result = await sub(env, s, "app:x", recover={"app:x": ("wrong", 0)})
    assert result.recovered == {"app:x": False}
    await tick()
    assert frames(s) == []  # no stale replay
    assert env.hub.stats.recovery_failed == 1


async def test_publications_during_a_slow_subscribe_are_held_then_sent_in_order(
    env: Env
) -> None:
    # The broker answers position() late (a network broker's round trip): what is published
    # meanwhile is held, then sent after the reply, once each, in order.
    encoder = CountingEncoder()
    early = env.session(encoder)
    await sub(env, early, "app:x")
    env.publish("app:x", 1)
    gate, asked = asyncio.Event(), asyncio.Event()
    real_position = env.broker.position

    async def late_position(channel: str) -> tuple[str, int]:
        answer = await real_position(channel)
        asked.set()
        await gate.wait()
        return answer

    env.broker.position = late_position  # type: ignore[method-assign]
    late = env.session(encoder)
    replies: list[SubscribeResult] = []
    task = asyncio.create_task(env.hub.subscribe(
        late, [GRAMMAR.parse("app:x")],
        on_accepted=lambda r: (replies.append(r),
                               env.hub.fanout.send(late, b"count|0|\"reply\";"))))
    await asyncio.wait_for(asked.wait(), 1)
    env.publish("app:x", 2)
    env.publish("app:x", 3)
    await tick()
    assert frames(late) == []  # held, not sent before the reply
    gate.set()
    await task
    env.publish("app:x", 4)
    await tick()
    assert replies[0].positions["app:x"][1] == 1
    assert [o for o, _ in frames(late)] == [0, 2, 3, 4]  # reply, held, live
    assert [o for o, _ in frames(early)] == [1, 2, 3, 4]


async def test_a_second_subscriber_of_an_active_upstream_does_not_wait(env: Env) -> None:
    encoder = CountingEncoder()
    early = env.session(encoder)
    env.source.gate.set()
    await sub(env, early, "ticker:BTCUSDT")
    env.source.gate.clear()  # the source would now block a new upstream subscribe
    late = env.session(encoder)
    result = await asyncio.wait_for(sub(env, late, "ticker:BTCUSDT"), 1)
    assert result.accepted == ["ticker:BTCUSDT"]
    assert env.hub.demand.count("ticker:BTCUSDT") == 2


async def test_unsubscribe_stops_delivery_and_releases(env: Env) -> None:
    env.source.gate.set()
    s = env.session(CountingEncoder())
    await sub(env, s, "ticker:BTCUSDT", "app:x")
    assert env.hub.demand.count("ticker:BTCUSDT") == 1
    removed = await env.hub.unsubscribe(s, ["ticker:BTCUSDT", "app:never"])
    assert removed == ["ticker:BTCUSDT"]
    assert env.hub.demand.count("ticker:BTCUSDT") == 0
    env.publish("ticker:BTCUSDT", 1)
    env.publish("app:x", 1)
    await tick()
    assert frames(s) == [(1, 1)]
    assert env.hub.subscribers("ticker:BTCUSDT") == 0
    assert env.hub.channel_counts() == {"app:x": 1}


async def test_unregister_releases_everything(env: Env) -> None:
    env.source.gate.set()
    s = env.session(CountingEncoder())
    await sub(env, s, "ticker:BTCUSDT", "app:x")
    await env.hub.unregister(s)
    assert env.hub.sessions == {}
    assert env.hub.channel_counts() == {}
    assert env.hub.demand.count("ticker:BTCUSDT") == 0


async def test_session_gone_while_the_upstream_answers_leaks_nothing(env: Env) -> None:
    # The client disconnects while its subscribe waits for the source: once the source
    # answers, nothing may stay counted for a session that no longer exists.
    s = env.session(CountingEncoder())
    task = asyncio.create_task(sub(env, s, "ticker:BTCUSDT"))
    await tick()
    await env.hub.unregister(s)  # what the server does when the socket closes
    env.source.gate.set()
    await task
    assert env.hub.demand.count("ticker:BTCUSDT") == 0
    assert env.hub.subscribers("ticker:BTCUSDT") == 0
    assert env.hub.channel_counts() == {}
    await eventually(lambda: env.source.unsubscribed != [], what="the upstream unsubscribe")
    assert env.source.unsubscribed == ["ticker:BTCUSDT"]


# -- failure isolation (review findings) ----------------------------------------------------


class ExplodingTransport(FakeTransport):
    def write(self, data: bytes) -> None:
        raise RuntimeError("broken transport")


async def test_a_transport_that_raises_closes_only_its_session(env: Env) -> None:
    bad = env.session(CountingEncoder(), ExplodingTransport())
    good = env.session(CountingEncoder())
    app = GRAMMAR.parse("app:x")
    await env.hub.subscribe(bad, [app])
    await env.hub.subscribe(good, [app])
    await asyncio.sleep(0)
    for i in range(3):
        env.publish("app:x", i)
        await asyncio.sleep(0)
    assert env.closes[bad.id][0] == 1011
    frames = b"".join(transport(good).writes)
    assert all(f"|{i + 1}|".encode() in frames for i in range(3))


async def test_a_failing_watcher_or_encoder_does_not_stop_the_fan_out(env: Env) -> None:
    class Broken(CountingEncoder):
        def frame_publication(self, pub: Publication) -> bytes | None:
            raise ValueError("dialect bug")

    seen: list[int] = []

    def bad_watcher(pub: Publication) -> None:
        raise ValueError("consumer bug")

    await env.hub.watch("app:x", bad_watcher)
    await env.hub.watch("app:x", lambda pub: seen.append(pub.offset))
    broken = env.session(Broken("broken"))
    good = env.session(CountingEncoder())
    app = GRAMMAR.parse("app:x")
    await env.hub.subscribe(broken, [app])
    await env.hub.subscribe(good, [app])
    env.publish("app:x", 1)  # must not raise into the publisher
    await asyncio.sleep(0)
    assert seen == [1]
    assert b"count|1|1;" in b"".join(transport(good).writes)


async def test_a_repeated_channel_is_acquired_and_sent_once(env: Env) -> None:
    env.source.gate.set()
    session = env.session(CountingEncoder())
    ticker = GRAMMAR.parse("ticker:BTCUSDT")
    result = await env.hub.subscribe(session, [ticker, ticker, GRAMMAR.parse("tickers.BTCUSDT")])
    assert result.accepted == ["ticker:BTCUSDT"]
    assert env.hub.demand.count("ticker:BTCUSDT") == 1
    env.publish("ticker:BTCUSDT", 1)
    await asyncio.sleep(0)
    assert b"".join(transport(session).writes).count(b"count|1|") == 1
    await env.hub.unregister(session)
    assert env.hub.demand.count("ticker:BTCUSDT") == 0


async def test_a_failed_subscribe_leaves_nothing_behind(env: Env) -> None:
    env.source.gate.set()

    async def broken_position(channel: str) -> tuple[str, int]:
        raise RuntimeError("broker down")

    env.broker.position = broken_position  # type: ignore[method-assign]
    session = env.session(CountingEncoder())
    with pytest.raises(RuntimeError):
        await env.hub.subscribe(session, [GRAMMAR.parse("ticker:BTCUSDT")])
    assert session.channels == set()
    assert env.hub.subscribers("ticker:BTCUSDT") == 0  # not held as buffering either
    assert env.hub.demand.count("ticker:BTCUSDT") == 0
    env.publish("ticker:BTCUSDT", 1)  # nothing holds or sends it
    await asyncio.sleep(0)
    assert transport(session).writes == []


async def test_access_policy_rejects_with_its_reason(env: Env) -> None:
    env.hub.access = lambda principal, ch: "no" if ch.kind == "pg" else None
    session = env.session(CountingEncoder())
    result = await env.hub.subscribe(session, [GRAMMAR.parse("pg:fill_event"),
                                               GRAMMAR.parse("app:x")])
    assert result.rejected == [("pg:fill_event", "no")]
    assert result.accepted == ["app:x"]


async def test_a_subscribe_asks_access_and_position_once_per_channel(
        env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """The subscribe path does each step once (docs/architecture.md, "Paths"): one access
    check and one position read per channel; a second read only where there is no history
    to start from (a failed recovery starts at the top as it stands then)."""
    asked: list[str] = []
    read: list[str] = []
    position = env.broker.position

    def access(principal: Principal, channel: Channel) -> str | None:
        asked.append(channel.name)
        return None

    async def counted(channel: str) -> tuple[str, int]:
        read.append(channel)
        return await position(channel)

    env.hub.access = access
    monkeypatch.setattr(env.broker, "position", counted)
    pub = env.publish("app:x", 1)
    result = await sub(env, env.session(CountingEncoder()), "app:x", "app:y", "app:x")
    assert result.accepted == ["app:x", "app:y"]
    assert asked == ["app:x", "app:y"] and read == ["app:x", "app:y"]
    assert result.positions["app:x"] == (pub.epoch, pub.offset)

    asked.clear()
    read.clear()
    result = await sub(env, env.session(CountingEncoder()), "app:x",
                       recover={"app:x": ("another-epoch", 0)})
    assert result.recovered == {"app:x": False}
    assert result.positions["app:x"] == (pub.epoch, pub.offset)
    assert asked == ["app:x"] and read == ["app:x", "app:x"]
