"""The SDK's ``Book`` fed by a real hub: book events published through the served node's broker
(as a book source publishes them: snapshot, deltas with the cut's removals, gap, snapshot)
reach the client, and its ``Book`` equals the published book at the end, across a dropped
connection (recovered from history) and a gap."""

from __future__ import annotations

import asyncio
import os
import pty
import random
import re
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.client.clienthub import FAST, Collector, hub_settings
from tests.integration.hubkit import serve

from cryptowire.app.node import Node
from cryptowire.books import OrderBook
from cryptowire.client import Book, Message, Reconnected, connect
from cryptowire.core.channels import Channel
from cryptowire.core.source import PublishFn, SourceStatus
from cryptowire.events import Event

pytestmark = pytest.mark.integration

CH = "book:50:BTCUSDT"
WAIT = 15.0  # a subprocess start (imports) on a busy 2-core box


class BookRoute:
    """Serves the ``book`` kind so the hub accepts book subscriptions; publishes nothing
    itself (the test publishes through the broker)."""

    name = "test-books"
    kinds = frozenset({"book"})

    def __init__(self) -> None:
        self.subscribed: list[str] = []

    async def start(self, publish: PublishFn) -> None:
        return None

    async def stop(self) -> None:
        return None

    async def subscribe(self, channel: Channel) -> None:
        self.subscribed.append(channel.name)

    async def unsubscribe(self, channel: Channel) -> None:
        return None

    def status(self) -> SourceStatus:
        return SourceStatus(self.name, "up")


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[Node, int]]:
    node = Node(hub_settings(tmp_path), sources=[BookRoute()])
    runner, port = await serve(node, shutdown_timeout=1.0)
    try:
        yield node, port
    finally:
        await runner.cleanup()


def random_delta(rng: random.Random, venue: OrderBook) -> tuple[list[list[str]], ...]:
    """A few changed levels a side on a 0.10 grid around 65000: sizes changed, levels added
    and removed (some removals of levels the book does not have)."""
    sides = []
    for _ in ("bids", "asks"):
        levels = []
        for _ in range(rng.randint(0, 4)):
            ticks = rng.randint(1, 80)
            size = rng.choice(["0", "0.000", f"{rng.randint(1, 9999) / 1000:.3f}"])
            levels.append([f"{65000 - ticks / 10 if not sides else 65000 + ticks / 10:.2f}",
                           size])
        sides.append(levels)
    return sides[0], sides[1]


async def publish(node: Node, kind: str, data: dict[str, Any]) -> None:
    await node.broker.publish(Event(CH, data, type=kind, source="test"))


async def test_the_sdk_book_equals_the_published_book(node: tuple[Node, int]) -> None:
    hub, port = node
    rng = random.Random(13)  # noqa: S311  (test data)
    venue = OrderBook(50)
    venue.snapshot([[f"{65000 - i / 10:.2f}", "1.000"] for i in range(1, 61)],
                   [[f"{65000 + i / 10:.2f}", "2.000"] for i in range(1, 61)])
    async with connect(f"ws://127.0.0.1:{port}/ws", **FAST) as client:
        reply = await client.subscribe("orderbook.50.BTCUSDT")
        assert reply.channels == (CH,)
        book, seen = Book("orderbook.50.BTCUSDT"), Collector(client)
        try:
            await publish(hub, "snapshot", venue.payload("BTCUSDT"))
            for n in range(120):
                bids, asks = random_delta(rng, venue)
                gone_bids, gone_asks = venue.apply(bids, asks)
                await publish(hub, "delta", {"symbol": "BTCUSDT", "bids": bids + gone_bids,
                                             "asks": asks + gone_asks, "venueSeq": n})
                if n == 60:  # the connection vanishes; the rest is recovered from history
                    for session in list(hub.hub.sessions.values()):
                        session.transport.abort()
            await seen.wait_for(lambda c: len(c.messages(CH)) == 121)
            for item in seen.items:
                book.apply(item)
            assert seen.of(Reconnected) and book.valid, book.reason
            assert (book.offset, book.venue_seq, book.symbol) == (121, 119, "BTCUSDT")
            for side in ("bids", "asks"):
                assert book.levels(side) == venue.levels(side)
            assert len(book) == len(venue) > 50 and not book.crossed()

            await publish(hub, "gap", {"reason": "test: sequence broken"})
            await seen.wait_for(lambda c: len(c.messages(CH)) == 122)
            book.apply(seen.items[-1])
            assert not book.valid and "test: sequence broken" in book.reason
            venue.snapshot([["64000.00", "5"]], [["64000.10", "6"]])
            await publish(hub, "snapshot", venue.payload("BTCUSDT"))
            await seen.wait_for(lambda c: len(c.messages(CH)) == 123)
            last = seen.items[-1]
            assert isinstance(last, Message) and book.apply(last) and book.valid
            assert book.best_bid() == ["64000.00", "5"] and book.best_ask() == ["64000.10", "6"]
        finally:
            await seen.stop()


async def _read_until(fd: int, needles: tuple[str, ...], timeout: float) -> str:
    """What the terminal ``fd`` shows until every needle is in it (escape codes removed)."""
    loop = asyncio.get_running_loop()
    seen = ""
    async with asyncio.timeout(timeout):
        while not all(n in seen for n in needles):
            try:
                chunk = await loop.run_in_executor(None, os.read, fd, 65536)
            except OSError:  # EIO: the process closed the terminal
                break
            seen += re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", chunk.decode(errors="replace"))
    return seen


async def test_tail_draws_a_ladder_on_a_terminal(node: tuple[Node, int],
                                                 tmp_path: Path) -> None:
    hub, port = node
    master, terminal = pty.openpty()
    env = {**os.environ, "TERM": "xterm-256color", "COLUMNS": "100", "LINES": "40"}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "cryptowire", "tail", CH, "app:news", "--levels", "2",
        "--url", f"ws://127.0.0.1:{port}/ws", cwd=tmp_path, env=env,
        stdout=terminal, stderr=asyncio.subprocess.PIPE)
    os.close(terminal)
    assert proc.stderr is not None
    try:
        async with asyncio.timeout(WAIT):
            while "subscribed" not in (line := (await proc.stderr.readline()).decode()):
                assert line and "error" not in line, line
        await publish(hub, "snapshot", {"symbol": "BTCUSDT",
                                        "bids": [["17440.00", "1"], ["17439.50", "2"],
                                                 ["17439.00", "3"]],
                                        "asks": [["17440.50", "4"], ["17441.00", "5"]]})
        await hub.broker.publish(Event("app:news", {"said": "hello"}, source="app"))
        shown = await _read_until(master, ("17439.50", "spread 0.50", '"said":"hello"'), WAIT)
        ladder = shown[shown.rindex(CH):]  # the last drawing
        assert ladder.index("17441.00") < ladder.index("17440.50") < ladder.index(
            "spread 0.50") < ladder.index("17440.00") < ladder.index("17439.50")
        assert "17439.00" not in ladder  # --levels 2
        assert '"bids"' not in shown  # the book is drawn, not printed as a line
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
            await asyncio.wait_for(proc.wait(), WAIT)
        os.close(master)
