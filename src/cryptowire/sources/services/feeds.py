"""The configured RSS/Atom feeds, fetched with aiohttp (never by ``feedparser`` itself) and
parsed with ``feedparser``: what the news and sentiment services share (a fetch younger than
the news interval is reused).

It knows nothing of the service context, which names a job's :class:`NewsFeeds`: the
context and the services both import it, so the two do not import each other.
"""

from __future__ import annotations

import asyncio
import calendar
import io
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp

from cryptowire.clock import iso, now_ms
from cryptowire.settings import ServicesSettings

log = logging.getLogger("cryptowire.sources.services.news")


@dataclass(frozen=True, slots=True)
class Article:
    title: str
    source: str
    url: str
    published_ms: int | None
    categories: tuple[str, ...]

    def describe(self) -> dict[str, Any]:
        return {"title": self.title, "source": self.source, "url": self.url,
                "published_at": iso(self.published_ms) if self.published_ms else None,
                "categories": list(self.categories)}


def parse_feed(body: bytes, url: str) -> tuple[str, list[Article]]:
    """``(feed title, articles)`` of one RSS or Atom document."""
    import feedparser  # type: ignore[import-untyped]

    parsed = feedparser.parse(io.BytesIO(body))
    if parsed.bozo and not parsed.entries:
        raise ValueError(f"not a feed: {parsed.get('bozo_exception')}")
    title = parsed.feed.get("title") or urlparse(url).hostname or url
    articles = []
    for entry in parsed.entries:
        when = entry.get("published_parsed") or entry.get("updated_parsed")
        articles.append(Article(
            title=str(entry.get("title", "")).strip(), source=str(title),
            url=str(entry.get("link", "")),
            published_ms=calendar.timegm(when) * 1000 if when else None,
            categories=tuple(str(t.get("term")) for t in entry.get("tags", []) if t.get("term")),
        ))
    return str(title), articles


class NewsFeeds:
    """The configured feeds' latest articles, refreshed on demand."""

    def __init__(self, settings: ServicesSettings) -> None:
        self._settings = settings
        self.articles: list[Article] = []
        self.feeds: dict[str, dict[str, Any]] = {}
        self.fetched_ms = 0
        self._lock = asyncio.Lock()

    @property
    def configured(self) -> bool:
        return bool(self._settings.news_feeds)

    async def refresh(self, max_age_s: float) -> None:
        async with self._lock:
            if self.fetched_ms and now_ms() - self.fetched_ms < max_age_s * 1000:
                return
            timeout = aiohttp.ClientTimeout(total=self._settings.news_timeout_s)
            async with aiohttp.ClientSession(timeout=timeout) as http:
                results = await asyncio.gather(
                    *(self._fetch(http, url) for url in self._settings.news_feeds))
            articles: list[Article] = []
            for url, result in zip(self._settings.news_feeds, results, strict=True):
                if isinstance(result, str):
                    self.feeds[url] = {"status": "error", "error": result}
                else:
                    title, items = result
                    self.feeds[url] = {"status": "ok", "title": title, "articles": len(items)}
                    articles.extend(items)
            articles.sort(key=lambda a: a.published_ms or 0, reverse=True)
            self.articles = articles
            self.fetched_ms = now_ms()

    @staticmethod
    async def _fetch(http: aiohttp.ClientSession, url: str) -> tuple[str, list[Article]] | str:
        try:
            async with http.get(url) as resp:
                if resp.status != 200:
                    return f"HTTP {resp.status}"
                body = await resp.read()
            return await asyncio.to_thread(parse_feed, body, url)
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            log.warning("news feed %s failed: %s", url, exc)
            return f"{type(exc).__name__}: {exc}"[:200]
