"""news and sentiment: configured RSS/Atom feeds, parsed with ``feedparser``, and the VADER
lexicon (``vaderSentiment``, which ships its lexicon) scoring their headlines.

Feeds are fetched with aiohttp (never by feedparser itself) and shared by both services: a
fetch younger than the news interval is reused.
"""

from __future__ import annotations

import asyncio
import calendar
import io
import logging
import re
from collections import Counter
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

import aiohttp

from cryptowire.clock import iso, now_ms
from cryptowire.settings import ServicesSettings
from cryptowire.sources.services.context import ServiceContext, not_configured, stamp

log = logging.getLogger("cryptowire.sources.services.news")

#: VADER's own thresholds for positive / negative compound scores (vaderSentiment README).
BULLISH_AT = 0.05
BEARISH_AT = -0.05
_WORD = re.compile(r"\b[A-Z][A-Za-z0-9]{2,}\b")
_COMMON = frozenset({
    "The", "This", "That", "With", "From", "After", "Before", "What", "Why", "How", "Will",
    "Into", "Over", "Amid", "About", "Says", "New", "And", "For", "Its", "Are", "Has",
})  # fmt: skip


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


class News:
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    async def collect(self) -> dict[str, Any]:
        feeds = self._ctx.news
        if not feeds.configured:
            return not_configured("No news feeds configured (services.news_feeds).")
        await feeds.refresh(self._ctx.settings.services.news_interval_s)
        articles = feeds.articles[: self._ctx.settings.services.news_max_articles]
        return stamp({
            "articles": [a.describe() for a in articles],
            "sources": sorted({a.source for a in articles}),
            "categories": sorted({c for a in articles for c in a.categories}),
            "feeds": dict(feeds.feeds), "fetched_at": iso(feeds.fetched_ms),
        })

    async def close(self) -> None:
        return None


class Sentiment:
    """Mean VADER compound score of the headlines, overall and per source."""

    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx
        self._analyzer: Any = None

    def _score(self, titles: list[str]) -> list[float]:
        if self._analyzer is None:
            from vaderSentiment.vaderSentiment import (  # type: ignore[import-untyped]
                SentimentIntensityAnalyzer,
            )

            self._analyzer = SentimentIntensityAnalyzer()
        return [float(self._analyzer.polarity_scores(t)["compound"]) for t in titles]

    async def collect(self) -> dict[str, Any]:
        feeds = self._ctx.news
        if not feeds.configured:
            return not_configured("No news feeds configured (services.news_feeds); "
                                  "sentiment scores their headlines.")
        await feeds.refresh(self._ctx.settings.services.news_interval_s)
        articles = [a for a in feeds.articles if a.title]
        if not articles:
            return stamp({"status": "no_data", "reason": "The feeds have no headlines yet.",
                          "headlines_scored": 0, "feeds": dict(feeds.feeds)})
        scores = await asyncio.to_thread(self._score, [a.title for a in articles])
        by_source: dict[str, list[float]] = {}
        for article, score in zip(articles, scores, strict=True):
            by_source.setdefault(article.source, []).append(score)
        mean = sum(scores) / len(scores)
        label = "bullish" if mean >= BULLISH_AT else "bearish" if mean <= BEARISH_AT \
            else "neutral"
        words = Counter(w for a in articles for w in set(_WORD.findall(a.title))
                        if w not in _COMMON)
        return stamp({
            "overall_sentiment": label, "sentiment_score": round(mean, 4),
            "headlines_scored": len(scores),
            "positive": sum(1 for s in scores if s >= BULLISH_AT),
            "negative": sum(1 for s in scores if s <= BEARISH_AT),
            "trending_topics": [w for w, _ in words.most_common(5)],
            "sentiment_by_source": {src: round(sum(v) / len(v), 4)
                                    for src, v in sorted(by_source.items())},
            "method": "vader", "fetched_at": iso(feeds.fetched_ms),
        })

    async def close(self) -> None:
        return None
