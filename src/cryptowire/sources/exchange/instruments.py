"""Which symbols each market lists, so an unknown symbol is refused with a reason before any
subscribe goes upstream.

Each market declares its list (:class:`~.venue.Instruments`: the request of a page and the
parser of its body). The list is fetched at first use and cached for ``ttl_s``; a failed
fetch is not retried for ``retry_s`` (a REST outage costs one timeout, not one per
subscribe), and meanwhile the catalog says "unknown" and the venue's subscribe ack decides.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp
import orjson

from cryptowire.errors import SourceError
from cryptowire.sources.exchange.venue import Market, Venue


class InstrumentsUnavailable(Exception):
    """The instruments list could not be fetched (network, HTTP status, body)."""


class InstrumentCatalog:
    """The listed symbols (canonical, e.g. ``BTCUSDT``) of every market of one venue."""

    def __init__(self, venue: Venue, *, ttl_s: float = 3600.0, retry_s: float = 60.0,
                 timeout_s: float = 5.0, max_pages: int = 50) -> None:
        self.venue = venue
        self.ttl_s = ttl_s
        self.retry_s = retry_s
        self.timeout_s = timeout_s
        self.max_pages = max_pages
        self._log = logging.getLogger(f"cryptowire.sources.{venue.name}")
        self._symbols: dict[str, dict[str, str]] = {}
        self._fetched_at: dict[str, float] = {}
        self._failed_at: dict[str, float] = {}
        self._last_error: dict[str, str] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def check(self, session: aiohttp.ClientSession, market: Market, symbol: str) -> None:
        """Raise :class:`SourceError` when the list is known and refuses ``symbol``; return
        when the symbol is listed or the list cannot be had (the ack decides then)."""
        symbols = await self.symbols(session, market)
        if symbols is None:
            return
        status = symbols.get(symbol)
        title, label = self.venue.title, market.label
        if status is None:
            raise SourceError(f"Unknown symbol '{symbol}' on {title} {label}. Use a symbol "
                              f"{title} lists for {label} (e.g. BTCUSDT){market.unknown_hint}")
        if market.instruments is not None and status in market.instruments.closed:
            raise SourceError(f"Symbol '{symbol}' on {title} {label} is {status.lower()} "
                              "(not trading).")

    async def symbols(self, session: aiohttp.ClientSession,
                      market: Market) -> dict[str, str] | None:
        """``{symbol: status}`` of ``market``, or ``None`` when it cannot be fetched."""
        if market.instruments is None:
            return None
        key = market.key
        async with self._locks.setdefault(key, asyncio.Lock()):
            now = time.monotonic()
            fetched = self._fetched_at.get(key)
            if fetched is not None and now - fetched < self.ttl_s:
                return self._symbols[key]
            failed = self._failed_at.get(key)
            if failed is not None and now - failed < self.retry_s:
                return self._symbols.get(key)
            try:
                symbols = await self._fetch(session, market)
            except InstrumentsUnavailable as exc:
                self._failed_at[key] = time.monotonic()
                self._last_error[key] = str(exc)
                self._log.warning("%s %s: instruments list unavailable (%s); relying on "
                                  "subscribe acks", self.venue.name, key, exc)
                return self._symbols.get(key)
            self._symbols[key] = symbols
            self._fetched_at[key] = time.monotonic()
            self._failed_at.pop(key, None)
            self._last_error.pop(key, None)
            self._log.info("%s %s: %d instruments listed", self.venue.name, key, len(symbols))
            return symbols

    def status(self) -> dict[str, Any]:
        """Per market: how many symbols are known and the last fetch error."""
        return {
            key: {"symbols": len(self._symbols.get(key, {})), "error": self._last_error.get(key)}
            for key in sorted(set(self._symbols) | set(self._last_error))
        }

    async def _fetch(self, session: aiohttp.ClientSession, market: Market) -> dict[str, str]:
        spec = market.instruments
        assert spec is not None
        symbols: dict[str, str] = {}
        cursor = ""
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        for _ in range(self.max_pages):
            path, params = spec.request(cursor)
            url = market.rest_url.rstrip("/") + path
            try:
                async with session.get(url, params=params, timeout=timeout) as resp:
                    if resp.status != 200:
                        raise InstrumentsUnavailable(f"HTTP {resp.status} from {url}")
                    body = orjson.loads(await resp.read())
                page, cursor = spec.parse(body)
            except (aiohttp.ClientError, TimeoutError, orjson.JSONDecodeError) as exc:
                raise InstrumentsUnavailable(f"{type(exc).__name__}: {exc}") from exc
            except (ValueError, KeyError, TypeError) as exc:
                raise InstrumentsUnavailable(str(exc)) from exc
            for native, status in page.items():
                if (symbol := market.from_native(native)) is not None:
                    symbols[symbol] = status
            if not cursor:
                return symbols
        raise InstrumentsUnavailable(f"more than {self.max_pages} pages of instruments")
