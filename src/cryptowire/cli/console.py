"""What every ``cryptowire`` subcommand shares: the consoles, the one-line failure, loading
the settings, saying which store it opens, and tables printed whole.

It imports nothing of :mod:`cryptowire.cli`, so the subcommand modules (``tokens``,
``serving``, ...) use it without reaching back into the package that registers them.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from cryptowire.errors import ConfigError
from cryptowire.redaction import hide_password
from cryptowire.settings import Settings, load_settings

console = Console(soft_wrap=True)  # a line is never broken at 80 columns when piped
err = Console(stderr=True, soft_wrap=True)


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``message`` as one plain line on stderr and exit with ``code``."""
    print(message, file=sys.stderr, flush=True)
    raise typer.Exit(code)


def load_config(config: Path | None, **overrides: Any) -> Settings:
    """The settings from ``config`` (and the environment); a bad file is one line, exit 2."""
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        fail(exc.message)


def store_url(settings: Settings) -> str:
    """The store URL after saying on stderr which store this is (password masked); creates
    the per-user data directory when the store lives there."""
    from cryptowire.settings.check import data_dir

    url = settings.store.url
    print(f"store: {hide_password(url)}", file=sys.stderr, flush=True)
    home = data_dir()
    if url.startswith("sqlite") and str(home) in url:
        home.mkdir(parents=True, exist_ok=True)
    return url


def whole_table(*columns: str) -> Table:
    """A table whose cells are never cut or wrapped (ids and addresses must stay whole)."""
    table = Table()
    for name in columns:
        table.add_column(name, no_wrap=True, overflow="ignore")
    return table


def print_table(table: Table) -> None:
    """Print ``table`` at its natural width, even when stdout is a pipe (rich would shrink
    it to 80 columns and cut the cells)."""
    if console.is_terminal:
        console.print(table)
        return
    width = Console(width=100_000).measure(table).maximum
    Console(width=width).print(table)
