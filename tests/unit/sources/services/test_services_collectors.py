"""Pure parts of the services: feed parsing, sentiment, the job runner, whale classification."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

from tests.waiting import eventually

from cryptowire.settings import Settings
from cryptowire.sources.services.feeds import Article, NewsFeeds, parse_feed
from cryptowire.sources.services.jobs import JobRunner
from cryptowire.sources.services.market import WhaleTracking
from cryptowire.sources.services.news import Sentiment

RSS = b"""<?xml version="1.0"?>
<rss version="2.0"><channel><title>Coin Wire</title><link>https://example.org</link>
<item><title>Bitcoin soars as investors celebrate great gains</title>
<link>https://example.org/1</link><category>Markets</category>
<pubDate>Mon, 11 Nov 2024 10:25:00 GMT</pubDate></item>
<item><title>Exchange hack: users lose funds in terrible exploit</title>
<link>https://example.org/2</link><pubDate>Mon, 11 Nov 2024 09:00:00 GMT</pubDate></item>
</channel></rss>"""

ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><title>Chain Times</title>
<entry><title>Ethereum upgrade ships</title><link href="https://example.com/a"/>
<updated>2024-11-11T08:00:00Z</updated><category term="Technology"/></entry></feed>"""


def test_parse_rss_and_atom() -> None:
    title, items = parse_feed(RSS, "https://example.org/rss")
    assert title == "Coin Wire"
    assert items[0] == Article("Bitcoin soars as investors celebrate great gains", "Coin Wire",
                               "https://example.org/1", 1731320700000, ("Markets",))
    assert items[0].describe()["published_at"] == "2024-11-11T10:25:00.000Z"
    title, items = parse_feed(ATOM, "https://example.com/atom")
    assert title == "Chain Times"
    assert items[0].categories == ("Technology",)
    assert items[0].describe()["published_at"] == "2024-11-11T08:00:00.000Z"


def test_sentiment_scores_headlines_with_the_shipped_lexicon() -> None:
    settings = Settings(services={"news_feeds": ["https://x"]})
    feeds = NewsFeeds(settings.services)
    feeds.articles = parse_feed(RSS, "u")[1]
    feeds.fetched_ms = 4_000_000_000_000  # in the future: fresh, no fetch
    ctx = SimpleNamespace(news=feeds, settings=settings)
    data = asyncio.run(Sentiment(ctx).collect())  # type: ignore[arg-type]
    assert data["headlines_scored"] == 2
    assert data["positive"] == 1 and data["negative"] == 1
    assert data["method"] == "vader"
    assert data["overall_sentiment"] in ("bullish", "bearish", "neutral")
    assert set(data["sentiment_by_source"]) == {"Coin Wire"}
    assert "Bitcoin" in data["trending_topics"]


def test_sentiment_and_news_without_feeds_say_not_configured() -> None:
    from cryptowire.sources.services.news import News

    settings = Settings()
    ctx = SimpleNamespace(news=NewsFeeds(settings.services), settings=settings)
    for service in (News(ctx), Sentiment(ctx)):  # type: ignore[arg-type]
        data = asyncio.run(service.collect())
        assert data["status"] == "not_configured"
        assert "services.news_feeds" in data["reason"]
        assert data["timestamp"].endswith("Z")


def test_job_runner_runs_periodically_and_records() -> None:
    async def scenario() -> None:
        runner = JobRunner({"a": 0.01, "b": 1.0})
        calls: list[int] = []

        async def body() -> None:
            calls.append(1)
            if len(calls) == 2:
                raise RuntimeError("boom")

        runner.start("a", body)
        await eventually(lambda: runner.jobs["a"].describe()["runs"] >= 3, what="three runs")
        assert runner.active() == ["a"]
        job = runner.jobs["a"].describe()
        assert job["runs"] >= 3 and job["errors"] == 1 and job["last_error"] == \
            "RuntimeError: boom"
        assert job["next_run"].endswith("Z")
        await runner.stop("a")
        assert runner.active() == [] and runner.jobs["a"].status == "idle"
        assert runner.jobs["b"].describe()["runs"] == 0

    asyncio.run(scenario())


def test_whale_classification_uses_thresholds_and_keeps_decimal_strings() -> None:
    settings = Settings(services={"whale_min_paired_amount": "2.5",
                                  "whale_min_burn_amount": "1000"})
    whale = WhaleTracking(SimpleNamespace(settings=settings, node=None))  # type: ignore[arg-type]
    swap: dict[str, Any] = {"chain": 1, "pair": "0xpair", "token": "0xt", "symbol": "PEPE",
                            "side": "buy", "token_amount": "1000000", "paired_amount": "2.50",
                            "taker": "0xtaker", "tx_hash": "0xh", "block": 5, "time": 0}
    tx = whale._classify("swap", swap, "evm")
    assert tx is not None
    assert tx["value"] == "2.50" and tx["from"] == "0xpair" and tx["to"] == "0xtaker"
    assert whale._classify("swap", {**swap, "paired_amount": "2.49"}, "evm") is None
    sell = whale._classify("swap", {**swap, "side": "sell"}, "evm")
    assert sell is not None and sell["from"] == "0xtaker"
    burn = {"token": "0xt", "amount": "999", "from": "0xa", "to": "0xdead", "tx_hash": "0xb"}
    assert whale._classify("burn", burn, "evm") is None
    big = whale._classify("burn", {**burn, "amount": "1000"}, "evm")
    assert big is not None and big["value_unit"] == "token"
    assert settings.services.whale_min_paired_amount == Decimal("2.5")


def test_chain_services_read_the_evm_sources_status() -> None:
    from cryptowire.core.source import SourceStatus
    from cryptowire.sources.services.system import ChainStatus

    rpc = [{"url": "http://a", "healthy": True, "failovers": 2, "latency_ms": 12.5},
           {"url": "https://b.example/v2/SECRETKEY123", "healthy": False, "failovers": 1,
            "latency_ms": None}]
    status = SourceStatus(name="evm", state="up", extra={"chains": {"eth": {
        "chain_id": 1, "head": 100, "cursor": 97, "lag": 3, "tokens": 2, "events": 5,
        "reorgs": 0, "removed": 0, "errors": 0, "last_error": None, "blocks": 97, "rpc": rpc}}})
    evm = SimpleNamespace(kinds=frozenset({"swap", "burn"}), status=lambda: status)
    ctx = SimpleNamespace(node=SimpleNamespace(sources=[evm]), settings=Settings())
    pools = asyncio.run(ChainStatus(ctx, "pool_manager").collect())  # type: ignore[arg-type]
    # Whatever a source reports, the payloads name URLs by label, key redacted.
    assert pools["pools"]["eth"]["active_source"] == "#1 http://a"
    assert pools["inactive_sources"] == ["#2 https://b.example/***"]
    assert pools["failover_count"] == 3
    assert [u["url"] for u in pools["pools"]["eth"]["urls"]] == [
        "http://a", "https://b.example/***"]
    assert "SECRETKEY123" not in str(pools)
    onchain = asyncio.run(ChainStatus(ctx, "onchain").collect())  # type: ignore[arg-type]
    assert onchain["chains"]["eth"]["lag"] == 3
    nodes = asyncio.run(ChainStatus(ctx, "rpc_nodes").collect())  # type: ignore[arg-type]
    assert nodes["chains"]["eth"]["rpc"] == [
        {**rpc[0], "index": 1, "label": "#1 http://a"},
        {**rpc[1], "index": 2, "url": "https://b.example/***",
         "label": "#2 https://b.example/***"}]
    assert "SECRETKEY123" not in str(nodes)
    ctx.node.sources = []
    empty = asyncio.run(ChainStatus(ctx, "explorers").collect())  # type: ignore[arg-type]
    assert empty["status"] == "not_configured" and "evm.enabled" in empty["reason"]
