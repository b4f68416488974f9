"""Shared pieces of the Binance codec tests: fixtures, channels, the field mapping written
out independently of the code (the fidelity reference)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from cryptowire.core.channels import Channel, ChannelGrammar

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures" / "binance"
GRAMMAR = ChannelGrammar()


def lines(name: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (FIXTURES / name).read_text().splitlines() if line]


def raw_lines(name: str) -> list[str]:
    return [line for line in (FIXTURES / name).read_text().splitlines() if line]


def document(name: str) -> Any:
    return json.loads((FIXTURES / name).read_text())


def channel(name: str) -> Channel:
    return GRAMMAR.parse(name)


def expected_trade(data: dict[str, Any]) -> dict[str, Any]:
    """What a trade payload must be, field by field from the source frame."""
    return {"id": str(data["a"] if data["e"] == "aggTrade" else data["t"]),
            "symbol": data["s"], "price": data["p"], "quantity": data["q"],
            "side": "sell" if data["m"] else "buy", "time": data["T"]}


def expected_kline(data: dict[str, Any]) -> dict[str, Any]:
    k = data["k"]
    return {"symbol": k["s"], "interval": k["i"], "openTime": k["t"], "closeTime": k["T"],
            "open": k["o"], "high": k["h"], "low": k["l"], "close": k["c"], "volume": k["v"],
            "turnover": k["q"], "confirmed": k["x"]}


def expected_liquidation(data: dict[str, Any]) -> dict[str, Any]:
    o = data["o"]
    return {"symbol": o["s"], "side": {"SELL": "Buy", "BUY": "Sell"}[o["S"]],
            "price": o["p"], "size": o["z"], "time": o["T"]}


def expected_ticker(symbol: str, last: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The merged ticker from the latest ``24hrTicker``, ``bookTicker`` and (futures)
    ``markPriceUpdate`` payloads; nothing else."""
    t, b = last["24hrTicker"], last["bookTicker"]
    out: dict[str, Any] = {
        "symbol": symbol, "price": t["c"], "high24h": t["h"], "low24h": t["l"],
        "prevPrice24h": t["o"], "volume24h": t["v"], "turnover24h": t["q"],
        "change24hPercent": t["P"],
        "bid": {"price": b["b"], "size": b["B"]}, "ask": {"price": b["a"], "size": b["A"]},
    }
    if "markPriceUpdate" in last:
        m = last["markPriceUpdate"]
        out.update({"markPrice": m["p"], "indexPrice": m["i"], "fundingRate": m["r"],
                    "nextFundingTime": str(m["T"])})
    return out
