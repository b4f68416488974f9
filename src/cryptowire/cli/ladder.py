"""The live order-book ladder ``cryptowire tail book:50:BTCUSDT`` draws on a terminal.

:func:`render_ladder` turns a :class:`~cryptowire.client.Book` into a rich table: the asks
above (the best ask, the lowest, right above the spread), the bids below (the best bid, the
highest, right under it), each with the running total of size from the spread outwards.
Prices and sizes are printed as the venue wrote them; totals and the spread are exact
``Decimal`` arithmetic, written without exponent. :class:`Ladder` keeps one
:class:`~cryptowire.client.Book` per ``book:`` channel and redraws them through
:class:`rich.live.Live` a few times a second (not once per message), from the event loop:
Live's own refresh thread would read a book while the loop changes it.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.table import Table

from cryptowire.client import Book, ClientEvent
from cryptowire.jsonnum import decimal_str

DEFAULT_LEVELS = 10
#: Redraws per second: a person reads a ladder, and a book may change every 20 ms.
REFRESH_PER_S = 8


def _with_totals(levels: list[list[str]]) -> list[tuple[str, str, str]]:
    total = Decimal(0)
    rows = []
    for price, size in levels:
        total += Decimal(size)
        rows.append((price, size, decimal_str(total)))
    return rows


def render_ladder(book: Book, levels: int = DEFAULT_LEVELS) -> Table:
    """``book`` as a ladder of ``levels`` levels a side (asks above, bids below)."""
    asks = _with_totals(book.levels("asks", levels))
    bids = _with_totals(book.levels("bids", levels))
    state = "[green]live[/green]" if book.valid else f"[bold red]NOT VALID[/bold red] " \
                                                     f"{escape(book.reason)}"
    position = f"#{book.offset}" if book.offset is not None else "waiting"
    table = Table(title=f"[bold]{escape(book.channel)}[/bold] {position} {state}",
                  box=box.SIMPLE_HEAD, title_justify="left", expand=False)
    table.add_column("side")
    table.add_column("price", justify="right")
    table.add_column("size", justify="right")
    table.add_column("total", justify="right")
    dim = "" if book.valid else " dim"
    for price, size, total in reversed(asks):
        table.add_row("ask", price, size, total, style=f"red{dim}")
    table.add_row("", _spread(book), "", "", style="bold")
    for price, size, total in bids:
        table.add_row("bid", price, size, total, style=f"green{dim}")
    return table


def _spread(book: Book) -> str:
    bid, ask = book.best_bid(), book.best_ask()
    if bid is None or ask is None:
        return "spread -"
    return f"spread {decimal_str(Decimal(ask[0]) - Decimal(bid[0]))}"


class Ladder:
    """The ladders of some ``book:`` channels, drawn live on ``console``."""

    def __init__(self, console: Console, channels: list[str], levels: int) -> None:
        self.books = {channel: Book(channel) for channel in channels}
        self.levels = levels
        self.live = Live(self, console=console, auto_refresh=False, redirect_stderr=False)
        self.dirty = False

    def __rich__(self) -> RenderableType:
        return Group(*(render_ladder(book, self.levels) for book in self.books.values()))

    def apply(self, item: ClientEvent) -> bool:
        """Apply ``item`` to the book of its channel; True when one of the books took it."""
        took = any([book.apply(item) for book in self.books.values()])
        self.dirty = self.dirty or took
        return took

    def start(self) -> None:
        self.live.start(refresh=True)

    async def redraw(self) -> None:
        """Redraw what changed, :data:`REFRESH_PER_S` times a second, until cancelled."""
        while True:
            await asyncio.sleep(1 / REFRESH_PER_S)
            if self.dirty:
                self.dirty = False
                self.live.refresh()

    def stop(self) -> None:
        self.live.stop()
