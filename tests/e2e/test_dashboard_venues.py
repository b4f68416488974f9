"""The dashboard's venue selector and BBO row in headless Chromium against a real hub.

On the demo source (it serves every venue's channels): choosing a venue moves the tickers
table and the order book to that venue's channels (``@okx`` suffix; the hub's default venue
has none) and leaves the old ones; the BBO row shows what the hub's ``bbo:BTCUSDT`` frames
say, read in the same turn of the page's script. With the demo books quiet and the venues'
books published by the test: the row names the venue whose bid or ask is best, and a
venue in a gap is shown out. Fixtures and helpers: ``test_dashboard.py`` (through
``conftest.py``) and ``test_dashboard_book.py``."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from tests.e2e.test_dashboard import WAIT_MS, Hub, PageProblems, _screenshot
from tests.e2e.test_dashboard_book import _wait_full_ladder
from tests.waiting import eventually, holders

from cryptowire.app.node import Node
from cryptowire.events import Event
from cryptowire.server.app import create_app
from cryptowire.settings import load_settings

pytestmark = pytest.mark.integration

SYMBOLS = ("BTCUSDT", "ETHUSDT", "SOLUSDT")

# Before the page's script runs: what it sends, and the bbo frames it receives, recorded.
CAPTURE = """(() => {
    const Native = window.WebSocket;
    window.__sent = [];
    window.__bbo = [];
    window.__tickers = new Set();
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener('message', (event) => {
                const msg = JSON.parse(event.data);
                const channel = String(msg.channel);
                if (channel.startsWith('bbo:')) window.__bbo.push(msg);
                if (channel.startsWith('ticker:')) window.__tickers.add(channel);
            });
        }
        send(data) { window.__sent.push(String(data)); return super.send(data); }
    };
})();"""

# The BBO row as drawn and the last bbo frame received, in one turn of the page's script
# (bbo.js draws each frame as it comes).
READ_BBO = """() => {
    const row = document.querySelector('#bbo');
    const part = (name) => row.querySelector(`[data-part="${name}"]`).textContent;
    const last = window.__bbo[window.__bbo.length - 1] || null;
    return {state: row.dataset.state, frames: window.__bbo.length, last,
            bidVenue: row.dataset.bidVenue || null, askVenue: row.dataset.askVenue || null,
            bid: [part('bid-price'), part('bid-size'), part('bid-venue')],
            ask: [part('ask-price'), part('ask-size'), part('ask-venue')],
            venues: part('venues'), symbol: part('symbol')};
}"""

NAMES = {"bybit": "Bybit", "binance": "Binance", "okx": "OKX"}


def _shown(side: dict[str, str] | None) -> list[str]:
    if side is None:
        return ["—", "", ""]
    return [side["price"], side["size"], NAMES[side["venue"]]]


async def _open(hub: Hub, browser: Any) -> tuple[Any, PageProblems]:
    page = await browser.new_page(viewport={"width": 1400, "height": 1400})
    problems = PageProblems(page)
    await page.add_init_script(CAPTURE)
    await page.goto(f"{hub.base}/?api_key={hub.key}")
    return page, problems


async def _sent(page: Any) -> list[dict[str, Any]]:
    return [json.loads(s) for s in await page.evaluate("() => window.__sent")]


async def _bbo_matches_last_frame(page: Any, at_least: int) -> dict[str, Any] | None:
    """The row read with the last frame, if it shows that frame (and ``at_least`` came)."""
    row: dict[str, Any] = await page.evaluate(READ_BBO)
    if row["frames"] < at_least or row["last"] is None:
        return None
    data = row["last"]["data"]
    assert row["last"]["channel"] == "bbo:BTCUSDT" and row["symbol"] == "BTCUSDT"
    assert row["bid"] == _shown(data["bid"]) and row["ask"] == _shown(data["ask"])
    assert row["bidVenue"] == (data["bid"] or {}).get("venue")
    assert row["askVenue"] == (data["ask"] or {}).get("venue")
    return row


async def test_the_venue_selector_moves_tickers_and_book_and_the_bbo_row_follows_the_hub(
        hub: Hub, browser: Any) -> None:
    page, problems = await _open(hub, browser)
    await _wait_full_ladder(page, "book:50:BTCUSDT")
    assert await page.input_value("#venue") == "linear"
    sent = await _sent(page)
    assert any(m.get("op") == "subscribe" and m.get("args") == ["bbo:BTCUSDT"] for m in sent)

    # The BBO row shows the hub's frames (the demo's three venue books are one walk, so
    # the best venue changes with who updated last: each moment is checked against its frame).
    await page.wait_for_selector("#bbo[data-state=live]", timeout=WAIT_MS)
    for moment in range(3):
        frames = (await page.evaluate(READ_BBO))["frames"]
        row = None

        async def shown(floor: int = frames + 1) -> bool:
            nonlocal row
            row = await _bbo_matches_last_frame(page, floor)
            return row is not None

        await eventually(shown, WAIT_MS / 1000, f"bbo frame {moment} shown")
        assert row is not None and row["last"]["data"]["venues"], row
        assert row["bidVenue"] in NAMES and row["askVenue"] in NAMES

    # OKX: the tickers and the book move to @okx; the old channels are left.
    await page.select_option("#venue", "okx")
    okx = await _wait_full_ladder(page, "book:50:BTCUSDT@okx")
    assert okx["state"] == "live"
    assert await page.inner_text("#book-symbol") == "BTCUSDT@okx"
    for symbol in SYMBOLS:
        await page.wait_for_selector(f"#tickers tr[data-symbol={symbol}][data-state=live]",
                                     timeout=WAIT_MS)
    got = await page.evaluate("() => [...window.__tickers]")
    assert {f"ticker:{s}@okx" for s in SYMBOLS} <= set(got)
    sent = await _sent(page)
    unsubscribed = {a for m in sent if m.get("op") == "unsubscribe" for a in m["args"]}
    subscribed = {a for m in sent if m.get("op") == "subscribe" for a in m["args"]}
    assert {f"ticker:{s}" for s in SYMBOLS} | {"book:50:BTCUSDT"} <= unsubscribed
    assert {f"ticker:{s}@okx" for s in SYMBOLS} | {"book:50:BTCUSDT@okx"} <= subscribed
    assert "bbo:BTCUSDT" not in unsubscribed  # across venues: the selection leaves it be
    book = next(m for m in sent if m.get("op") == "subscribe"
                and m.get("args") == ["book:50:BTCUSDT@okx"])
    assert book["interval_ms"] == 250
    for channel in [f"ticker:{s}" for s in SYMBOLS] + ["book:50:BTCUSDT"]:
        await eventually(lambda c=channel: holders(hub.node.hub, c) == 0, WAIT_MS / 1000,
                         f"the page to leave {channel}")
    assert holders(hub.node.hub, "book:50:BTCUSDT@okx") == 1
    await _screenshot(page, "dashboard-venues.png")

    # Back to the default venue (Bybit): no suffix; the choice is kept across a reload.
    await page.select_option("#venue", "linear")
    await _wait_full_ladder(page, "book:50:BTCUSDT")
    await eventually(lambda: holders(hub.node.hub, "ticker:BTCUSDT@okx") == 0,
                     WAIT_MS / 1000, "the page to leave ticker:BTCUSDT@okx")
    await page.select_option("#venue", "binance-spot")
    await _wait_full_ladder(page, "book:50:BTCUSDT@binance-spot")
    await page.reload()
    await _wait_full_ladder(page, "book:50:BTCUSDT@binance-spot")
    assert await page.input_value("#venue") == "binance-spot"
    assert problems.errors == []


@pytest.fixture
async def quiet_hub(tmp_path: Path) -> AsyncIterator[Hub]:
    """The dashboard's hub with the demo books quiet (a snapshot on subscribe, no deltas):
    the test publishes the venues' books itself."""
    config = tmp_path / "cryptowire.toml"
    config.touch()
    settings = load_settings(
        config, store={"url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
        bus={"url": "memory://"}, demo={"mode": "on", "interval_s": 0.05,
                                        "book_interval_s": 3600},
        demand={"linger_s": 0.05}, bybit={"enabled": False}, evm={"enabled": False},
        server={"shutdown_grace_s": 1.0})
    node = Node(settings)
    runner = web.AppRunner(create_app(node))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        assert node.store is not None
        key, _ = await node.store.create_key("dashboard", ["read", "rfq"])
        yield Hub(node, f"http://127.0.0.1:{port}", key)
    finally:
        await runner.cleanup()


async def test_the_bbo_row_names_the_best_venue_and_shows_one_in_a_gap_out(
        quiet_hub: Hub, browser: Any) -> None:
    hub = quiet_hub
    page, problems = await _open(hub, browser)
    books = {"bybit": "book:1:BTCUSDT", "binance": "book:5:BTCUSDT@binance",
             "okx": "book:1:BTCUSDT@okx"}
    await eventually(lambda: all(hub.node.demand.count(c) for c in books.values()),
                     WAIT_MS / 1000, "the bbo to hold the three venues' books")

    async def book(venue: str, kind: str, bids: list[list[str]], asks: list[list[str]],
                   ) -> None:
        await hub.node.broker.publish(Event(channel=books[venue], type=kind, source="demo",
                                            data={"symbol": "BTCUSDT", "bids": bids,
                                                  "asks": asks}))

    await book("bybit", "snapshot", [["65000.10", "1.5"]], [["65000.90", "2"]])
    await book("binance", "snapshot", [["65000.00", "3"]], [["65000.50", "0.75"]])
    await book("okx", "snapshot", [["65000.30", "0.2"]], [["65001.00", "1"]])
    await page.wait_for_function(
        "() => document.querySelector('#bbo').dataset.bidVenue === 'okx'"
        " && document.querySelector('#bbo').dataset.askVenue === 'binance'", timeout=WAIT_MS)
    row = await _bbo_matches_last_frame(page, 1)
    assert row is not None
    assert row["bid"] == ["65000.30", "0.2", "OKX"]
    assert row["ask"] == ["65000.50", "0.75", "Binance"]
    assert "Bybit 65000.10 / 65000.90" in row["venues"]

    # OKX in a gap: out of the row's best, shown out, until its next snapshot.
    await hub.node.broker.publish(Event(channel=books["okx"], type="gap", source="demo",
                                        data={"reason": "test"}))
    await page.wait_for_function(
        "() => document.querySelector('#bbo').dataset.bidVenue === 'bybit'", timeout=WAIT_MS)
    row = await _bbo_matches_last_frame(page, 1)
    assert row is not None and row["bid"] == ["65000.10", "1.5", "Bybit"]
    assert "OKX gap" in row["venues"]
    await book("okx", "snapshot", [["65000.40", "0.1"]], [["65001.00", "1"]])
    await page.wait_for_function(
        "() => document.querySelector('#bbo').dataset.bidVenue === 'okx'", timeout=WAIT_MS)
    row = await _bbo_matches_last_frame(page, 1)
    assert row is not None and row["bid"] == ["65000.40", "0.1", "OKX"]
    await _screenshot(page, "dashboard-bbo.png")
    assert problems.errors == []
