"""The dashboard's order book in headless Chromium against a real hub on the demo source:
the ladder shows 20 asks above 20 bids, never crossed, with the hub's exact strings and
bars drawn to size; its levels are the book a Python client rebuilds from the same hub; the
depth chart draws and moves with the book; another symbol switches the book (and the old
channel is left). Fixtures and helpers: ``test_dashboard.py`` (through ``conftest.py``)."""

from __future__ import annotations

import asyncio
import json
import re
from decimal import Decimal
from typing import Any

import pytest
from tests.e2e.test_dashboard import WAIT_MS, Hub, PageProblems, _screenshot
from tests.waiting import eventually, holders
from websockets.asyncio.client import ClientConnection, connect

from cryptowire.books import Level, OrderBook

pytestmark = pytest.mark.integration

PLAIN = re.compile(r"^\d+\.\d+$")
LADDER = 20

# Before the page's script runs: what the page sends on its sockets, recorded.
CAPTURE_SENT = """(() => {
    const Native = window.WebSocket;
    window.__sent = [];
    window.WebSocket = class extends Native {
        send(data) { window.__sent.push(String(data)); return super.send(data); }
    };
})();"""

# The ladder as drawn, read in one go (the page's script cannot run in between).
READ_LADDER = """() => {
    const rows = (side) => [...document.querySelectorAll(
        `#book-ladder tr[data-side=${side}]`)].sort((a, b) => a.dataset.rank - b.dataset.rank);
    const read = (side) => rows(side).map((tr) => [
        tr.querySelector('td.price').textContent,
        tr.querySelector('td.size span:last-child').textContent,
        tr.querySelector('.bar').getBoundingClientRect().width]);
    const book = document.querySelector('#book');
    return {state: book.dataset.state, channel: book.dataset.channel, seq: book.dataset.seq,
            draws: Number(book.dataset.draws), asks: read('ask'), bids: read('bid')};
}"""

# How much of the depth chart is painted, and a fingerprint of it.
CANVAS = """() => {
    const canvas = document.querySelector('#depth-chart');
    if (!canvas.width || !canvas.height) return {painted: 0, hash: 0};
    const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0, hash = 0;
    for (let i = 0; i < px.length; i += 4) {
        if (px[i + 3] === 0) continue;
        painted += 1;
        hash = (hash * 31 + ((px[i] << 16) | (px[i + 1] << 8) | px[i + 2]) + i) | 0;
    }
    return {painted, hash};
}"""


class PythonBook:
    """``book:200:<symbol>`` rebuilt by a plain websocket client: each state it held, top 20
    a side, by ``venueSeq`` (one demo walk per symbol: its depths are cuts of one book)."""

    def __init__(self) -> None:
        self.book = OrderBook(200)
        self.states: dict[int, tuple[list[Level], list[Level]]] = {}

    async def follow(self, ws: ClientConnection, channel: str) -> None:
        while True:
            frame = json.loads(await ws.recv())
            if frame.get("channel") != channel:
                continue
            data = frame["data"]
            if frame["type"] == "snapshot":
                self.book.snapshot(data["bids"], data["asks"])
            elif frame["type"] == "delta":
                self.book.apply(data["bids"], data["asks"])
            self.states[data["venueSeq"]] = (self.book.levels("bids", LADDER),
                                             self.book.levels("asks", LADDER))


async def _open(hub: Hub, browser: Any) -> tuple[Any, PageProblems]:
    page = await browser.new_page(viewport={"width": 1400, "height": 1400})
    problems = PageProblems(page)
    await page.add_init_script(CAPTURE_SENT)
    await page.goto(f"{hub.base}/?api_key={hub.key}")
    return page, problems


async def _wait_full_ladder(page: Any, channel: str) -> dict[str, Any]:
    await page.wait_for_function(
        """([channel, n]) => {
            const book = document.querySelector('#book');
            const filled = (side) => [...document.querySelectorAll(
                `#book-ladder tr[data-side=${side}] td.price`)].filter(
                (td) => td.textContent !== '').length;
            return book.dataset.state === 'live' && book.dataset.channel === channel
                && filled('ask') === n && filled('bid') === n;
        }""", arg=[channel, LADDER], timeout=WAIT_MS)
    ladder: dict[str, Any] = await page.evaluate(READ_LADDER)
    return ladder


def _check_ladder(ladder: dict[str, Any]) -> None:
    asks, bids = ladder["asks"], ladder["bids"]
    assert len(asks) == len(bids) == LADDER
    for price, size, width in asks + bids:
        assert PLAIN.fullmatch(price) and PLAIN.fullmatch(size), (price, size)
        assert width > 0, (price, size, width)
    ask_prices = [Decimal(p) for p, _, _ in asks]
    bid_prices = [Decimal(p) for p, _, _ in bids]
    assert ask_prices == sorted(ask_prices) and bid_prices == sorted(bid_prices, reverse=True)
    assert bid_prices[0] < ask_prices[0]  # never crossed
    # bars to scale: the largest size has the widest bar
    levels = asks + bids
    biggest = max(levels, key=lambda level: Decimal(level[1]))
    assert biggest[2] == max(width for _, _, width in levels)


async def test_ladder_and_depth_chart_follow_the_hub_book(hub: Hub, browser: Any) -> None:
    page, problems = await _open(hub, browser)
    ladder = await _wait_full_ladder(page, "book:50:BTCUSDT")
    _check_ladder(ladder)
    sent = [json.loads(s) for s in await page.evaluate("() => window.__sent")]
    book_subscribes = [m for m in sent if m.get("op") == "subscribe"
                       and any(str(a).startswith("book:") for a in m.get("args", []))]
    assert book_subscribes and book_subscribes[0]["args"] == ["book:50:BTCUSDT"]
    assert book_subscribes[0]["interval_ms"] == 250  # conflated (PROTOCOLS.md 4.3)

    # A Python client rebuilds the same demo book (a deeper cut of it, its own stream): the
    # ladder the page draws is one of the states it held, level for level, size for size.
    python = PythonBook()
    async with connect(f"ws://{hub.base.removeprefix('http://')}/ws?api_key={hub.key}",
                       proxy=None, max_size=2**24) as ws:
        await ws.send(json.dumps({"op": "subscribe", "args": ["book:200:BTCUSDT"]}))
        reader = asyncio.create_task(python.follow(ws, "book:200:BTCUSDT"))
        try:
            await eventually(lambda: len(python.states) >= 3, WAIT_MS / 1000,
                             "the Python client's book")
            seen: list[int] = []

            async def ladder_is_a_python_state() -> bool:
                ladder = await page.evaluate(READ_LADDER)
                drawn = ([[p, s] for p, s, _ in ladder["bids"]],
                         [[p, s] for p, s, _ in ladder["asks"]])
                seq = int(ladder["seq"]) if ladder["seq"] else None
                if seq is not None and seq in python.states and seq not in seen:
                    assert python.states[seq] == drawn, seq  # the same book, level for level
                elif seq is not None or drawn not in python.states.values():
                    return False  # (a frame without venueSeq is matched on its levels)
                _check_ladder(ladder)
                seen.append(seq or 0)
                return True

            for _ in range(3):  # three moments of the live book
                await eventually(ladder_is_a_python_state, WAIT_MS / 1000,
                                 "the ladder to show a book the Python client held")
            assert len(seen) == 3
        finally:
            reader.cancel()

    # The depth chart is drawn, and redrawn as the book moves.
    first = await page.evaluate(CANVAS)
    assert first["painted"] > 2000, first
    assert int(await page.get_attribute("#depth-chart", "data-points") or 0) == 100  # 50 + 50

    async def repainted() -> bool:
        return bool((await page.evaluate(CANVAS))["hash"] != first["hash"])

    await eventually(repainted, WAIT_MS / 1000, "the depth chart to move with the book")
    await _screenshot(page, "dashboard-book.png")

    # Another symbol: its book replaces BTCUSDT's, which the page leaves.
    await page.click("#tickers tr[data-symbol=ETHUSDT] td.price")
    eth = await _wait_full_ladder(page, "book:50:ETHUSDT")
    _check_ladder(eth)
    assert Decimal(eth["bids"][0][0]) < 10_000 < Decimal(ladder["bids"][0][0])  # ETH, not BTC
    assert await page.inner_text("#book-symbol") == "ETHUSDT"
    await eventually(lambda: holders(hub.node.hub, "book:50:BTCUSDT") == 0, WAIT_MS / 1000,
                     "the page to leave book:50:BTCUSDT")
    sent = [json.loads(s) for s in await page.evaluate("() => window.__sent")]
    assert any(m.get("op") == "unsubscribe" and m.get("args") == ["book:50:BTCUSDT"]
               for m in sent)
    assert (await page.evaluate(CANVAS))["painted"] > 2000
    assert problems.errors == []


CAPTURE_BOOK = """(() => {
    const Native = window.WebSocket;
    window.__book = [];
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener('message', (event) => {
                const msg = JSON.parse(event.data);
                if (String(msg.channel).startsWith('book:')) window.__book.push(msg.type);
            });
        }
    };
})();"""


async def test_a_gap_frame_makes_the_book_stale_until_the_next_snapshot(
        hub: Hub, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 1400})
    problems = PageProblems(page)
    await page.add_init_script(CAPTURE_BOOK)
    await page.goto(f"{hub.base}/?api_key={hub.key}")
    await _wait_full_ladder(page, "book:50:BTCUSDT")
    # The source says its book is unknown: the page says so and keeps the last one greyed.
    await hub.node.broker.publish(_event("book:50:BTCUSDT", "gap", {"reason": "test"}))
    await page.wait_for_selector("#book[data-state=stale]", timeout=WAIT_MS)
    assert "gap (test)" in await page.inner_text("#book-msg")
    # Deltas alone do not bring it back (the conflated subscription sends nothing while the
    # hub's book is unknown, and the page draws nothing from deltas)...
    draws = int(await page.get_attribute("#book", "data-draws") or 0)
    _, top = await hub.node.broker.position("book:50:BTCUSDT")
    await eventually(lambda: _published_past(hub, top + 3), timeout=WAIT_MS / 1000,
                     what="three more book deltas published after the gap")
    await page.evaluate("() => new Promise((r) => requestAnimationFrame(() => r(null)))")
    assert await page.get_attribute("#book", "data-state") == "stale"
    assert int(await page.get_attribute("#book", "data-draws") or 0) == draws
    # ...the next snapshot does (the demo source sends one when the channel starts again).
    demo = next(s for s in hub.node.sources if s.name == "demo")
    await demo._subscribe_book(hub.node.grammar.parse("book:50:BTCUSDT"))  # type: ignore[attr-defined]
    await _wait_full_ladder(page, "book:50:BTCUSDT")
    assert problems.errors == []


async def _published_past(hub: Hub, offset: int) -> bool:
    _, top = await hub.node.broker.position("book:50:BTCUSDT")
    return top >= offset


def _event(channel: str, kind: str, data: Any) -> Any:
    from cryptowire.events import Event

    return Event(channel=channel, type=kind, data=data, source="demo")
