"""Server pings (one timer per node): a client that answers them stays however long it only
listens; one that sends nothing at all is closed with 4011; a client's own pings are answered."""

from __future__ import annotations

import asyncio

import pytest
from tests.integration.server.conftest import (
    Hub,
    RawClient,
    assert_alive,
    mask_frame,
    next_data,
    subscribe,
)
from tests.waiting import eventually

from cryptowire import closecodes
from cryptowire.server.heartbeat import Heartbeat

# Half a second to answer: generous for a loaded CI box (the client shares the hub's loop).
FAST = pytest.mark.hub_settings(server={"ping_interval_s": 1.0})


@FAST
async def test_a_passive_listener_is_never_cut(hub: Hub, monkeypatch: pytest.MonkeyPatch) -> None:
    # websockets answers pings by itself; this client never sends a frame of its own.
    rounds: list[int] = []
    checked = Heartbeat.drop_silent

    def counting(self: Heartbeat, since: float) -> int:
        rounds.append(checked(self, since))
        return rounds[-1]

    monkeypatch.setattr(Heartbeat, "drop_silent", counting)
    ws = await hub.connect()
    await subscribe(ws, "app:quiet")
    await eventually(lambda: len(rounds) >= 3, timeout=10.0, what="three ping rounds checked")
    pub = await hub.publish("app:quiet", {"still": "here"})
    msg = await next_data(ws, "app:quiet")
    assert msg["offset"] == pub.offset
    assert hub.node.counters.ping_timeouts == 0


@FAST
async def test_a_client_that_never_answers_is_closed_4011(hub: Hub) -> None:
    watcher = await hub.connect()
    await subscribe(watcher, "app:watch")
    silent = await RawClient.connect(hub.port)
    pings, code = await silent.count_until_close(0x9, timeout=5)
    assert pings == 1  # pinged once, then closed within half an interval
    assert code == closecodes.PING_TIMEOUT.code == 4011
    assert hub.node.counters.ping_timeouts == 1
    await assert_alive(hub, watcher)  # and the others were not touched
    async with hub.http.get(f"{hub.url}/metrics") as resp:
        assert "cryptowire_ping_timeouts_total 1.0" in await resp.text()


@FAST
async def test_answering_pings_by_hand_keeps_a_raw_client(hub: Hub) -> None:
    client = await RawClient.connect(hub.port)
    answered = 0
    async with asyncio.timeout(8):
        while answered < 3:
            opcode, payload = await client.read_frame()
            assert opcode == 0x9, "closed although it answered every ping"
            client.write(mask_frame(payload, opcode=0xA))
            answered += 1
    assert hub.node.counters.ping_timeouts == 0


async def test_the_clients_own_ping_gets_a_pong(hub: Hub) -> None:
    client = await RawClient.connect(hub.port)
    client.write(mask_frame(b"are you there", opcode=0x9))
    opcode, payload = await client.read_frame()
    assert (opcode, payload) == (0xA, b"are you there")
