"""The interactive API reference at ``/docs`` and the dashboard's live numbers and candle
chart, in headless Chromium against a real hub running the demo source (fixtures and
helpers: ``test_dashboard.py``, the fixtures through ``conftest.py``)."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest
from tests.e2e.test_dashboard import WAIT_MS, Hub, PageProblems, _screenshot

from cryptowire.server.openapi import document

pytestmark = pytest.mark.integration


async def test_docs_is_an_interactive_reference_served_offline(hub: Hub, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    problems = PageProblems(page)
    foreign: list[str] = []
    page.on("request", lambda req: None if req.url.startswith(hub.base)
            else foreign.append(req.url))
    await page.goto(f"{hub.base}/docs")
    # Swagger UI renders the document: the title, the version, and the operations.
    await page.locator(".swagger-ui .info .title", has_text="cryptowire").wait_for(
        timeout=WAIT_MS)
    publish = page.locator(".opblock-post", has=page.locator(
        ".opblock-summary-path", has_text="/api/v1/publish"))
    await publish.wait_for(timeout=WAIT_MS)
    operations = sum(len(ops) for ops in document()["paths"].values())
    assert await page.locator(".opblock").count() == operations
    # Open the operation: its request body example and its response example are shown.
    await publish.locator(".opblock-summary").click()
    body = publish.locator(".opblock-body")
    await body.locator(".responses-table").wait_for(timeout=WAIT_MS)
    text = await body.inner_text()
    assert "app:signals" in text  # the request body example
    assert '"published": 1' in text  # the 200 response example
    assert "LIMIT_EXCEEDED" in text  # the 413 example
    # /health documents the 200/503 rule.
    health = page.locator(".opblock-get", has=page.locator(
        ".opblock-summary-path", has_text="/health"))
    await health.locator(".opblock-summary").click()
    await health.locator(".responses-table").wait_for(timeout=WAIT_MS)
    assert "cannot serve what it is configured to serve" in await health.inner_text()
    await _screenshot(page, "docs.png")
    assert foreign == []  # nothing from a CDN or elsewhere
    assert problems.errors == []


# Before the page's script runs: every socket of the page records its data frames (the last
# one per channel, and every kline frame), before the page's own handler sees them, so one
# evaluate() reads a rendered cell together with the frame it came from.
CAPTURE = """(() => {
    const Native = window.WebSocket;
    window.__last = {};
    window.__klines = [];
    window.WebSocket = class extends Native {
        constructor(...args) {
            super(...args);
            this.addEventListener('message', (event) => {
                let msg;
                try { msg = JSON.parse(event.data); } catch (err) { return; }
                if (typeof msg.channel !== 'string' || msg.data === undefined) return;
                window.__last[msg.channel] = msg;
                if (msg.channel.startsWith('kline:')) window.__klines.push(msg);
            });
        }
    };
})();"""


def _percent_of(cell: str) -> Decimal:
    assert cell.endswith("%"), cell
    return Decimal(cell[:-1])


async def test_24h_cell_shows_the_frames_percent(hub: Hub, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    problems = PageProblems(page)
    await page.add_init_script(CAPTURE)
    await page.goto(f"{hub.base}/?api_key={hub.key}")
    await page.fill("#symbol-input", "ETHBTC")
    await page.press("#symbol-input", "Enter")
    symbols = ["BTCUSDT", "ETHUSDT", "SOLUSDT", "ETHBTC"]
    # Wait until every row shows a change that is not zero (the demo starts at 0 %).
    await page.wait_for_function(
        """(symbols) => symbols.every((s) => {
            const f = window.__last['ticker:' + s];
            const tr = document.querySelector(`#tickers tr[data-symbol="${s}"]`);
            return f && tr && /[1-9]/.test(f.data.change24hPercent)
                && tr.cells[2].textContent.endsWith('%');
        })""", arg=symbols, timeout=WAIT_MS)
    for _ in range(3):  # a few separate moments, each cell read with its frame, atomically
        seen = await page.evaluate(
            """(symbols) => symbols.map((s) => {
                const tr = document.querySelector(`#tickers tr[data-symbol="${s}"]`);
                return [s, tr.cells[2].textContent, tr.cells[2].className,
                        window.__last['ticker:' + s].data.change24hPercent];
            })""", symbols)
        for symbol, cell, css, frame in seen:
            # the frame carries a percent ("-0.0967" is -0.0967 %): shown as such, signed
            assert _percent_of(cell) == Decimal(frame), (symbol, cell, frame)
            expected = frame if frame.startswith("-") else f"+{frame}"
            assert cell == f"{expected}%" or Decimal(frame) == 0, (symbol, cell, frame)
            assert ("neg" if frame.startswith("-") else "pos") in css or Decimal(frame) == 0
            assert abs(_percent_of(cell)) < 5, (symbol, cell)  # a demo walk, not x100
        await page.wait_for_function(
            "(n) => Number(document.querySelector('#ticker-updates').dataset.count) > n",
            arg=int(await page.get_attribute("#ticker-updates", "data-count") or 0) + 8,
            timeout=WAIT_MS)
    assert problems.errors == []


async def _canvas_signature(page: Any) -> dict[str, Any]:
    """How many pixels of the chart's canvases are painted, in how many colours, and a
    fingerprint of them (sampled), read in the page."""
    return await page.evaluate("""() => {
        let painted = 0, hash = 0;
        const colours = new Set();
        for (const canvas of document.querySelectorAll('#chart canvas')) {
            if (!canvas.width || !canvas.height) continue;
            const px = canvas.getContext('2d').getImageData(0, 0, canvas.width,
                                                            canvas.height).data;
            for (let i = 0; i < px.length; i += 4) {
                if (px[i + 3] === 0) continue;
                painted += 1;
                const c = (px[i] << 16) | (px[i + 1] << 8) | px[i + 2];
                if (colours.size < 64) colours.add(c);
                hash = (hash * 31 + c + i) | 0;
            }
        }
        return {painted, colours: colours.size, hash};
    }""")


async def test_candle_chart_draws_and_moves_with_live_klines(hub: Hub, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1300, "height": 900})
    problems = PageProblems(page)
    await page.add_init_script(CAPTURE)
    await page.goto(f"{hub.base}/?api_key={hub.key}")
    # The first row is charted at 1m: the kline channel is subscribed, candles are drawn.
    chart = page.locator("#chart")
    await page.wait_for_function(
        "() => Number(document.querySelector('#chart').dataset.updates) >= 3",
        timeout=WAIT_MS)
    assert await page.inner_text("#chart-symbol") == "BTCUSDT · 1m"
    assert await page.get_attribute("#tickers tr[data-symbol=BTCUSDT]", "data-selected")
    first = await _canvas_signature(page)
    assert first["painted"] > 1000 and first["colours"] >= 3, first  # axes, grid, a candle
    # The legend shows the last kline frame's exact strings.
    frame = (await page.evaluate("() => window.__klines.at(-1)"))
    assert frame["channel"] == "kline:1m:BTCUSDT"
    legend = await page.inner_text("#chart-legend")
    data = frame["data"]
    assert f"C {data['close']}" in legend or await chart.get_attribute("data-updates") != "3"
    # Live klines move the chart: more updates, a different close, a repainted canvas.
    updates = int(await chart.get_attribute("data-updates") or 0)
    await page.wait_for_function(
        """([n]) => Number(document.querySelector('#chart').dataset.updates) > n + 5""",
        arg=[updates], timeout=WAIT_MS)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_MS / 1000
    while (await _canvas_signature(page))["hash"] == first["hash"]:
        assert loop.time() < deadline, "the chart did not repaint with live klines"
        await page.wait_for_timeout(100)
    closes = {k["data"]["close"] for k in await page.evaluate("() => window.__klines")}
    assert len(closes) > 1  # the candle moved
    last = await page.evaluate("() => window.__klines.at(-1).data.close")
    await page.wait_for_function(
        "(close) => document.querySelector('#chart').dataset.close === close", arg=last,
        timeout=WAIT_MS)
    await _screenshot(page, "dashboard-chart.png")

    # An interval button: the chart moves to kline:5m:BTCUSDT, the 1m channel is left.
    await page.click("#chart-intervals button[data-interval='5m']")
    assert await page.get_attribute("#chart-intervals button[data-interval='5m']",
                                    "aria-pressed") == "true"
    await page.wait_for_function(
        "() => window.__klines.some((k) => k.channel === 'kline:5m:BTCUSDT')"
        " && Number(document.querySelector('#chart').dataset.updates) > 0", timeout=WAIT_MS)
    await _wait_channels(hub, present="kline:5m:BTCUSDT", absent="kline:1m:BTCUSDT")
    # Another row: its candles at the chosen interval.
    await page.click("#tickers tr[data-symbol=ETHUSDT] td.price")
    assert await page.inner_text("#chart-symbol") == "ETHUSDT · 5m"
    await page.wait_for_function(
        "() => window.__klines.some((k) => k.channel === 'kline:5m:ETHUSDT')"
        " && Number(document.querySelector('#chart').dataset.updates) > 0", timeout=WAIT_MS)
    await _wait_channels(hub, present="kline:5m:ETHUSDT", absent="kline:5m:BTCUSDT")
    assert " C 3" in await page.inner_text("#chart-legend")  # ETH's price, not BTC's
    assert (await _canvas_signature(page))["painted"] > 1000
    assert problems.errors == []


async def _wait_channels(hub: Hub, *, present: str, absent: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + WAIT_MS / 1000
    while True:
        counts = hub.node.hub.channel_counts()
        if counts.get(present) and not counts.get(absent):
            return
        assert loop.time() < deadline, counts
        await asyncio.sleep(0.05)
