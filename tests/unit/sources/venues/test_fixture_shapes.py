"""The Binance and OKX fixtures keep the documented shapes (see their README.md): the field
sets of each event, strings where the venue sends strings, integers where it sends numbers,
and not one JSON float anywhere (a price or size must never be read as a float)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

FIXTURES = Path(__file__).resolve().parents[3] / "fixtures"


def no_float(text: str) -> Any:
    raise AssertionError(f"a JSON float in a fixture: {text}")


def load_all(path: Path) -> list[Any]:
    body = path.read_text()
    if path.suffix == ".json":
        return [json.loads(body, parse_float=no_float)]
    return [json.loads(line, parse_float=no_float) for line in body.splitlines()]


FILES = sorted(p for venue in ("binance", "okx") for p in (FIXTURES / venue).iterdir()
               if p.suffix in (".json", ".jsonl"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_fixture_is_json_without_floats(path: Path) -> None:
    assert load_all(path)


# --- Binance: field sets per event type (the documentation's payload examples) -------------

BINANCE_FIELDS = {
    ("futures", "aggTrade"): "e E s a p q f l T m",
    ("spot", "trade"): "e E s t p q T m M",
    ("futures", "markPriceUpdate"): "e E s p i P r T",
    ("futures", "24hrTicker"): "e E s p P w c Q o h l v q O C F L n",
    ("spot", "24hrTicker"): "e E s p P w x c Q b B a A o h l v q O C F L n",
    ("futures", "bookTicker"): "e u E T s b B a A",
    ("spot", None): "u s b B a A",  # spot bookTicker has no event type
    ("futures", "kline"): "e E s k",
    ("spot", "kline"): "e E s k",
    ("futures", "forceOrder"): "e E o",
    ("futures", "depthUpdate"): "e E T s U u pu b a",
    ("spot", "depthUpdate"): "e E s U u b a",
}
KLINE = "t T s i f L o c h l v n x q V Q B"
FORCE_ORDER = "s S o f q p ap X l z T"
#: the numbers (JSON integers) and booleans of each event; every other field is a string
NUMBERS = {"aggTrade": "E a f l T", "trade": "E t T", "markPriceUpdate": "E T",
           "24hrTicker": "E O C F L n", "bookTicker": "u E T", None: "u", "kline": "E",
           "forceOrder": "E", "depthUpdate": "E T U u pu"}
BOOLEANS = {"m", "M"}
NESTED = {"k", "o", "b", "a"}


def binance_frames() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for market, names in (("futures", ["futures-market", "futures-public", "futures-depth"]),
                          ("spot", ["spot", "spot-depth"])):
        for name in names:
            for frame in load_all(FIXTURES / "binance" / f"{name}.jsonl"):
                if "stream" in frame:
                    assert frame["stream"].startswith("btcusdt@") and set(frame) == {
                        "stream", "data"}
                    out.append((market, frame["data"]))
    return out


def test_binance_events_have_the_documented_fields_and_types() -> None:
    frames = binance_frames()
    assert len(frames) > 90
    for market, data in frames:
        kind = data.get("e")
        assert sorted(data) == sorted(BINANCE_FIELDS[(market, kind)].split())
        numbers = set(NUMBERS[kind].split())
        for key, value in data.items():
            if key in numbers:
                assert type(value) is int, (key, data)
            elif key in BOOLEANS:
                assert type(value) is bool
            elif key in NESTED and kind in ("kline", "forceOrder", "depthUpdate"):
                continue
            else:
                assert type(value) is str, (key, data)
        if kind == "depthUpdate":
            assert all(type(x) is str for side in "ba" for lv in data[side] for x in lv)
        if kind == "kline":
            assert sorted(data["k"]) == sorted(KLINE.split())
            for key, value in data["k"].items():
                expected = int if key in "tTfLn" else bool if key == "x" else str
                assert type(value) is expected, (key, data)
        if kind == "forceOrder":
            assert sorted(data["o"]) == sorted(FORCE_ORDER.split())
            assert all(type(v) is (int if k == "T" else str) for k, v in data["o"].items())


@pytest.mark.parametrize("name", ["exchangeInfo-fapi.json", "exchangeInfo-api.json"])
def test_binance_exchange_info_lists_btcusdt_with_string_filters(name: str) -> None:
    body = load_all(FIXTURES / "binance" / name)[0]
    symbols = {s["symbol"]: s for s in body["symbols"]}
    assert "BTCUSDT" in symbols and symbols["BTCUSDT"]["status"] == "TRADING"
    price_filter = next(f for f in symbols["BTCUSDT"]["filters"]
                        if f["filterType"] == "PRICE_FILTER")
    assert all(type(price_filter[k]) is str for k in ("minPrice", "maxPrice", "tickSize"))


# --- OKX ----------------------------------------------------------------------------------

OKX_FIELDS = {
    "tickers": "instType instId last lastSz askPx askSz bidPx bidSz open24h high24h low24h "
               "volCcy24h vol24h sodUtc0 sodUtc8 ts",
    "trades": "instId tradeId px sz side ts count source seqId",
    "funding-rate": "formulaType fundingRate fundingTime impactValue instId instType "
                    "interestRate method maxFundingRate minFundingRate nextFundingRate "
                    "nextFundingTime premium settFundingRate settState ts",
    "liquidation-orders": "details instFamily instId instType uly",
    "mark-price": "instType instId markPx ts",
    "books": "asks bids ts checksum prevSeqId seqId",
}


def okx_messages() -> list[dict[str, Any]]:
    names = ["swap", "spot", "swap-business", "spot-business", "swap-books", "spot-books",
             "swap-books-checksum", "spot-books-checksum", "control"]
    return [m for n in names for m in load_all(FIXTURES / "okx" / f"{n}.jsonl")]


def test_okx_pushes_have_the_documented_fields_and_string_values() -> None:
    pushes = [m for m in okx_messages() if "data" in m]
    assert len(pushes) > 60
    for msg in pushes:
        channel = msg["arg"]["channel"]
        assert set(msg) == ({"arg", "action", "data"} if channel == "books" else {"arg", "data"})
        for item in msg["data"]:
            if channel.startswith("candle"):
                assert len(item) == 9 and all(type(x) is str for x in item)
                continue
            assert sorted(item) == sorted(OKX_FIELDS[channel].split())
            for key, value in item.items():
                if key in ("seqId", "prevSeqId", "checksum"):
                    assert type(value) is int
                elif key in ("asks", "bids"):
                    assert all(len(lv) == 4 and all(type(x) is str for x in lv) for lv in value)
                elif key == "details":
                    assert all(type(x) is str for d in value for x in d.values())
                else:
                    assert type(value) is str, (key, msg)


def test_okx_events_acks_and_errors_have_the_documented_shape() -> None:
    events = [m for m in okx_messages() if "event" in m]
    kinds = {m["event"] for m in events}
    assert kinds == {"subscribe", "unsubscribe", "error", "notice"}
    for m in events:
        assert type(m["connId"]) is str
        if m["event"] in ("subscribe", "unsubscribe"):
            assert set(m) - {"id"} == {"event", "arg", "connId"}
        else:
            assert set(m) - {"id"} == {"event", "code", "msg", "connId"}
            assert type(m["code"]) is str


@pytest.mark.parametrize("inst_type", ["swap", "spot"])
def test_okx_instruments_are_strings_in_the_rest_envelope(inst_type: str) -> None:
    body = load_all(FIXTURES / "okx" / f"instruments-{inst_type}.json")[0]
    assert body["code"] == "0" and body["msg"] == ""
    for item in body["data"]:
        assert item["instType"] == inst_type.upper()
        assert all(type(item[k]) is str for k in ("instId", "tickSz", "lotSz", "minSz", "state"))
        assert type(item["instIdCode"]) is int
