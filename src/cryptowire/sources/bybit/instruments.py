"""Bybit's instruments list, declared for the shared catalog
(:class:`~cryptowire.sources.exchange.instruments.InstrumentCatalog`).

``GET {rest_url}/v5/market/instruments-info?category=linear|spot&limit=1000`` (docs:
v5/market/instrument) answers ``{"retCode":0,"retMsg":"OK","result":{"category":..,
"list":[{"symbol":..,"status":"Trading",..}],"nextPageCursor":".."}}``; pages are followed by
``cursor=<nextPageCursor>`` until it is empty. A ``Closed`` symbol is refused as not
trading. When the call fails the catalog says "unknown" and the source relies on the
upstream's subscribe ack instead (Bybit refuses a topic of an unlisted symbol).
"""

from __future__ import annotations

from typing import Any

from cryptowire.sources.exchange.instruments import InstrumentCatalog
from cryptowire.sources.exchange.venue import Instruments

__all__ = ["PATH", "InstrumentCatalog", "instruments", "parse_page"]

PATH = "/v5/market/instruments-info"


def instruments(category: str) -> Instruments:
    """The instruments declaration of one category."""

    def request(cursor: str) -> tuple[str, dict[str, str]]:
        params = {"category": category, "limit": "1000"}
        if cursor:
            params["cursor"] = cursor
        return PATH, params

    return Instruments(request=request, parse=parse_page, closed=frozenset({"Closed"}))


def parse_page(body: Any) -> tuple[dict[str, str], str]:
    """The ``{symbol: status}`` of one response page and its ``nextPageCursor``;
    :class:`ValueError` saying what is wrong with the body."""
    if not isinstance(body, dict):
        raise ValueError("response is not a JSON object")
    if body.get("retCode") != 0:
        raise ValueError(f"retCode {body.get('retCode')}: {body.get('retMsg')}")
    result = body.get("result")
    items = result.get("list") if isinstance(result, dict) else None
    if not isinstance(result, dict) or not isinstance(items, list):
        raise ValueError("response has no result.list")
    page: dict[str, str] = {}
    for item in items:
        if isinstance(item, dict) and isinstance(item.get("symbol"), str):
            status = item.get("status")
            page[item["symbol"]] = status if isinstance(status, str) else "Trading"
    cursor = result.get("nextPageCursor")
    return page, cursor if isinstance(cursor, str) else ""
