"""decimal_str: the hub's one Decimal -> text conversion never uses exponent notation."""

from __future__ import annotations

import re
from decimal import Decimal, localcontext

import pytest

from cryptowire.jsonnum import decimal_str

PLAIN = re.compile(r"^-?\d+(\.\d+)?$")


@pytest.mark.parametrize(("value", "kept", "normalized"), [
    (Decimal("5.638510758361385304123621477E-9"),
     "0.000000005638510758361385304123621477", "0.000000005638510758361385304123621477"),
    (Decimal("1E-30"), "0.000000000000000000000000000001", "0.000000000000000000000000000001"),
    (Decimal("1E+3"), "1000", "1000"),
    (Decimal("1.2345E+40"), "12345000000000000000000000000000000000000",
     "12345000000000000000000000000000000000000"),
    (Decimal("66000.00"), "66000.00", "66000"),
    (Decimal("0.04850"), "0.04850", "0.0485"),
    (Decimal("-0.0967"), "-0.0967", "-0.0967"),
    (Decimal("-0E-8"), "0.00000000", "0"),
    (Decimal("0"), "0", "0"),
])
def test_plain_for_tiny_huge_and_ordinary(value: Decimal, kept: str, normalized: str) -> None:
    assert "E" in str(value) or str(value) == kept  # what str() would have written
    assert decimal_str(value) == kept
    assert decimal_str(value, normalize=True) == normalized
    assert PLAIN.fullmatch(decimal_str(value)) and Decimal(decimal_str(value)) == value


def test_quotients_and_ints() -> None:
    with localcontext() as ctx:
        ctx.prec = 40
        q = Decimal("0.001") / Decimal("987654321")
    assert "E" in str(q)
    text = decimal_str(q, normalize=True)
    assert PLAIN.fullmatch(text) and Decimal(text) == q
    assert decimal_str(10**30) == "1" + "0" * 30


@pytest.mark.parametrize("bad", [Decimal("NaN"), Decimal("Infinity"), Decimal("-Infinity")])
def test_not_finite_is_refused(bad: Decimal) -> None:
    with pytest.raises(ValueError, match="not a finite decimal"):
        decimal_str(bad)


def test_the_client_sends_decimals_plain() -> None:
    from cryptowire.client._requests import json_default

    assert json_default(Decimal("1E-9")) == "0.000000001"
    assert json_default(Decimal("2.50E+3")) == "2500"


def test_rfq_display_and_bybit_percent_are_plain() -> None:
    from cryptowire.rfq.quote import fmt_rate, percent
    from cryptowire.sources.bybit.parser import percent_of_fraction

    assert percent_of_fraction("1E-7") == "0.00001"
    assert fmt_rate(Decimal("1.5E-10"), 2) == "0.00000000015"
    assert percent(Decimal("0.0000001")) == "0.00001"
