"""The offer loop of one quote session keeps going through failures: a rate provider that
raises something unexpected, and amounts too large for the default decimal context."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

from cryptowire.clock import now_ms
from cryptowire.rfq.engine import RfqConfig, RfqConnection
from cryptowire.rfq.providers import Fill
from cryptowire.rfq.quote import Quote
from cryptowire.sources.prices import Rate

TIMEOUT = 5.0


class Rates:
    """A rate provider whose answers a test scripts: a value, or an exception to raise."""

    def __init__(self, *answers: Decimal | Exception) -> None:
        self.answers = list(answers)

    async def prepare(self, curr_from: str, curr_to: str) -> frozenset[str]:
        return frozenset()

    async def release(self, hold: frozenset[str]) -> None:
        return None

    async def rate(self, curr_from: str, curr_to: str) -> Rate:
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return Rate(answer, now_ms(), "test")


class NoFills:
    name = "none"

    async def execute(self, quote: Quote, key_id: str | None) -> Fill:
        raise AssertionError("no order is placed in these tests")


class Sent:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []
        self.changed = asyncio.Event()

    def __call__(self, obj: dict[str, Any]) -> None:
        self.frames.append(obj)
        self.changed.set()

    async def wait_for(self, n: int, action: str) -> list[dict[str, Any]]:
        """The first ``n`` frames with ``action``, once they arrived."""
        async with asyncio.timeout(TIMEOUT):
            while len(got := [f for f in self.frames if f.get("action") == action]) < n:
                self.changed.clear()
                await self.changed.wait()
        return got[:n]


def connection(rates: Rates, sent: Sent) -> RfqConnection:
    return RfqConnection("u", RfqConfig(interval_s=0.01, max_offers=50), rates, NoFills(),
                         sent, may_trade=False)


def start(amount: str) -> dict[str, Any]:
    return {"key": "k", "currFrom": "AAA", "currTo": "BBB", "amountFrom": amount}


async def test_an_unexpected_error_is_offer_failed_and_the_offers_go_on() -> None:
    sent = Sent()
    conn = connection(Rates(RuntimeError("boom"), Decimal("2")), sent)
    try:
        await conn.handle("startSession", start("10"))
        (failed,) = await sent.wait_for(1, "offer-failed")
        assert failed["key"] == "k" and failed["channel"] == "rfq"
        assert failed["message"].startswith("Offer failed: internal error")
        assert "boom" not in failed["message"]  # the reason stays in the log
        offer = (await sent.wait_for(1, "offer"))[0]
        assert offer["amountTo"] == "19.80"
        assert conn.sessions["k"].task is not None and not conn.sessions["k"].task.done()
    finally:
        await conn.close()


async def test_very_large_amounts_are_offered() -> None:
    sent = Sent()
    conn = connection(Rates(Decimal("1e20")), sent)
    try:
        await conn.handle("startSession", start("1000000000000000"))  # 1e15, the largest
        offer = (await sent.wait_for(1, "offer"))[0]
        assert offer["amountTo"] == "99" + "0" * 33 + ".00"
        assert offer["exchangeRate"] == "1" + "0" * 20 + ".00"
        assert not [f for f in sent.frames if f.get("action") == "offer-failed"]
    finally:
        await conn.close()


async def test_the_seeds_empty_amount_waits_for_update_session_and_counts_nothing() -> None:
    # Seed 001's own startSession sends "amountFrom": "".
    sent = Sent()
    conn = RfqConnection("u", RfqConfig(interval_s=0.01, max_offers=2), Rates(Decimal("2")),
                         NoFills(), sent, may_trade=False)
    try:
        await conn.handle("startSession", start(""))
        await sent.wait_for(1, "connected")
        await asyncio.sleep(0.1)  # ten intervals
        assert [f["action"] for f in sent.frames] == ["connected"]  # no offer, no failure
        assert conn.sessions["k"].offers == 0
        await conn.handle("updateSession", start("0"))  # zero is "no amount" as well
        await asyncio.sleep(0.05)
        assert [f["action"] for f in sent.frames] == ["connected"]
        await conn.handle("updateSession", start("10"))
        offers = await sent.wait_for(2, "offer")  # max_offers is still whole
        assert [o["amountTo"] for o in offers] == ["19.80", "19.80"]
        assert (await sent.wait_for(1, "timeout"))[0]["key"] == "k"
    finally:
        await conn.close()


async def test_a_non_zero_invalid_amount_is_still_offer_failed() -> None:
    sent = Sent()
    conn = connection(Rates(Decimal("2")), sent)
    try:
        for bad in ("abc", "-1", True):
            await conn.handle("startSession", {**start("1"), "amountFrom": bad})
        failed = await sent.wait_for(3, "offer-failed")
        assert all(f["message"].startswith("Offer failed: amountFrom") for f in failed)
        assert not conn.sessions
    finally:
        await conn.close()


async def test_a_json_number_amount_is_quoted_exactly() -> None:
    sent = Sent()
    conn = connection(Rates(Decimal("15.87")), sent)
    try:
        await conn.handle("startSession", {**start("1"), "amountFrom": 10.5})
        offer = (await sent.wait_for(1, "offer"))[0]
        assert offer["amountFrom"] == "10.5"
        assert offer["amountTo"] == "164.97"  # 10.5 x 0.99 x 15.87 = 164.96865
        assert conn.quotes[offer["quoteId"]].amount_to == \
            Decimal("10.5") * Decimal("0.99") * Decimal("15.87")
    finally:
        await conn.close()
