"""``cryptowire tokens``: the on-chain watchlist and Telegram bindings, straight on the store.

A running hub picks changes up at its next poll (the watchers reload the watchlist from the
store every poll), so the CLI works beside a live hub. ``import`` reads a ``mongoexport``
of the seed 000 ``tracking`` collection: one document per line (the default) or a JSON
array (``--jsonArray``), canonical or relaxed Extended JSON.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, TypeVar

import orjson
import typer

from cryptowire.errors import CryptowireError
from cryptowire.settings import Settings

tokens_app = typer.Typer(no_args_is_help=True,
                         help="On-chain watchlist: add, remove, list, import; Telegram groups.")

T = TypeVar("T")
ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default ./cryptowire.toml)."),
]


def _settings(config: Path | None) -> Settings:
    from cryptowire.cli.console import load_config as load

    return load(config)


def _run(config: Path | None, fn: Callable[[Any], Awaitable[T]]) -> T:
    """Open the store and a :class:`TokenAdmin`, run ``fn(admin)``, report errors, exit 2."""
    from cryptowire.cli.console import fail, store_url
    from cryptowire.sources.evm.tokens import TokenAdmin
    from cryptowire.store.evm import EvmStore
    from cryptowire.store.sql import SqlStore

    settings = _settings(config)

    async def main() -> T:
        store = await SqlStore.open(store_url(settings))
        admin = TokenAdmin(settings.evm, EvmStore(store.engine))
        try:
            return await fn(admin)
        finally:
            await admin.close()
            await store.close()

    try:
        return asyncio.run(main())
    except CryptowireError as exc:
        fail(exc.message)


@tokens_app.command("add")
def add(
    chain: Annotated[str, typer.Argument(help="Chain name or id, e.g. eth or 1.")],
    address: Annotated[str, typer.Argument(help="Token address (0x...).")],
    paired: Annotated[str | None, typer.Option(help="Paired token (default: the chain's "
                                                    "wrapped native token).")] = None,
    group: Annotated[str | None, typer.Option(help="Telegram group of the token.")] = None,
    symbol: Annotated[str | None, typer.Option(help="Symbol (with --decimals and --pair: "
                                                    "nothing is read on chain).")] = None,
    decimals: Annotated[int | None, typer.Option(help="Token decimals.")] = None,
    pair: Annotated[str | None, typer.Option(help="Uniswap-V2 pair address.")] = None,
    is_token0: Annotated[bool | None, typer.Option("--is-token0/--is-token1",
                                                   help="Token is token0 of the pair.")] = None,
    config: ConfigOpt = None,
) -> None:
    """Track a token; what is not given is read on chain (ERC-20 and factory getPair)."""
    from cryptowire.cli.console import console

    payload: dict[str, Any] = {"chain": chain, "address": address, "paired": paired,
                               "group": group}
    if symbol is not None:
        payload["symbol"] = symbol
    if decimals is not None and pair is not None:
        payload.update(decimals=decimals, pair=pair,
                       isToken0=is_token0 if is_token0 is not None
                       else address.lower() < (paired or "").lower())
    token = _run(config, lambda admin: admin.add(payload))
    console.print(f"Tracking {token.symbol} {token.address} on chain {token.chain} "
                  f"(pair {token.pair}).")


@tokens_app.command("remove")
def remove(chain: Annotated[str, typer.Argument(help="Chain name or id.")],
           address: Annotated[str, typer.Argument(help="Token address.")],
           config: ConfigOpt = None) -> None:
    """Stop tracking a token."""
    from cryptowire.cli.console import console, err

    if not _run(config, lambda admin: admin.remove({"chain": chain, "address": address})):
        err.print(f"[red]Token {address} is not tracked on chain {chain}.[/red]")
        raise typer.Exit(1)
    console.print(f"Removed {address.lower()}.")


@tokens_app.command("list")
def list_(chain: Annotated[str | None, typer.Option(help="Only this chain.")] = None,
          json_out: Annotated[bool, typer.Option("--json", help="One JSON array on stdout.")]
          = False,
          config: ConfigOpt = None) -> None:
    """List tracked tokens."""
    from cryptowire.cli.console import print_table, whole_table

    tokens = _run(config, lambda admin: admin.list(chain))
    if json_out:
        print(orjson.dumps([t.public() for t in tokens]).decode())
        return
    table = whole_table("chain", "symbol", "address", "decimals", "pair", "group")
    for t in tokens:
        table.add_row(str(t.chain), t.symbol, t.address, str(t.decimals), t.pair or "-",
                      t.group or "-")
    print_table(table)


def _unwrap(value: Any) -> Any:
    """Extended JSON scalars (``{"$numberInt": "18"}``, ``{"$oid": ..}``) to plain values."""
    if isinstance(value, dict) and len(value) == 1:
        (key, inner), = value.items()
        if key in ("$numberInt", "$numberLong"):
            return int(inner)
        if key in ("$numberDouble", "$numberDecimal"):
            # Never through float: an integral value (a chain id, decimals) becomes an int,
            # anything else an exact Decimal.
            number = Decimal(str(inner))
            return int(number) if number == number.to_integral_value() else number
        if key == "$oid":
            return str(inner)
    return value


def read_mongoexport(text: str) -> list[dict[str, Any]]:
    """Documents of a ``mongoexport`` file (JSON lines or ``--jsonArray``)."""
    stripped = text.strip()
    if not stripped:
        return []
    if stripped.startswith("["):
        docs = json.loads(stripped, parse_float=Decimal)
    else:
        docs = [json.loads(line, parse_float=Decimal)
                for line in stripped.splitlines() if line.strip()]
    return [{k: _unwrap(v) for k, v in doc.items() if k != "_id"} for doc in docs]


@tokens_app.command("import")
def import_(path: Annotated[Path, typer.Argument(
                help="mongoexport JSON of the 'tracking' collection.")],
            config: ConfigOpt = None) -> None:
    """Import a mongoexport of a "tracking" collection; tokens already tracked are skipped."""
    from cryptowire.cli.console import console, err

    try:
        docs = read_mongoexport(path.read_text())
    except (OSError, ValueError) as exc:
        err.print(f"[red]Cannot read {path}: {exc}[/red]")
        raise typer.Exit(2) from exc

    async def run(admin: Any) -> tuple[int, list[str]]:
        added, problems = 0, []
        for i, doc in enumerate(docs):
            try:
                await admin.add(doc)
                added += 1
            except CryptowireError as exc:
                problems.append(f"#{i + 1} {doc.get('address')}: {exc.message}")
        return added, problems

    added, problems = _run(config, run)
    for line in problems:
        err.print(f"skipped {line}")
    console.print(f"Imported {added} of {len(docs)} tokens.")


#: Telegram chat ids of groups are negative (-1001234567890): an argument, not an option.
NEGATIVE_ARGS = {"ignore_unknown_options": True}


@tokens_app.command("bind", context_settings=NEGATIVE_ARGS)
def bind(group: Annotated[str, typer.Argument(help="Token group, e.g. alpha.")],
         chat_id: Annotated[str, typer.Argument(
             help="Telegram chat id, e.g. -1001234567890 (groups are negative).")],
         config: ConfigOpt = None) -> None:
    """Post the swaps and burns of a group's tokens to a Telegram chat."""
    from cryptowire.cli.console import console

    created = _run(config, lambda admin: admin.store.bind_chat(group, chat_id))
    console.print(f"{'Bound' if created else 'Already bound:'} {chat_id} to group {group}.")


@tokens_app.command("unbind", context_settings=NEGATIVE_ARGS)
def unbind(group: Annotated[str, typer.Argument(help="Token group.")],
           chat_id: Annotated[str, typer.Argument(help="Telegram chat id.")],
           config: ConfigOpt = None) -> None:
    """Stop posting a group to a chat."""
    from cryptowire.cli.console import console, err

    if not _run(config, lambda admin: admin.store.unbind_chat(group, chat_id)):
        err.print(f"[red]Chat {chat_id} is not bound to group {group}.[/red]")
        raise typer.Exit(1)
    console.print(f"Unbound {chat_id} from group {group}.")
