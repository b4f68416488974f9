"""A pool of JSON-RPC URLs for one chain: rotate per call, bench what fails, report health.

Every call goes to the next URL in rotation that is not benched. A URL that errors at the
transport level, times out, answers HTTP 429 (or a JSON-RPC rate-limit error) is benched for
a capped, jittered, doubling period and the call is retried on the next URL, so the caller
sees one answer or :class:`RpcUnavailable` after every URL was tried twice. A provider that
says the log range is too large is not the URL's fault: :class:`RangeTooLarge` goes back to
the watcher, which halves its range.

Calls use web3.py's ``AsyncWeb3`` over one shared aiohttp session (keep-alive) per pool;
web3's own retries are off, the pool does them.

RPC URLs often carry a provider key (``https://eth-mainnet.g.alchemy.com/v2/<key>``,
``?apikey=``, ``user:pass@``), so a URL is never shown as configured: ``/stats``,
``/metrics``, the ``service:rpc_nodes`` / ``service:pool_manager`` payloads and the logs show
:func:`rpc_label` (``#<position> <redact_url(url)>``, e.g. ``#1 https://eth.llamarpc.com``,
``#2 https://eth-mainnet.g.alchemy.com/***``), and error texts are scrubbed of the URL's
secret parts (:func:`scrub_url`). See :func:`redact_url` for the rule.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl, urlsplit

import aiohttp
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3RPCError

from cryptowire.backoff import backoff_ceiling, backoff_delay
from cryptowire.errors import SourceError
from cryptowire.redaction import REDACTED, redact_url

log = logging.getLogger("cryptowire.sources.evm.rpc")

T = TypeVar("T")

# Phrases providers use when an eth_getLogs range or result set is too large (Alchemy,
# Infura, QuickNode, BSC dataseed, Ankr...).
_RANGE_PHRASES = (
    "block range", "range too large", "too many", "more than", "exceed", "limit exceeded",
    "response size", "query returned",
)
_RATE_PHRASES = ("rate limit", "too many requests", "request limit", "capacity")
_RATE_CODES = (-32005, -32029, -32090, 429)


def rpc_label(index: int, url: str) -> str:
    """How an RPC URL is named outside the process: its 1-based position in the chain's
    ``rpc_urls`` and its redacted form, e.g. ``#2 https://eth-mainnet.g.alchemy.com/***``
    (two URLs of one provider stay apart)."""
    return f"#{index} {redact_url(url)}"


def _whole_forms(url: str) -> list[str]:
    return sorted({url, url.strip(), url.strip().rstrip("/")} - {""}, key=len, reverse=True)


def _secret_parts(url: str) -> list[str]:
    """The pieces of ``url`` that may carry a key (user-info, password, path, query,
    fragment, and their long segments and values), longest first. Short pieces (``/v2``, a
    user name) are left alone: replacing them would garble unrelated text."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return []
    needles = {parts.netloc.rpartition("@")[0], parts.password or ""}
    if parts.path not in ("", "/"):
        needles.add(parts.path)
        needles.update(seg for seg in parts.path.split("/") if len(seg) >= 8)
    for piece in (parts.query, parts.fragment):
        needles.add(piece)
        needles.update(v for _, v in parse_qsl(piece, keep_blank_values=True) if len(v) >= 8)
    return sorted((n for n in needles if len(n) >= 6), key=len, reverse=True)


def scrub_url(text: str, url: str, label: str | None = None) -> str:
    """``text`` (an error message, a log line) with ``url`` replaced by ``label`` (default
    :func:`redact_url`) and then any of its secret parts (user-info, path, query) by ``***``."""
    return _scrub(text, {url: label if label is not None else redact_url(url)})


def _scrub(text: str, urls: Mapping[str, str]) -> str:
    """Every URL of ``urls`` (URL -> what to show instead) out of ``text``: the whole URLs
    first, then their secret parts."""
    for url, shown in urls.items():
        for whole in _whole_forms(url):
            if whole in text:
                text = text.replace(whole, shown)
    for url in urls:
        for part in _secret_parts(url):
            if part in text:
                text = text.replace(part, REDACTED)
    return text


def public_rpc_entry(entry: Mapping[str, Any], position: int) -> dict[str, Any]:
    """A copy of one ``rpc`` health entry (:meth:`UrlState.snapshot`) safe to publish, whoever
    reported it: ``url`` redacted and ``label`` set (``position`` when it has no ``index``)."""
    raw_index = entry.get("index")
    index = raw_index if isinstance(raw_index, int) else position
    url = redact_url(str(entry.get("url") or ""))
    return {**entry, "index": index, "url": url, "label": rpc_label(index, url)}


class _ScrubRpcUrls(logging.Filter):
    """Scrubs the configured RPC URLs from web3's own log records (its HTTP provider logs
    the endpoint at DEBUG)."""

    def __init__(self) -> None:
        super().__init__()
        self.urls: dict[str, str] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if self.urls:
            original = record.getMessage()
            message = _scrub(original, self.urls)
            if message != original:
                record.msg, record.args = message, None
        return True


_web3_log_filter = _ScrubRpcUrls()
for _name in ("web3.providers.AsyncHTTPProvider",
              "web3._utils.http_session_manager.HTTPSessionManager"):
    logging.getLogger(_name).addFilter(_web3_log_filter)


class RpcError(SourceError):
    """A JSON-RPC call failed for a reason that is not the URL's (e.g. execution reverted)."""


class RpcUnavailable(RpcError):
    """No URL of the pool could answer."""


class RangeTooLarge(RpcError):
    """The provider refused the ``eth_getLogs`` range or result size; use a smaller one."""


@dataclass(slots=True)
class UrlState:
    """Health of one URL, as ``/stats`` shows it (never the URL itself: :func:`rpc_label`)."""

    url: str = field(repr=False)
    index: int = 1
    calls: int = 0
    errors: int = 0
    rate_limited: int = 0
    failovers: int = 0
    consecutive_failures: int = 0
    benched_until: float = 0.0
    latency_ms: float | None = None
    last_error: str = ""

    def healthy(self, now: float) -> bool:
        return self.benched_until <= now

    @property
    def label(self) -> str:
        return rpc_label(self.index, self.url)

    def scrub(self, text: str) -> str:
        return scrub_url(text, self.url, self.label)

    def snapshot(self, now: float) -> dict[str, Any]:
        return {
            "index": self.index, "url": redact_url(self.url), "label": self.label,
            "healthy": self.healthy(now), "calls": self.calls,
            "errors": self.errors, "rate_limited": self.rate_limited,
            "failovers": self.failovers,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "benched_for_s": round(max(0.0, self.benched_until - now), 2),
            "last_error": self.last_error,
        }  # fmt: skip


def _rpc_error_kind(exc: Web3RPCError) -> str:
    """``range``, ``rate`` or ``call`` for a JSON-RPC error response."""
    response: Any = exc.rpc_response or {}
    error = response.get("error") if isinstance(response, dict) else None
    code = error.get("code") if isinstance(error, dict) else None
    message = str(error.get("message") if isinstance(error, dict) else exc.message).lower()
    if any(p in message for p in _RATE_PHRASES) or (code in _RATE_CODES
                                                    and "range" not in message
                                                    and "result" not in message):
        return "rate"
    if any(p in message for p in _RANGE_PHRASES):
        return "range"
    return "call"


class RpcPool:
    """The URLs of one chain; :meth:`call` runs a web3 call on the next healthy one."""

    def __init__(
        self, urls: Sequence[str], *, timeout_s: float = 10.0, backoff_s: float = 1.0,
        backoff_cap_s: float = 60.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if not urls:
            raise SourceError("an EVM chain needs at least one RPC URL")
        self.timeout_s = timeout_s
        self.backoff_s = backoff_s
        self.backoff_cap_s = backoff_cap_s
        self.states = [UrlState(u, index=i) for i, u in enumerate(urls, start=1)]
        for state in self.states:
            _web3_log_filter.urls[state.url] = state.label
        self._clock = clock
        self._next = 0
        self._session: aiohttp.ClientSession | None = None
        self._w3: list[AsyncWeb3[Any]] = []

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            raise_for_status=True, timeout=aiohttp.ClientTimeout(total=self.timeout_s))
        self._w3 = []
        for state in self.states:
            provider = AsyncHTTPProvider(state.url, exception_retry_configuration=None)
            await provider.cache_async_session(self._session)
            self._w3.append(AsyncWeb3(provider))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _pick(self, tried: set[int]) -> int | None:
        now = self._clock()
        n = len(self.states)
        for step in range(n):
            i = (self._next + step) % n
            if i not in tried and self.states[i].healthy(now):
                self._next = (i + 1) % n
                return i
        return None

    def _bench(self, state: UrlState, reason: str) -> None:
        state.consecutive_failures += 1
        attempt = state.consecutive_failures - 1
        span = backoff_ceiling(attempt, base=self.backoff_s, cap=self.backoff_cap_s)
        state.benched_until = self._clock() + backoff_delay(
            attempt, base=self.backoff_s, cap=self.backoff_cap_s)
        state.last_error = state.scrub(reason)[:200]
        log.warning("rpc %s benched for ~%.1fs: %s", state.label, span, state.last_error)

    async def call(self, what: str, fn: Callable[[AsyncWeb3[Any]], Awaitable[T]]) -> T:
        """``fn(w3)`` on the next healthy URL, failing over until one answers.

        Raises :class:`RangeTooLarge`, :class:`RpcError` (the node refused the call itself)
        or :class:`RpcUnavailable` (every URL failed twice or is benched).
        """
        if not self._w3:
            raise RpcUnavailable("RPC pool not started")
        tried: set[int] = set()
        rounds = 0
        while True:
            i = self._pick(tried)
            if i is None:
                rounds += 1
                if rounds >= 2:
                    raise RpcUnavailable(f"{what}: no RPC URL answered "
                                         f"({'; '.join(s.last_error for s in self.states)})")
                tried.clear()
                # Everything benched or tried: wait for the first URL to come back.
                wait = min(s.benched_until for s in self.states) - self._clock()
                await asyncio.sleep(min(max(wait, 0.0), self.backoff_cap_s))
                continue
            if tried:
                self.states[i].failovers += 1
            tried.add(i)
            state = self.states[i]
            state.calls += 1
            started = self._clock()
            try:
                async with asyncio.timeout(self.timeout_s):
                    result = await fn(self._w3[i])
            except Web3RPCError as exc:
                kind = _rpc_error_kind(exc)
                if kind == "range":
                    self._ok(state, started)
                    raise RangeTooLarge(f"{what}: {exc.message}") from exc
                if kind == "call":
                    self._ok(state, started)
                    raise RpcError(f"{what}: {exc.message}") from exc
                state.errors += 1
                state.rate_limited += 1
                self._bench(state, f"rate limited: {exc.message}")
            except aiohttp.ClientResponseError as exc:
                state.errors += 1
                if exc.status == 429:
                    state.rate_limited += 1
                self._bench(state, f"HTTP {exc.status} {exc.message}")
            except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                # ValueError: a body that is not JSON-RPC (a proxy's HTML error page...).
                state.errors += 1
                self._bench(state, f"{type(exc).__name__}: {exc}")
            else:
                self._ok(state, started)
                return result

    def _ok(self, state: UrlState, started: float) -> None:
        elapsed = (self._clock() - started) * 1000
        state.latency_ms = elapsed if state.latency_ms is None else \
            0.8 * state.latency_ms + 0.2 * elapsed
        state.consecutive_failures = 0

    def health(self) -> list[dict[str, Any]]:
        now = self._clock()
        return [s.snapshot(now) for s in self.states]

    @property
    def healthy_urls(self) -> int:
        now = self._clock()
        return sum(1 for s in self.states if s.healthy(now))
