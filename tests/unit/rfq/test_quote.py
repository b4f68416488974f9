"""Quote arithmetic is exact and rounds for display the way the seed's widget shows it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cryptowire.rfq.quote import (
    QuoteError,
    fmt,
    fmt_rate,
    make_quote,
    parse_amount,
    parse_currency,
    percent,
)


def test_seed_example_amounts() -> None:
    q = make_quote(key="k", curr_from="BTC", curr_to="ETH", amount_from=Decimal("10"),
                   rate=Decimal("15.00"), commission=Decimal("0.01"), rate_path="x",
                   now_ms=1000, ttl_ms=10_000)
    shown = q.display(2)
    assert shown["amountTo"] == "148.50"
    assert shown["exchangeRate"] == "15.00"
    assert shown["amountFrom"] == "10"
    assert shown["comissionFee"] == 1
    assert shown["expiresAt"] == 11_000
    assert q.amount_to == Decimal("148.5000")


def test_full_precision_is_kept_in_the_record() -> None:
    rate = Decimal("0.0484999")
    q = make_quote(key="k", curr_from="ETH", curr_to="BTC", amount_from=Decimal("3.3333"),
                   rate=rate, commission=Decimal("0.01"), rate_path="x", now_ms=0, ttl_ms=1)
    assert q.amount_to == Decimal("3.3333") * Decimal("0.99") * rate
    assert q.display(2)["amountTo"] == "0.16"


@pytest.mark.parametrize(("value", "shown"), [
    (Decimal("1.005"), "1.01"), (Decimal("1.004"), "1.00"), (Decimal("2.5E+3"), "2500.00"),
    (Decimal("0"), "0.00"),
])
def test_fmt_half_up_plain(value: Decimal, shown: str) -> None:
    assert fmt(value, 2) == shown


def test_percent() -> None:
    assert percent(Decimal("0.01")) == 1
    assert percent(Decimal("0.005")) == "0.5"
    assert percent(Decimal("0")) == 0


def test_parse_amount_refuses_garbage() -> None:
    assert parse_amount("10.50") == Decimal("10.50")
    assert parse_amount("") == 0
    assert parse_amount(7) == 7
    for bad in (True, None, "abc", "-1", "NaN", "Infinity", "1e30", -1.5, float("nan"),
                float("inf"), 1e30, [1]):
        with pytest.raises(QuoteError):
            parse_amount(bad)


@pytest.mark.parametrize(("number", "exact"), [
    (10.5, "10.5"), (0.1, "0.1"), (2.675, "2.675"), (1e-7, "1E-7"), (3.0, "3.0"), (0.0, "0.0"),
])
def test_parse_amount_takes_a_json_number_as_the_digits_the_client_wrote(
        number: float, exact: str) -> None:
    # orjson gives 10.5 for "amountFrom": 10.5; the amount is Decimal("10.5"), never the
    # float's binary expansion (Decimal(0.1) would be 0.1000000000000000055511151231...).
    assert parse_amount(number) == Decimal(exact)
    assert parse_amount(number).as_tuple() == Decimal(exact).as_tuple()


def test_small_rates_are_shown_with_significant_digits() -> None:
    # ETH->BTC: two decimals showed "0.05" for 0.0484999, and 3.3333 x 0.99 x 0.05 is not
    # the amountTo shown.
    q = make_quote(key="k", curr_from="ETH", curr_to="BTC", amount_from=Decimal("3.3333"),
                   rate=Decimal("0.048499912345"), commission=Decimal("0.01"), rate_path="x",
                   now_ms=0, ttl_ms=1)
    shown = q.display(2)
    assert shown["exchangeRate"] == "0.048499912"
    assert shown["amountTo"] == "0.16"
    shown_rate = Decimal(str(shown["exchangeRate"]))
    assert fmt(Decimal("3.3333") * Decimal("0.99") * shown_rate, 2) == shown["amountTo"]


@pytest.mark.parametrize(("rate", "decimals", "shown"), [
    (Decimal("15"), 2, "15.00"), (Decimal("15.87"), 2, "15.87"),
    (Decimal("20.1234567891"), 2, "20.123457"), (Decimal("0.05"), 2, "0.05"),
    (Decimal("0.0999999999"), 2, "0.10"), (Decimal("66000.18"), 2, "66000.18"),
    (Decimal("123456789012.345"), 2, "123456789012.35"),  # integer digits are never cut
    (Decimal("0.000000012345678912"), 2, "0.000000012345679"),
    (Decimal("1.5"), 4, "1.5000"), (Decimal("3.14159265358979"), 0, "3.1415927"),
    (Decimal("0"), 2, "0.00"), (Decimal("1E+20"), 2, "1" + "0" * 20 + ".00"),
])
def test_fmt_rate(rate: Decimal, decimals: int, shown: str) -> None:
    assert fmt_rate(rate, decimals) == shown


def test_parse_currency() -> None:
    assert parse_currency("btc", "currFrom") == "BTC"
    for bad in ("", "B-T", None, "X" * 13):
        with pytest.raises(QuoteError):
            parse_currency(bad, "currFrom")


def test_fmt_of_very_large_amounts() -> None:
    # amountFrom at its limit (1e15) times a large rate: more digits than the default
    # 28-digit context holds once quantized to 2 places.
    big = Decimal("1e15") * Decimal("0.99") * Decimal("123456789012345678901.5")
    assert Decimal(fmt(big, 2)) == big and fmt(big, 2).endswith(".00")
    assert fmt(Decimal("1e35"), 2) == "1" + "0" * 35 + ".00"
    assert fmt(Decimal("999999999999999999999999999999999999.995"), 2) == \
        "1" + "0" * 36 + ".00"
    q = make_quote(key="k", curr_from="XYZ", curr_to="ABC", amount_from=Decimal("1e15"),
                   rate=Decimal("1e20"), commission=Decimal("0.01"), rate_path="x",
                   now_ms=0, ttl_ms=1)
    shown = q.display(2)
    assert shown["amountTo"] == "99" + "0" * 33 + ".00"
    assert shown["exchangeRate"] == "1" + "0" * 20 + ".00"
