"""market_data and whale_tracking send the seed's JSON numbers with the sources' exact digits,
and market_data keys its maps by the seed's coin ids (``data.prices.bitcoin``)."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson

from cryptowire.bus.memory import MemoryBroker
from cryptowire.core.channels import Channel, ChannelGrammar
from cryptowire.events import Event
from cryptowire.settings import Settings
from cryptowire.sources.services.market import MarketData, WhaleTracking


class Demand:
    def __init__(self) -> None:
        self.held: list[str] = []

    async def acquire(self, channel: Channel) -> None:
        self.held.append(channel.name)

    def release(self, name: str) -> None:
        self.held.remove(name)


def _ctx(settings: Settings) -> tuple[Any, MemoryBroker]:
    broker = MemoryBroker(settings.history)
    grammar = ChannelGrammar(chains={c.name: c.id for c in settings.evm.chains})
    node = SimpleNamespace(settings=settings, broker=broker, grammar=grammar, demand=Demand())
    return SimpleNamespace(node=node, settings=settings), broker


def _ticker(symbol: str, price: str, volume: str) -> Event:
    return Event(f"ticker:{symbol}", {"symbol": symbol, "price": price, "volume24h": volume,
                                      "turnover24h": "1.0", "change24hPercent": "-1.20",
                                      "high24h": None, "low24h": "NaN", "markPrice": "abc"},
                 source="bybit")


def test_market_data_prices_are_numbers_keyed_by_coin_id() -> None:
    settings = Settings(services={"market_symbols": ["BTCUSDT", "ETHUSDT", "DOGEUSDT"]})
    ctx, broker = _ctx(settings)
    broker.publish_now(_ticker("BTCUSDT", "66000.180", "25000000000"))
    broker.publish_now(_ticker("ETHUSDT", "3200.00", "15000000000.5"))
    broker.publish_now(_ticker("DOGEUSDT", "0.1000000000000000055511151231257827", "0"))
    data = asyncio.run(MarketData(ctx).collect())
    raw = orjson.dumps(data)  # what the broker does, once
    assert b'"prices":{"bitcoin":66000.180,"ethereum":3200.00,' \
           b'"DOGEUSDT":0.1000000000000000055511151231257827}' in raw
    assert b'"volumes":{"bitcoin":25000000000,"ethereum":15000000000.5,"DOGEUSDT":0}' in raw
    assert b'"price_changes":{"bitcoin":-1.20,' in raw
    # no value -> null, never a made-up or NaN number
    assert b'"high_24h":{"bitcoin":null,' in raw and b'"low_24h":{"bitcoin":null,' in raw
    assert b'"mark_prices":{"bitcoin":null,' in raw
    parsed = orjson.loads(raw)
    assert parsed["symbols"] == {"bitcoin": "BTCUSDT", "ethereum": "ETHUSDT",
                                 "DOGEUSDT": "DOGEUSDT"}
    assert set(parsed["updated_at"]) == {"bitcoin", "ethereum", "DOGEUSDT"}
    assert parsed["source"] == "bybit"


def test_market_data_coin_ids_are_a_setting_and_never_collide() -> None:
    settings = Settings(services={"market_symbols": ["BTCUSDT", "BTCUSDC"],
                                  "coin_ids": {"BTCUSDT": "bitcoin", "BTCUSDC": "bitcoin"}})
    ctx, broker = _ctx(settings)
    broker.publish_now(_ticker("BTCUSDT", "66000.10", "1"))
    broker.publish_now(_ticker("BTCUSDC", "66001.20", "1"))
    data = orjson.loads(orjson.dumps(asyncio.run(MarketData(ctx).collect())))
    assert data["symbols"] == {"bitcoin": "BTCUSDT", "BTCUSDC": "BTCUSDC"}
    assert Settings().services.coin_ids == {"BTCUSDT": "bitcoin", "ETHUSDT": "ethereum",
                                            "SOLUSDT": "solana"}


def _swap(paired: str, token: str, taker: str, n: int) -> Event:
    return Event("swap:eth", {
        "chain": 1, "pair": "0xpair", "token": "0xt", "symbol": "PEPE", "side": "buy",
        "token_amount": token, "paired_amount": paired, "price_in_paired": "0.000001",
        "taker": taker, "tx_hash": f"0x{n}", "log_index": n, "block": n, "time": 1_731_319_200_000,
    }, source="evm")


def test_whale_tracking_values_totals_and_threshold_are_numbers() -> None:
    settings = Settings(evm={"chains": [{"id": 1, "name": "eth"}]},
                        services={"whale_min_paired_amount": "1000000",
                                  "whale_min_burn_amount": "5E+6"})
    ctx, broker = _ctx(settings)
    broker.publish_now(_swap("430774.10", "1000000000.000000000000000001", "0xa", 1))
    broker.publish_now(_swap("1000000000", "5", "0xa", 2))
    broker.publish_now(_swap("999999.99", "1", "0xb", 3))  # under the threshold
    whale = WhaleTracking(ctx)
    broker.publish_now(_swap("4569225.90", "1", "0xb", 4))
    raw = orjson.dumps(asyncio.run(whale.collect()))
    assert b'"value":1000000000,' in raw and b'"value":4569225.90,' in raw
    assert b'"token_amount":5,' in raw
    assert b'"total_volume":1004569225.90,' in raw
    assert b'"alert_threshold":1000000,"alert_threshold_unit":"paired_token",' in raw
    assert b'"alert_thresholds":{"swap_paired_amount":1000000,' \
           b'"burn_token_amount":5000000}' in raw
    data = orjson.loads(raw)
    assert [w["volume"] for w in data["whale_wallets"]] == [1000000000, 4569225.9]
    assert [tx["hash"] for tx in data["large_transactions"]] == ["0x4", "0x2"]
