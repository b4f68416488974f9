"""The web dashboard at ``/`` in real headless Chromium (Debian's ``chromium`` driven by
Playwright for Python, ``../shared/TESTING.md``) against a real hub running the demo source.

The page is opened with ``?api_key=`` of a read+rfq key; the test watches tickers update, a
swap arrive, a quote appear and get filled, the stats and the DEMO badge, and both sockets
come back after the hub closed every session. Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy import select

from cryptowire.app.node import Node
from cryptowire.server.app import create_app
from cryptowire.settings import load_settings
from cryptowire.store.rfq import rfq_trades

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = Path(os.environ.get("CRYPTOWIRE_TEST_ARTIFACTS", ROOT / "test-artifacts"))
CHROMIUM = os.environ.get("CRYPTOWIRE_TEST_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic",
               "--no-first-run", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--disable-default-apps",
               "--disable-extensions"]
WAIT_MS = 10_000
DECIMAL = re.compile(r"^\d+\.\d+$")


def _unavailable(reason: str) -> None:
    """Under CI a missing browser is a failure; on a laptop, a skip with the reason."""
    if os.environ.get("CI") == "true":
        pytest.fail(reason)
    pytest.skip(reason)


@dataclass
class Hub:
    node: Node
    base: str
    key: str


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    config = tmp_path / "cryptowire.toml"
    config.touch()
    settings = load_settings(
        config,
        store={"url": f"sqlite+aiosqlite:///{tmp_path / 'hub.db'}"},
        bus={"url": "memory://"},
        demo={"mode": "on", "interval_s": 0.05},
        demand={"linger_s": 0.05},
        bybit={"enabled": False},
        evm={"enabled": False},
        rfq={"interval_s": 0.3},
        server={"shutdown_grace_s": 1.0},
    )
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


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _unavailable("Playwright for Python is not installed (pip install -e '.[dev]')")
    if not (Path(CHROMIUM).is_file() or shutil.which(CHROMIUM)):
        _unavailable(f"Chromium not found at {CHROMIUM} (make browser installs it)")
    async with async_playwright() as p:
        chromium = await p.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=LAUNCH_ARGS)
        try:
            yield chromium
        finally:
            await chromium.close()


class PageProblems:
    """Console errors, uncaught exceptions and CSP violations seen by a page."""

    def __init__(self, page: Any) -> None:
        self.errors: list[str] = []
        page.on("console", self._console)
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))

    def _console(self, msg: Any) -> None:
        if msg.type == "error" or "Content Security Policy" in msg.text:
            self.errors.append(f"console: {msg.text}")


async def _count(page: Any, selector: str) -> int:
    return int(await page.locator(selector).get_attribute("data-count") or 0)


async def _wait_count_above(page: Any, selector: str, floor: int) -> None:
    await page.wait_for_function(
        "([sel, floor]) => Number(document.querySelector(sel).dataset.count) > floor",
        arg=[selector, floor], timeout=WAIT_MS)


async def _screenshot(page: Any, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    await page.screenshot(path=str(path), full_page=True)
    return path


async def test_dashboard_live_data_quote_accept_and_reconnect(hub: Hub, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1400, "height": 900})
    problems = PageProblems(page)
    await page.goto(f"{hub.base}/?api_key={hub.key}")
    await page.wait_for_selector("#conn-ws[data-state=open]", timeout=WAIT_MS)
    await page.wait_for_selector("#conn-rfq[data-state=open]", timeout=WAIT_MS)

    # Tickers: the default rows fill in and keep updating; prices are the hub's strings.
    await _wait_count_above(page, "#ticker-updates", 5)
    btc = page.locator("#tickers tr[data-symbol=BTCUSDT]")
    await btc.locator("td.price").filter(has_text=DECIMAL).wait_for(timeout=WAIT_MS)
    first = await btc.locator("td.price").inner_text()
    before = int(await btc.locator("td").nth(4).inner_text())
    await page.wait_for_function(
        "([p, n]) => { const tr = document.querySelector('#tickers tr[data-symbol=BTCUSDT]');"
        " return tr.querySelector('td.price').textContent !== p"
        " || Number(tr.cells[5].textContent) > n; }",
        arg=[first, before + 3], timeout=WAIT_MS)
    price = await btc.locator("td.price").inner_text()
    assert re.fullmatch(r"\d+\.\d{2}", price), price  # the demo's 0.01 tick, never a float
    assert await btc.get_attribute("data-state") == "live"
    bid = await btc.locator("td").nth(2).inner_text()
    assert DECIMAL.match(bid) and (await btc.locator("td").nth(1).inner_text()).endswith("%")

    # Add a symbol, add one the demo market does not quote (rejected with the reason),
    # remove one.
    await page.fill("#symbol-input", "ethbtc")
    await page.press("#symbol-input", "Enter")
    ethbtc = page.locator("#tickers tr[data-symbol=ETHBTC]")
    await ethbtc.locator("td.price").filter(has_text=DECIMAL).wait_for(timeout=WAIT_MS)
    await page.fill("#symbol-input", "NOPEUSDT")
    await page.click("#add-symbol button[type=submit]")
    nope = page.locator("#tickers tr[data-symbol=NOPEUSDT]")
    await nope.locator(".reason").wait_for(timeout=WAIT_MS)
    assert "NOPEUSDT" in await nope.locator(".reason").inner_text()
    await page.click("#tickers tr[data-symbol=SOLUSDT] button.remove")
    assert await page.locator("#tickers tr[data-symbol=SOLUSDT]").count() == 0

    # Swaps and burns on the demo chain.
    await page.locator("#feed tr[data-kind=swap]").first.wait_for(timeout=WAIT_MS)
    swap_amount = await page.locator("#feed tr[data-kind=swap] td.num").first.inner_text()
    assert re.fullmatch(r"\d+(\.\d+)?", swap_amount), swap_amount

    # Stats and the DEMO badge.
    # (the first poll may predate the sockets: /stats is polled every few seconds)
    await page.wait_for_function(
        "() => /^2 \\(total \\d+\\)$/.test("
        "document.querySelector('#stat-connections').textContent)", timeout=WAIT_MS)
    assert int(await page.inner_text("#stat-messages-out")) > 0
    assert await page.locator("#demo-badge").is_visible()
    assert await page.inner_text("#demo-badge") == "DEMO DATA"
    assert await page.locator("#sources tr", has_text="demo").count() == 1

    # RFQ: an amount gives a live offer with a countdown; Accept fills it.
    await page.fill("#rfq-amount", "2.5")
    await page.wait_for_selector("#rfq-offer[data-state=live]", timeout=WAIT_MS)
    amount_to = await page.inner_text("#offer-amount-to")
    assert re.fullmatch(r"\d+\.\d{2}", amount_to), amount_to
    # the rate: at least 2 decimals, up to 8 significant digits (rfq.display_decimals)
    assert re.fullmatch(r"1 BTC = \d+\.\d{2,6} ETH", await page.inner_text("#offer-rate"))
    assert await page.inner_text("#offer-commission") == "1%"
    assert re.fullmatch(r"\d+\.\d s", await page.inner_text("#offer-countdown"))
    await _screenshot(page, "dashboard-offer.png")
    await page.click("#rfq-accept")
    result = page.locator("#rfq-result[data-kind=success]")
    await result.wait_for(timeout=WAIT_MS)
    text = await result.inner_text()
    assert "orderSuccess" in text and "2.5 BTC" in text and "paper" in text
    assert hub.node.store is not None
    async with hub.node.store.engine.connect() as conn:
        rows = (await conn.execute(select(rfq_trades))).all()
    assert len(rows) == 1
    trade = rows[0]._mapping
    assert trade["amount_from"] == "2.5" and trade["amount_to"] in text  # full precision shown
    await _screenshot(page, "dashboard.png")

    # The hub closes every session: both sockets come back by themselves, data flows again,
    # and the converter quotes again on the new /rfq connection.
    await page.evaluate("""() => {
        window.__states = [];
        for (const id of ['conn-ws', 'conn-rfq']) {
            const el = document.getElementById(id);
            new MutationObserver(() => window.__states.push(id + ':' + el.dataset.state))
                .observe(el, {attributes: true, attributeFilter: ['data-state']});
        }
    }""")
    updates = await _count(page, "#ticker-updates")
    hub.node.hub.close_all(1001, "test")
    await page.wait_for_function(
        "() => ['conn-ws', 'conn-rfq'].every(id =>"
        " window.__states.includes(id + ':reconnecting')"
        " && document.getElementById(id).dataset.state === 'open')", timeout=WAIT_MS)
    await _wait_count_above(page, "#ticker-updates", updates + 5)
    await page.wait_for_selector("#rfq-offer[data-state=live]", timeout=WAIT_MS)
    for _ in range(50):
        if len(hub.node.hub.sessions) == 2:
            break
        await asyncio.sleep(0.1)
    assert len(hub.node.hub.sessions) == 2  # one /ws and one /rfq, no leaked extra sockets
    await _screenshot(page, "dashboard-reconnected.png")
    assert problems.errors == []


async def test_anonymous_page_quotes_but_cannot_accept(hub: Hub, browser: Any) -> None:
    page = await browser.new_page(viewport={"width": 1000, "height": 800})
    problems = PageProblems(page)
    await page.goto(hub.base + "/")
    assert await page.inner_text("#key-info") == "anonymous"
    await page.wait_for_selector("#conn-rfq[data-state=open]", timeout=WAIT_MS)
    await page.fill("#rfq-from", "eth")
    await page.fill("#rfq-to", "usdt")
    await page.fill("#rfq-amount", "1")
    await page.wait_for_selector("#rfq-offer[data-state=live]", timeout=WAIT_MS)
    await page.click("#rfq-accept")
    failed = page.locator("#rfq-result[data-kind=failed]")
    await failed.wait_for(timeout=WAIT_MS)
    assert "rfq' scope" in await failed.inner_text()
    # something that is not an amount stops quoting and says why
    await page.fill("#rfq-amount", "abc")
    await page.wait_for_selector("#rfq-offer[data-state=idle]", timeout=WAIT_MS)
    assert "positive number" in await page.inner_text("#rfq-status")
    await _screenshot(page, "dashboard-anonymous.png")
    assert problems.errors == []


async def test_page_and_assets_are_served_with_types_and_csp(hub: Hub) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(hub.base + "/") as resp:
            assert resp.status == 200
            assert resp.headers["Content-Type"].startswith("text/html")
            csp = resp.headers["Content-Security-Policy"]
            page = await resp.text()
        host = hub.base.removeprefix("http://")
        assert "default-src 'self'" in csp and "script-src 'self'" in csp
        assert f"connect-src 'self' ws://{host} wss://{host}" in csp
        assert "unsafe" not in csp and "http:" not in csp.replace(f"ws://{host}", "")
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        # everything the page loads comes from this hub (a plain <a> link is not a load:
        # the chart's attribution links to tradingview.com)
        for ref in re.findall(r'<(?:script|link|img)[^>]* (?:src|href)="([^"]+)"', page):
            assert ref.startswith("/"), ref
        assert re.findall(r'<a [^>]*href="(https?:[^"]+)"', page) == \
            ["https://www.tradingview.com/"]
        for name, ctype in [("app.js", "text/javascript"), ("style.css", "text/css"),
                            ("favicon.svg", "image/svg+xml"), ("chart.js", "text/javascript"),
                            ("book.js", "text/javascript"),
                            ("vendor/lightweight-charts.standalone.production.js",
                             "text/javascript")]:
            async with http.get(f"{hub.base}/static/{name}") as resp:
                assert resp.status == 200, name
                assert resp.headers["Content-Type"].startswith(ctype), name
                assert "Content-Security-Policy" in resp.headers
        for bad in ["/static/nope.js", "/static/index.html", "/static/..%2Fserver%2Fweb.py",
                    "/static/docs.html", "/static/vendor/README.md",
                    "/static/vendor/swagger-ui-bundle.js.LICENSE.txt"]:
            async with http.get(hub.base + bad) as resp:
                assert resp.status == 404, bad
        for name in ("app.js", "book.js"):
            async with http.get(f"{hub.base}/static/{name}") as resp:
                script = await resp.text()
            assert "parseFloat" not in script and "toFixed(2)" not in script, name
        async with http.get(hub.base + "/api/v1/info") as resp:
            info = await resp.json()
        assert info["dashboard"] == "/" and info["websocket"] == "/ws" and info["demo"] is True
