"""Which symbols Bybit lists, so an unknown symbol is refused with a reason before any
subscribe goes upstream.

``GET {rest_url}/v5/market/instruments-info?category=linear|spot&limit=1000`` (docs:
v5/market/instrument) answers ``{"retCode":0,"retMsg":"OK","result":{"category":..,
"list":[{"symbol":..,"status":"Trading",..}],"nextPageCursor":".."}}``; pages are followed by
``cursor=<nextPageCursor>`` until it is empty. The list is fetched at first use and cached.
When the call fails the catalog says "unknown" and the source relies on the upstream's
subscribe ack instead (Bybit refuses a topic of an unlisted symbol).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson

from cryptowire.errors import SourceError
from cryptowire.sources.bybit.topics import Category

_log = logging.getLogger("cryptowire.sources.bybit")

PATH = "/v5/market/instruments-info"


class InstrumentsUnavailable(Exception):
    """The instruments list could not be fetched (network, HTTP status, retCode, shape)."""


class InstrumentCatalog:
    """Bybit's listed symbols per category, fetched lazily and cached for ``ttl_s``.

    A failed fetch is not retried for ``retry_s``, so a REST outage costs one timeout, not one
    per subscribe.
    """

    def __init__(
        self,
        rest_url: str,
        *,
        ttl_s: float = 3600.0,
        retry_s: float = 60.0,
        timeout_s: float = 5.0,
        max_pages: int = 50,
    ) -> None:
        self.rest_url = rest_url.rstrip("/")
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self._symbols: dict[str, dict[str, str]] = {}
        self._fetched_at: dict[str, float] = {}
        self._failed_at: dict[str, float] = {}
        self._last_error: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def check(self, session: aiohttp.ClientSession, category: Category, symbol: str) -> None:
        """Raise :class:`SourceError` when the list is known and refuses ``symbol``; return
        when the symbol is listed or the list cannot be had (the ack decides then)."""
        symbols = await self.symbols(session, category)
        if symbols is None:
            return
        status = symbols.get(symbol)
        if status is None:
            raise SourceError(
                f"Unknown symbol '{symbol}' on Bybit {category}. Use a symbol Bybit lists for "
                f"{category} (e.g. BTCUSDT)"
                + (", or add @spot for a spot pair." if category == "linear" else ".")
            )
        if status == "Closed":
            raise SourceError(f"Symbol '{symbol}' on Bybit {category} is closed (not trading).")

    async def symbols(
        self, session: aiohttp.ClientSession, category: Category
    ) -> dict[str, str] | None:
        """``{symbol: status}`` for ``category``, or ``None`` when it cannot be fetched."""
        lock = self._locks.setdefault(category, asyncio.Lock())
        async with lock:
            now = time.monotonic()
            fetched = self._fetched_at.get(category)
            if fetched is not None and now - fetched < self.ttl_s:
                return self._symbols[category]
            failed = self._failed_at.get(category)
            if failed is not None and now - failed < self.retry_s:
                return self._symbols.get(category)
            try:
                symbols = await self._fetch(session, category)
            except InstrumentsUnavailable as exc:
                self._failed_at[category] = time.monotonic()
                self._last_error[category] = str(exc)
                _log.warning(
                    "bybit %s: instruments list unavailable (%s); relying on subscribe acks",
                    category,
                    exc,
                )
                return self._symbols.get(category)
            self._symbols[category] = symbols
            self._fetched_at[category] = time.monotonic()
            self._failed_at.pop(category, None)
            self._last_error.pop(category, None)
            _log.info("bybit %s: %d instruments listed", category, len(symbols))
            return symbols

    def status(self) -> dict[str, Any]:
        """Per category: how many symbols are known and the last fetch error."""
        return {
            category: {
                "symbols": len(self._symbols.get(category, {})),
                "error": self._last_error.get(category),
            }
            for category in sorted(set(self._symbols) | set(self._last_error))
        }

    async def _fetch(self, session: aiohttp.ClientSession, category: Category) -> dict[str, str]:
        url = self.rest_url + PATH
        symbols: dict[str, str] = {}
        cursor = ""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        for _ in range(self.max_pages):
            params = {"category": category, "limit": "1000"}
            if cursor:
                params["cursor"] = cursor
            try:
                async with session.get(url, params=params, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise InstrumentsUnavailable(f"HTTP {resp.status} from {url}")
                    body = orjson.loads(await resp.read())
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                raise InstrumentsUnavailable(f"{type(exc).__name__}: {exc}") from exc
            page, cursor = _page(body)
            symbols.update(page)
            if not cursor:
                return symbols
        raise InstrumentsUnavailable(f"more than {self.max_pages} pages of instruments")


def _page(body: Any) -> tuple[dict[str, str], str]:
    """The ``{symbol: status}`` of one response page and its ``nextPageCursor``."""
    if not isinstance(body, dict):
        raise InstrumentsUnavailable("response is not a JSON object")
    if body.get("retCode") != 0:
        raise InstrumentsUnavailable(f"retCode {body.get('retCode')}: {body.get('retMsg')}")
    result = body.get("result")
    items = result.get("list") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not isinstance(items, list):
        raise InstrumentsUnavailable("response has no result.list")
    page: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("symbol"), str):
            status = item.get("status")
            page[item["symbol"]] = status if isinstance(status, str) else "Trading"
    cursor = result.get("nextPageCursor")
    return page, cursor if isinstance(cursor, str) else ""
