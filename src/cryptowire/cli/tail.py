"""``cryptowire tail CHANNEL...``: print a hub's live messages, across hub restarts.

Built on :mod:`cryptowire.client`, so it reconnects with backoff, recovers what it missed
from the hub's history and prints a gap when that is impossible. ``--json`` writes one JSON
object per line on stdout (the native data frame; a gap is ``{"event": "gap", ...}``) and
connection news on stderr, so the output can be piped into ``jq``. On a terminal, the
``book:`` channels are drawn as a live ladder (``cli/ladder.py``) instead of one line per
message; piped, they print lines like every channel.
"""

from __future__ import annotations

import asyncio
import logging
import sys
from datetime import UTC, datetime
from typing import Annotated, TextIO

import orjson
import typer
from rich.console import Console
from rich.markup import escape

from cryptowire.cli.ladder import DEFAULT_LEVELS, Ladder
from cryptowire.client import (
    AuthRejected,
    ClientError,
    ClientEvent,
    Disconnected,
    Gap,
    Message,
    Reconnected,
    SubscribeReply,
    connect,
)
from cryptowire.errors import CryptowireError

DEFAULT_URL = "ws://127.0.0.1:8000/ws"
#: A person is watching: retry a lost hub at least every few seconds (the SDK default is 30).
TAIL_BACKOFF_MAX_S = 5.0


def _clock(ts: int) -> str:
    return datetime.fromtimestamp(ts / 1000, UTC).strftime("%H:%M:%S.%f")[:-3]


class TailPrinter:
    """Renders what the client yields: rich lines, or JSON lines (``json_out``); the
    ``book:`` channels as a live ladder of ``levels`` a side when ``ladder`` (by default:
    when ``out`` is a terminal and not ``json_out``)."""

    def __init__(self, json_out: bool, out: TextIO | None = None,
                 err: TextIO | None = None, *, levels: int = DEFAULT_LEVELS,
                 ladder: bool | None = None) -> None:
        self.json_out = json_out
        self.out = out or sys.stdout
        self.console = Console(file=self.out, soft_wrap=True, emoji=False)
        self.err = Console(file=err or sys.stderr, soft_wrap=True, emoji=False)
        if ladder is None:
            ladder = not json_out and self.out.isatty()
        self.want_ladder = ladder
        self.levels = levels
        self.ladder: Ladder | None = None

    def _line(self, obj: object) -> None:
        self.out.write(orjson.dumps(obj).decode() + "\n")
        self.out.flush()

    def info(self, text: str) -> None:
        self.err.print(text)

    def subscribed(self, reply: SubscribeReply) -> None:
        for rejected in reply.rejected:
            self.err.print(f"[yellow]rejected[/yellow] {escape(rejected.arg)}: "
                           f"{escape(rejected.reason)}")
        self.err.print(f"[green]subscribed[/green] {escape(', '.join(reply.channels))}")
        books = [c for c in reply.channels if c.startswith("book:")]
        if self.want_ladder and books and self.ladder is None:
            self.ladder = Ladder(self.console, books, self.levels)
            self.err = self.console  # news goes above the ladder, not through it
            self.ladder.start()

    def close(self) -> None:
        """Stop drawing the ladder (its last state stays on the screen)."""
        if self.ladder is not None:
            self.ladder.stop()

    def show(self, item: ClientEvent) -> None:
        if self.ladder is not None and self.ladder.apply(item) and isinstance(item, Message):
            return  # drawn in the ladder
        if isinstance(item, Message):
            self.message(item)
        elif isinstance(item, Gap):
            if self.json_out:
                self._line({"event": "gap", "channel": item.channel, "reason": item.reason})
            else:
                self.console.print(f"[bold yellow]GAP[/bold yellow] [cyan]"
                                   f"{escape(item.channel)}[/cyan] {escape(item.reason)}")
                self.out.flush()
        elif isinstance(item, Disconnected):
            code = f" ({item.code})" if item.code is not None else ""
            self.err.print(f"[red]disconnected[/red]{code} {escape(item.reason)}; "
                           f"reconnecting in {item.retry_in_s:.1f}s")
        elif isinstance(item, Reconnected):
            self.err.print(f"[green]reconnected[/green] after {item.attempts} attempt(s), "
                           f"{item.downtime_s:.1f}s down; recovering")

    def message(self, msg: Message) -> None:
        if self.json_out:
            self._line(msg.to_dict())
            return
        kind = "" if msg.type in ("update", "snapshot") else f" [yellow]{escape(msg.type)}[/yellow]"
        source = f" [magenta]{escape(msg.source)}[/magenta]" if msg.source else ""
        data = escape(orjson.dumps(msg.data).decode())
        self.console.print(f"[dim]{_clock(msg.ts)}[/dim] [bold cyan]{escape(msg.channel)}"
                           f"[/bold cyan] [dim]#{msg.offset}[/dim]{kind}{source} {data}")
        self.out.flush()


async def run_tail(channels: list[str], url: str, api_key: str | None,
                   printer: TailPrinter) -> None:
    """Subscribe and print until cancelled; client errors propagate."""
    printer.info(f"connecting to {escape(url.split('?', 1)[0])} ...")
    async with connect(url, api_key, connect_timeout_s=None,
                       backoff_max_s=TAIL_BACKOFF_MAX_S) as client:
        printer.subscribed(await client.subscribe(*channels))
        redraw = asyncio.create_task(printer.ladder.redraw()) if printer.ladder else None
        try:
            async for item in client:
                printer.show(item)
        finally:
            if redraw is not None:
                redraw.cancel()
                await asyncio.wait({redraw})
            printer.close()


def tail(
    channels: Annotated[list[str], typer.Argument(
        help="Channels to follow, e.g. ticker:BTCUSDT kline:1m:ETHUSDT swap:eth app:signals.",
        show_default=False, metavar="CHANNEL...")],
    url: Annotated[str, typer.Option("--url", help="The hub's native WebSocket URL.")
                   ] = DEFAULT_URL,
    api_key: Annotated[str | None, typer.Option(
        "--api-key", envvar="CRYPTOWIRE_API_KEY", show_default=False,
        help="API key (default: $CRYPTOWIRE_API_KEY; none = anonymous read).")] = None,
    json_out: Annotated[bool, typer.Option(
        "--json", help="Print each message as one raw JSON object per line.")] = False,
    levels: Annotated[int, typer.Option(
        "--levels", min=1, max=500,
        help="Price levels a side in the live ladder drawn for book: channels on a terminal "
             "(piped or with --json, book messages print as lines).")] = DEFAULT_LEVELS,
    verbose: Annotated[bool, typer.Option("--verbose", "-v",
                                          help="Log every connection attempt.")] = False,
) -> None:
    """Print live messages of CHANNEL... (reconnects and recovers across hub restarts).

    On a terminal, an order book channel such as book:50:BTCUSDT is drawn as a live ladder.
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.CRITICAL,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    printer = TailPrinter(json_out, levels=levels)
    try:
        asyncio.run(run_tail(channels, url, api_key, printer))
    except KeyboardInterrupt:
        raise typer.Exit(130) from None
    except AuthRejected as exc:
        printer.err.print(f"[red]not authorized:[/red] {escape(exc.message)}")
        raise typer.Exit(2) from exc
    except ClientError as exc:
        printer.err.print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(2 if isinstance(exc, ValueError) else 1) from exc
    except CryptowireError as exc:
        printer.err.print(f"[red]error:[/red] {escape(exc.message)}")
        raise typer.Exit(1) from exc
