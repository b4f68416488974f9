"""news and sentiment: the configured RSS/Atom feeds' articles (fetched and parsed in
:mod:`~cryptowire.sources.services.feeds`, shared by both services through the context), and
the VADER lexicon (``vaderSentiment``, which ships its lexicon) scoring their headlines.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from typing import Any

from cryptowire.clock import iso
from cryptowire.sources.services.context import ServiceContext, not_configured, stamp

#: VADER's own thresholds for positive / negative compound scores (vaderSentiment README).
BULLISH_AT = 0.05
BEARISH_AT = -0.05
_WORD = re.compile(r"\b[A-Z][A-Za-z0-9]{2,}\b")
_COMMON = frozenset({
    "The", "This", "That", "With", "From", "After", "Before", "What", "Why", "How", "Will",
    "Into", "Over", "Amid", "About", "Says", "New", "And", "For", "Its", "Are", "Has",
})  # fmt: skip


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
