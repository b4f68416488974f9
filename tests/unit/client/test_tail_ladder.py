"""The order-book ladder of ``cryptowire tail book:...``: what it draws, and that piped output
stays one line (or one JSON object) per message."""

from __future__ import annotations

import io
import json
from typing import Any

from rich.console import Console

from cryptowire.cli.ladder import render_ladder
from cryptowire.cli.tail import TailPrinter
from cryptowire.client import Book, Gap, Message, SubscribeReply

CH = "book:50:BTCUSDT"
SNAPSHOT = Message(CH, "snapshot", "k2f9", 17, 1704063600000, "bybit", {
    "symbol": "BTCUSDT",
    "bids": [["17440.00", "40.833"], ["17439.50", "0.513"], ["17439.00", "1"]],
    "asks": [["17440.50", "78.815"], ["17441.00", "0.005"], ["17442.5", "2"]],
})


def drawn(renderable: Any, width: int = 100) -> list[str]:
    console = Console(record=True, width=width, file=io.StringIO())
    console.print(renderable)
    return [line.strip() for line in console.export_text().splitlines() if line.strip()]


def book() -> Book:
    b = Book(CH)
    b.apply(SNAPSHOT)
    return b


def test_asks_above_bids_below_best_at_the_spread() -> None:
    lines = drawn(render_ladder(book(), levels=2))
    assert lines[0] == f"{CH} #17 live"
    rows = [line.split() for line in lines if line.startswith(("ask", "bid", "spread"))]
    assert rows == [
        ["ask", "17441.00", "0.005", "78.820"],   # the second ask, totals from the spread
        ["ask", "17440.50", "78.815", "78.815"],  # the best ask, right above the spread
        ["spread", "0.50"],
        ["bid", "17440.00", "40.833", "40.833"],  # the best bid, right under it
        ["bid", "17439.50", "0.513", "41.346"],
    ]
    assert not any("17442.5" in line or "17439.00" in line for line in lines)  # levels=2


def test_an_invalid_book_says_why() -> None:
    b = book()
    b.apply(Gap(CH, "the hub lost its history"))
    text = " ".join(drawn(render_ladder(b, levels=1)))  # the title wraps at the table's width
    assert "NOT VALID messages lost: the hub lost its history" in text
    assert "17440.50" in text  # the last levels stay visible
    empty = "\n".join(drawn(render_ladder(Book(CH))))
    assert "waiting" in empty and "spread -" in empty


def reply(*channels: str) -> SubscribeReply:
    return SubscribeReply.from_raw({"op": "subscribe", "args": list(channels),
                                    "rejected": None, "positions": {}})


def test_on_a_terminal_books_go_to_the_ladder_and_the_rest_prints_lines() -> None:
    out, err = io.StringIO(), io.StringIO()
    printer = TailPrinter(False, out, err, levels=1, ladder=True)
    printer.subscribed(reply(CH, "app:x"))
    assert printer.ladder is not None
    printer.show(SNAPSHOT)
    printer.show(Message("app:x", "update", "e", 1, 1704063600000, "app", {"n": 1}))
    printer.close()
    text = out.getvalue()
    assert '"n":1' in text and "app:x #1" in text
    assert "17440.50" in text and "17440.00" in text and "17439.50" not in text
    assert '"bids"' not in text  # the book was drawn, not printed as a line


def test_piped_output_stays_lines() -> None:
    out, err = io.StringIO(), io.StringIO()  # not a terminal: no ladder
    printer = TailPrinter(False, out, err)
    printer.subscribed(reply(CH))
    printer.show(SNAPSHOT)
    assert printer.ladder is None
    assert out.getvalue().count("\n") == 1 and '"asks":[["17440.50","78.815"]' in out.getvalue()

    out = io.StringIO()
    printer = TailPrinter(True, out, io.StringIO())
    printer.subscribed(reply(CH))
    printer.show(SNAPSHOT)
    printer.show(Gap(CH, "lost"))
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert lines == [SNAPSHOT.to_dict(), {"event": "gap", "channel": CH, "reason": "lost"}]
