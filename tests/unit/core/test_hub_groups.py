"""Group fan-out: a session live in one channel (*solo*) is written its group's frames of the
tick as one shared blob; a session in several (*shared*) gets per-session frames. These tests
pin what a client sees either way: one write per tick, every frame once, in order, and a reply
never overtaking a publication delivered before it."""

from __future__ import annotations

from tests.unit.core.test_hub import (
    GRAMMAR,
    CountingEncoder,
    Env,
    env,
    frames,
    sub,
    tick,
    transport,
)

from cryptowire.core.session import Session

__all__ = ["env"]  # the fixture, re-exported for pytest


def data(session: Session) -> list[object]:
    return [d for _, d in frames(session)]


def group_of(env: Env, session: Session, channel: str) -> str:
    if env.hub.catching_up(session, channel):
        return "ahead"
    group = env.hub.fanout.group(channel, session.encoder)
    assert group is not None
    return "solo" if session in group.solo else "shared" if session in group.shared else "-"


async def test_solo_sessions_share_one_blob_per_tick(env: Env) -> None:
    encoder = CountingEncoder()
    sessions = [env.session(encoder) for _ in range(20)]
    for s in sessions:
        await sub(env, s, "app:x")
    for i in range(5):
        env.publish("app:x", i)
    assert {group_of(env, s, "app:x") for s in sessions} == {"solo"}
    assert all(transport(s).writes == [] for s in sessions)  # nothing before the tick ends
    await tick()
    assert encoder.calls == 5
    blob = transport(sessions[0]).writes[0]
    for s in sessions:
        assert transport(s).writes == [blob]  # one write each, the same bytes
        assert data(s) == [0, 1, 2, 3, 4]
    assert env.hub.stats.messages_out == 100


async def test_a_reply_queued_in_the_same_tick_goes_in_the_same_write(env: Env) -> None:
    encoder = CountingEncoder()
    s = env.session(encoder)
    await sub(env, s, "app:x")
    env.publish("app:x", "a")
    env.hub.fanout.send(s, b"count|0|\"pong\";")
    env.publish("app:x", "b")
    await tick()
    assert len(transport(s).writes) == 1
    assert sorted(map(str, data(s))) == ["a", "b", "pong"]
    assert [d for d in data(s) if d != "pong"] == ["a", "b"]


async def test_unsubscribe_reply_follows_the_publications_before_it(env: Env) -> None:
    encoder = CountingEncoder()
    s, other = env.session(encoder), env.session(encoder)
    await sub(env, s, "app:x")
    await sub(env, other, "app:x")
    env.publish("app:x", "before")
    assert await env.hub.unsubscribe(s, ["app:x"]) == ["app:x"]
    env.hub.fanout.send(s, b"count|0|\"unsubscribed\";")
    env.publish("app:x", "after")
    await tick()
    assert data(s) == ["before", "unsubscribed"]
    assert data(other) == ["before", "after"]


async def test_close_writes_the_tick_frames_before_the_close(env: Env) -> None:
    encoder = CountingEncoder()
    a, b = env.session(encoder), env.session(encoder)
    for s in (a, b):
        await sub(env, s, "app:x")
    env.publish("app:x", 1)
    env.publish("app:x", 2)
    env.hub.fanout.close(a, 1001, "Server shutting down")
    assert data(a) == [1, 2]  # written by the close itself
    await tick()
    assert data(a) == [1, 2]  # and not a second time
    assert data(b) == [1, 2]


async def test_joining_a_second_channel_mid_tick_keeps_order_and_no_duplicates(env: Env) -> None:
    encoder = CountingEncoder()
    s, x_only = env.session(encoder), env.session(encoder)
    await sub(env, s, "app:x")
    await sub(env, x_only, "app:x")
    env.publish("app:x", "x1")
    await sub(env, s, "app:y")
    env.publish("app:y", "y1")  # s joins y live: shared in x and y, x1 spilled first
    assert group_of(env, s, "app:x") == "shared" and group_of(env, s, "app:y") == "shared"
    assert group_of(env, x_only, "app:x") == "solo"
    env.publish("app:x", "x2")
    await tick()
    assert data(s) == ["x1", "y1", "x2"]
    assert data(x_only) == ["x1", "x2"]
    # Leaving y makes s solo in x again; it still gets every x frame once.
    env.publish("app:x", "x3")
    await env.hub.unsubscribe(s, ["app:y"])
    assert group_of(env, s, "app:x") == "solo"
    env.publish("app:y", "y2")
    env.publish("app:x", "x4")
    await tick()
    assert data(s) == ["x1", "y1", "x2", "x3", "x4"]
    assert data(x_only) == ["x1", "x2", "x3", "x4"]


async def test_dialects_of_one_channel_are_separate_groups(env: Env) -> None:
    one, two = CountingEncoder("one"), CountingEncoder("two")
    a, b = env.session(one), env.session(two)
    await env.hub.subscribe(a, [GRAMMAR.parse("app:x")])
    await env.hub.subscribe(b, [GRAMMAR.parse("app:x")])
    env.publish("app:x", "m")
    await tick()
    assert frames(a, "one") == [(1, "m")]
    assert frames(b, "two") == [(1, "m")]
    assert env.hub.subscribers("app:x") == 2


async def test_unregister_empties_the_index(env: Env) -> None:
    encoder = CountingEncoder()
    s = env.session(encoder)
    await sub(env, s, "app:x", "app:y")
    env.publish("app:x", 1)
    await env.hub.unregister(s)
    await tick()
    assert env.hub.fanout.live_channels() == set()
    assert s.groups == 0 and s.solo_in is None
    assert transport(s).writes == []  # closed before the tick ended: nothing written


async def test_a_replay_ahead_of_the_live_feed_is_not_sent_twice(env: Env) -> None:
    """A bus (Redis) has an entry in its stream before this node's live feed delivers it:
    a subscribe that replays from the stream must not get those entries again live."""
    encoder = CountingEncoder()
    s = env.session(encoder)
    pubs = [env.publish("app:x", i) for i in range(3)]  # nobody here listens yet
    epoch = pubs[0].epoch
    await sub(env, s, "app:x", recover={"app:x": (epoch, 0)})
    assert group_of(env, s, "app:x") == "ahead"
    for late in pubs[1:]:  # the live feed catches up with what the replay already sent
        env.hub.deliver(late)
    env.publish("app:x", 3)
    await tick()
    assert [offset for offset, _ in frames(s)] == [1, 2, 3, 4]
    assert group_of(env, s, "app:x") == "solo"
    assert env.hub.subscribers("app:x") == 1


async def test_a_session_waiting_for_the_feed_counts_and_leaves_cleanly(env: Env) -> None:
    encoder = CountingEncoder()
    s = env.session(encoder)
    await sub(env, s, "app:x")
    assert group_of(env, s, "app:x") == "ahead" and env.hub.subscribers("app:x") == 1
    await env.hub.unsubscribe(s, ["app:x"])
    assert env.hub.channel_counts() == {} and env.hub.subscribers("app:x") == 0
    env.publish("app:x", "after")
    await tick()
    assert transport(s).writes == []


async def test_a_join_spills_only_its_own_group(env: Env) -> None:
    """A subscribe in one channel mid-tick leaves the other groups' shared writes alone."""
    encoder = CountingEncoder()
    xs = [env.session(encoder) for _ in range(3)]
    ys = [env.session(encoder) for _ in range(2)]
    for s in xs:
        await sub(env, s, "app:x")
    for s in ys:
        await sub(env, s, "app:y")
    env.publish("app:x", "x0")  # both groups live (past their first publication)
    env.publish("app:y", "y0")
    await tick()
    late = env.session(encoder)
    await sub(env, late, "app:y")
    env.publish("app:x", "x1")
    env.publish("app:y", "y1")  # late joins y here: y's frames so far are spilled
    env.publish("app:y", "y2")
    await tick()
    x_writes = [transport(s).writes[-1] for s in xs]
    assert all(w is x_writes[0] for w in x_writes)  # still one shared blob for x
    assert all(data(s) == ["x0", "x1"] for s in xs)
    assert all(data(s) == ["y0", "y1", "y2"] for s in ys)
    assert data(late) == ["y1", "y2"]
