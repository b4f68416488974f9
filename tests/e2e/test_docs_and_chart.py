"""The interactive API reference at ``/docs`` and the dashboard's live numbers and candle
chart, in headless Chromium against a real hub running the demo source (fixtures and
helpers: ``test_dashboard.py``, the fixtures through ``conftest.py``)."""

from __future__ import annotations

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
