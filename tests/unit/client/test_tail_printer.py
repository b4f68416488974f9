"""What ``cryptowire tail`` prints for each thing the client yields."""

from __future__ import annotations

import io
import json

from cryptowire.cli.tail import TailPrinter
from cryptowire.client import Disconnected, Gap, Message, Reconnected

MSG = Message("ticker:BTCUSDT", "update", "k2f9", 7, 1704063600000, "demo",
              {"symbol": "BTCUSDT", "price": "44578.50"})


def printer(json_out: bool) -> tuple[TailPrinter, io.StringIO, io.StringIO]:
    out, err = io.StringIO(), io.StringIO()
    return TailPrinter(json_out, out, err), out, err


def test_json_lines() -> None:
    p, out, err = printer(True)
    p.show(MSG)
    p.show(Disconnected(1001, "Server shutting down", 0.4))
    p.show(Reconnected(2, 1.5))
    p.show(Gap("ticker:BTCUSDT", "the hub lost its history"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [
        {"channel": "ticker:BTCUSDT", "type": "update", "epoch": "k2f9", "offset": 7,
         "ts": 1704063600000, "source": "demo",
         "data": {"symbol": "BTCUSDT", "price": "44578.50"}},
        {"event": "gap", "channel": "ticker:BTCUSDT", "reason": "the hub lost its history"},
    ]
    assert "disconnected (1001)" in err.getvalue() and "reconnected" in err.getvalue()


def test_rich_lines_keep_decimals_and_names_verbatim() -> None:
    p, out, _ = printer(False)
    p.show(MSG)
    p.show(Gap("app:x:", "[lost]"))  # markup and emoji codes in names stay text
    text = out.getvalue()
    assert "23:00:00.000 ticker:BTCUSDT #7 demo" in text
    assert '"price":"44578.50"' in text
    assert "GAP app:x: [lost]" in text
