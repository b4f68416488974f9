"""Conversion rates for RFQ: from the hub's own live tickers, or a CryptoCompare-compatible
REST API.

Ticker rates consider the direct pair (``BTCETH``), the inverse (``ETHBTC``) and the cross
through USDT (``BTCUSDT`` / ``ETHUSDT``) and choose the path whose oldest leg is the freshest;
a path with a leg older than ``max_age_ms`` is stale. No path -> :class:`RateError` with the
reason; a price is never made up. When every path has a leg no source would serve (an
unknown currency), the error comes at once with the sources' refusals; "stale" is said only
when a path has all its legs priced, but too long ago. Those refusals are remembered per
symbol in a bounded map (:data:`REFUSALS_MAX` symbols, each for :data:`REFUSALS_TTL_S` after
its last use): anonymous clients can name any number of unknown pairs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Protocol

import aiohttp

from cryptowire.clock import now_ms
from cryptowire.core.channels import Channel
from cryptowire.errors import CryptowireError
from cryptowire.events import Publication
from cryptowire.tasks import KeyedLocks

log = logging.getLogger("cryptowire.sources.prices")

#: Most symbols whose refusal :class:`TickerRates` remembers; the least recently used go first.
REFUSALS_MAX = 4096
#: A remembered refusal is forgotten this long after it was last recorded or read (the
#: symbol is then tried again, as it would be anyway by the next ``prepare``).
REFUSALS_TTL_S = 300.0


class RateError(CryptowireError):
    """No usable rate; ``message`` says why (for ``offer-failed``)."""


@dataclass(frozen=True, slots=True)
class Rate:
    value: Decimal  # units of ``to`` per unit of ``from``
    ts_ms: int
    path: str


#: What one ``prepare`` took (the ticker symbols it holds); give it back to ``release``.
Hold = frozenset[str]


class RateProvider(Protocol):
    async def prepare(self, curr_from: str, curr_to: str) -> Hold:
        """Start whatever feeds the pair's rate; the caller releases exactly what it got."""

    async def release(self, hold: Hold) -> None: ...

    async def rate(self, curr_from: str, curr_to: str) -> Rate: ...

    async def close(self) -> None:
        """Release what the provider holds (HTTP sessions); the node calls it at stop."""


Acquire = Callable[[Channel], Awaitable[None]]
Release = Callable[[str], None]
Watch = Callable[[str, Callable[[Publication], None]], Awaitable[None]]


class Refusals:
    """symbol -> the source's refusal reason, bounded in size and age (an LRU with a TTL).

    At most ``max_size`` entries; one not recorded or read for ``ttl_s`` is gone. ``clock``
    (monotonic seconds) is injectable for tests.
    """

    def __init__(self, max_size: int = REFUSALS_MAX, ttl_s: float = REFUSALS_TTL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_size = max_size
        self.ttl_s = ttl_s
        self._clock = clock
        self._entries: OrderedDict[str, tuple[str, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, symbol: str) -> str | None:
        entry = self._entries.get(symbol)
        if entry is None:
            return None
        now = self._clock()
        if now - entry[1] > self.ttl_s:
            del self._entries[symbol]
            return None
        self._entries[symbol] = (entry[0], now)
        self._entries.move_to_end(symbol)
        return entry[0]

    def __setitem__(self, symbol: str, reason: str) -> None:
        now = self._clock()
        entries = self._entries
        entries[symbol] = (reason, now)
        entries.move_to_end(symbol)
        # Oldest first: drop the expired, then whatever is over the size.
        while entries:
            oldest, (_, stamp) = next(iter(entries.items()))
            if now - stamp <= self.ttl_s and len(entries) <= self.max_size:
                break
            del entries[oldest]

    def pop(self, symbol: str, default: str | None = None) -> str | None:
        entry = self._entries.pop(symbol, None)
        return default if entry is None else entry[0]


class TickerRates:
    """Rates from the hub's ``ticker:`` channels (acquired on demand, watched in-process)."""

    def __init__(self, parse: Callable[[str], Channel], acquire: Acquire, release: Release,
                 watch: Watch, unwatch: Watch, *, max_age_ms: int = 30_000,
                 quote_ccy: str = "USDT", first_tick_wait_s: float = 3.0,
                 refusals: Refusals | None = None) -> None:
        self._parse = parse
        self._acquire = acquire
        self._release = release
        self._watch = watch
        self._unwatch = unwatch
        self.max_age_ms = max_age_ms
        self.quote_ccy = quote_ccy
        self._wait_s = first_tick_wait_s
        self._prices: dict[str, tuple[Decimal, int]] = {}
        self._users: dict[str, int] = {}
        self._refused = refusals if refusals is not None else Refusals()
        self._locks = KeyedLocks()
        self._updated = asyncio.Event()

    async def close(self) -> None:
        return None  # holds nothing of its own: the hub's channels are released per hold

    def _symbols(self, a: str, b: str) -> list[str]:
        q = self.quote_ccy
        out = [f"{a}{b}", f"{b}{a}"]
        if q not in (a, b):
            out += [f"{a}{q}", f"{b}{q}"]
        return out

    def _paths(self, a: str, b: str) -> list[tuple[str, ...]]:
        """The symbols of each path from ``a`` to ``b`` (direct, inverse, cross)."""
        q = self.quote_ccy
        out: list[tuple[str, ...]] = [(f"{a}{b}",), (f"{b}{a}",)]
        if q not in (a, b):
            out.append((f"{a}{q}", f"{b}{q}"))
        return out

    def _refusals(self, a: str, b: str) -> list[str] | None:
        """The refusal reasons when no path from ``a`` to ``b`` can ever have a price (each
        has a leg a source refused and nobody holds); ``None`` when some path may."""
        reasons: list[str] = []
        for path in self._paths(a, b):
            found = [self._refused.get(s) for s in path if s not in self._users]
            refused = [r for r in found if r is not None]
            if not refused:
                return None
            reasons += [r for r in refused if r not in reasons]
        return reasons

    def _on_pub(self, pub: Publication) -> None:
        data = pub.data
        if pub.type == "gap" or not isinstance(data, dict):
            return
        price = data.get("price")
        if not isinstance(price, str):
            return
        try:
            value = Decimal(price)
        except InvalidOperation:
            return
        if value > 0:
            self._prices[str(data.get("symbol"))] = (value, pub.ts_received)
            self._updated.set()

    def _locked(self, symbol: str) -> contextlib.AbstractAsyncContextManager[None]:
        """Serialize prepare/release of one symbol: they await (acquire, watch, unwatch)
        between reading and writing its user count. The lock is dropped with its last user."""
        return self._locks.hold(symbol)

    async def prepare(self, curr_from: str, curr_to: str) -> Hold:
        """Hold every ticker that may price the pair; a symbol a source refuses is not held
        (and not released later: the hold lists only what this call took)."""
        held: set[str] = set()
        try:
            for symbol in self._symbols(curr_from, curr_to):
                async with self._locked(symbol):
                    if await self._prepare_symbol(symbol):
                        held.add(symbol)
        except BaseException:
            await self.release(frozenset(held))
            raise
        return frozenset(held)

    async def _prepare_symbol(self, symbol: str) -> bool:
        count = self._users.get(symbol, 0)
        if count:
            self._users[symbol] = count + 1
            return True
        try:
            channel = self._parse(f"ticker:{symbol}")
            await self._acquire(channel)
        except CryptowireError as exc:
            self._refused[symbol] = exc.message
            return False
        self._refused.pop(symbol, None)
        try:
            await self._watch(channel.name, self._on_pub)
        except BaseException:
            # Give back what this call took, or demand would stay held with no user.
            with contextlib.suppress(Exception):
                await self._unwatch(channel.name, self._on_pub)
            self._release(channel.name)
            raise
        self._users[symbol] = 1
        return True

    async def release(self, hold: Hold) -> None:
        for symbol in sorted(hold):
            async with self._locked(symbol):
                count = self._users.get(symbol, 0)
                if count > 1:
                    self._users[symbol] = count - 1
                elif count == 1:
                    del self._users[symbol]
                    name = self._parse(f"ticker:{symbol}").name
                    await self._unwatch(name, self._on_pub)
                    self._release(name)
                    self._prices.pop(symbol, None)

    def _best(self, a: str, b: str, now: int) -> Rate | None:
        q = self.quote_ccy
        candidates: list[tuple[int, Rate]] = []

        def leg(symbol: str) -> tuple[Decimal, int] | None:
            return self._prices.get(symbol)

        if (d := leg(f"{a}{b}")) is not None:
            candidates.append((d[1], Rate(d[0], d[1], f"{a}{b}")))
        if (i := leg(f"{b}{a}")) is not None:
            candidates.append((i[1], Rate(Decimal(1) / i[0], i[1], f"1/{b}{a}")))
        if a == q and (x := leg(f"{b}{q}")) is not None:
            candidates.append((x[1], Rate(Decimal(1) / x[0], x[1], f"1/{b}{q}")))
        if b == q and (x := leg(f"{a}{q}")) is not None:
            candidates.append((x[1], Rate(x[0], x[1], f"{a}{q}")))
        if q not in (a, b):
            fa, fb = leg(f"{a}{q}"), leg(f"{b}{q}")
            if fa is not None and fb is not None:
                ts = min(fa[1], fb[1])
                candidates.append((ts, Rate(fa[0] / fb[0], ts, f"{a}{q}/{b}{q}")))
        fresh = [c for c in candidates if now - c[0] <= self.max_age_ms]
        if not fresh:
            return None
        return max(fresh, key=lambda c: c[0])[1]

    async def rate(self, curr_from: str, curr_to: str) -> Rate:
        if curr_from == curr_to:
            return Rate(Decimal(1), now_ms(), "identity")
        refusals = self._refusals(curr_from, curr_to)
        if refusals is not None:  # waiting would not help: say why at once
            raise RateError(f"no market for {curr_from}/{curr_to}: {'; '.join(refusals)}")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait_s
        while True:
            best = self._best(curr_from, curr_to, now_ms())
            if best is not None:
                return best
            remaining = deadline - loop.time()
            if remaining <= 0:
                break
            self._updated.clear()
            try:
                await asyncio.wait_for(self._updated.wait(), remaining)
            except TimeoutError:
                break
        if any(all(s in self._prices for s in path)
               for path in self._paths(curr_from, curr_to)):
            raise RateError(f"rate for {curr_from}/{curr_to} is stale (older than "
                            f"{self.max_age_ms // 1000} s)")
        raise RateError(f"no live market for {curr_from}/{curr_to} (tried direct, inverse "
                        f"and cross through {self.quote_ccy})")


class CryptoCompareRates:
    """``GET {base}/data/price?fsym=A&tsyms=B`` -> ``{"B": 15.87}``; errors come with HTTP
    200 as ``{"Response":"Error","Message":...}``. Numbers are parsed as ``Decimal``."""

    def __init__(self, base_url: str, *, api_key: str | None = None,
                 timeout_s: float = 5.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def prepare(self, curr_from: str, curr_to: str) -> Hold:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self._timeout)
        return frozenset()

    async def release(self, hold: Hold) -> None:
        return None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def rate(self, curr_from: str, curr_to: str) -> Rate:
        await self.prepare(curr_from, curr_to)
        assert self._session is not None
        headers = {"authorization": f"Apikey {self._api_key}"} if self._api_key else {}
        try:
            async with self._session.get(f"{self.base_url}/data/price",
                                         params={"fsym": curr_from, "tsyms": curr_to},
                                         headers=headers) as resp:
                text = await resp.text()
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RateError(f"price API unreachable ({exc.__class__.__name__})") from exc
        if status != 200:
            raise RateError(f"price API answered HTTP {status}")
        try:
            body = json.loads(text, parse_float=Decimal)
        except ValueError as exc:
            raise RateError("price API answered with invalid JSON") from exc
        if not isinstance(body, dict):
            raise RateError("price API answered with an unexpected shape")
        if body.get("Response") == "Error":
            raise RateError(str(body.get("Message") or "price API error"))
        value = body.get(curr_to)
        if isinstance(value, int | Decimal) and not isinstance(value, bool) and value > 0:
            return Rate(Decimal(value), now_ms(), "cryptocompare")
        raise RateError(f"price API has no {curr_to} price for {curr_from}")
