"""The ``cryptowire`` command (typer): serve, keys, config. The CLI configures logging; the
library never does."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console
from rich.table import Table

from cryptowire import redaction
from cryptowire.cli.record import record
from cryptowire.cli.tokens import tokens_app
from cryptowire.errors import ConfigError
from cryptowire.settings import Settings, load_settings

app = typer.Typer(no_args_is_help=True, help="cryptowire: a self-hosted real-time crypto hub.")
keys_app = typer.Typer(no_args_is_help=True, help="API keys: create, list, revoke.")
config_app = typer.Typer(no_args_is_help=True, help="Show or check the effective settings.")
app.add_typer(keys_app, name="keys")
app.add_typer(config_app, name="config")
app.add_typer(tokens_app, name="tokens")
app.command("record")(record)
console = Console()
err = Console(stderr=True)

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML settings file (default ./cryptowire.toml)."),
]


def _settings(config: Path | None, **overrides: Any) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        err.print(f"[red]Invalid settings:[/red] {exc}")
        raise typer.Exit(2) from exc


def _logging(level: str) -> None:
    logging.basicConfig(level=level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)
    redaction.install()  # keys and tokens never reach the log, whoever logs them


@app.command()
def serve(
    config: ConfigOpt = None,
    host: Annotated[str | None, typer.Option(help="Override server.host.")] = None,
    port: Annotated[int | None, typer.Option(help="Override server.port.")] = None,
    demo: Annotated[bool, typer.Option("--demo", help="Serve the synthetic demo source.")] = False,
) -> None:
    """Start the hub (HTTP + every WebSocket path on one port)."""
    settings = _settings(config)
    if host is not None:
        settings.server.host = host
    if port is not None:
        settings.server.port = port
    if demo:
        settings.demo.mode = "on"
    _logging(settings.log_level)
    from aiohttp import web

    from cryptowire.core.node import Node
    from cryptowire.server import listener
    from cryptowire.server.app import create_app, ssl_context

    try:
        import uvloop

        uvloop.install()
    except ImportError:  # pragma: no cover - uvloop is a dependency on Linux/macOS
        pass
    node = Node(settings)
    scheme = "https" if settings.server.tls_cert else "http"
    ws_scheme = "wss" if settings.server.tls_cert else "ws"
    base = f"{settings.server.host}:{settings.server.port}"
    console.print(f"cryptowire listening on {scheme}://{base}  (WebSocket: "
                  f"{ws_scheme}://{base}/ws, dashboard: {scheme}://{base}/, API docs: "
                  f"{scheme}://{base}/docs)", soft_wrap=True)
    with contextlib.suppress(web.GracefulExit, KeyboardInterrupt):  # SIGTERM / SIGINT
        asyncio.run(listener.serve(create_app(node), settings.server.host,
                                   settings.server.port, ssl_context=ssl_context(node),
                                   shutdown_timeout=settings.server.shutdown_grace_s))


async def _with_store(settings: Settings, fn: Any) -> Any:
    from cryptowire.store.sql import SqlStore

    store = await SqlStore.open(settings.store.url)
    try:
        return await fn(store)
    finally:
        await store.close()


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="A label for the key, e.g. 'my-bot'.")],
    scope: Annotated[list[str] | None, typer.Option("--scope", "-s",
                     help="read, rfq, publish, admin (repeatable; default read).")] = None,
    config: ConfigOpt = None,
) -> None:
    """Create a key. The plaintext is printed once and never stored."""
    settings = _settings(config)
    scopes = scope or ["read"]

    async def run(store: Any) -> Any:
        return await store.create_key(name, scopes)

    from cryptowire.errors import StoreError

    try:
        plaintext, key = asyncio.run(_with_store(settings, run))
    except StoreError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from exc
    console.print(f"Created key [bold]{key.id}[/bold] ({name}, scopes: "
                  f"{', '.join(sorted(key.scopes))}). Store it now; it is not shown again:")
    print(plaintext)


@keys_app.command("list")
def keys_list(config: ConfigOpt = None,
              json_out: Annotated[bool, typer.Option("--json")] = False) -> None:
    """List keys (ids, prefixes, scopes; never the secrets)."""
    settings = _settings(config)

    async def run(store: Any) -> Any:
        return await store.list_keys()

    keys = asyncio.run(_with_store(settings, run))
    if json_out:
        print(orjson.dumps([{"id": k.id, "prefix": k.prefix, "name": k.name,
                             "scopes": sorted(k.scopes), "revoked": k.revoked}
                            for k in keys]).decode())
        return
    table = Table("id", "prefix", "name", "scopes", "state")
    for k in keys:
        table.add_row(k.id, k.prefix, k.name, ",".join(sorted(k.scopes)),
                      "revoked" if k.revoked else "active")
    console.print(table)


@keys_app.command("revoke")
def keys_revoke(key: Annotated[str, typer.Argument(help="Key id or prefix.")],
                config: ConfigOpt = None) -> None:
    """Revoke a key; running hubs close its sessions within seconds."""
    settings = _settings(config)

    async def run(store: Any) -> Any:
        return await store.revoke_key(key)

    if not asyncio.run(_with_store(settings, run)):
        err.print(f"[red]No active key '{key}'.[/red]")
        raise typer.Exit(1)
    console.print(f"Revoked {key}.")


@config_app.command("show")
def config_show(config: ConfigOpt = None) -> None:
    """Print the effective settings (file + environment), secrets masked."""
    settings = _settings(config)
    print(orjson.dumps(settings.masked(), option=orjson.OPT_INDENT_2).decode())


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate the settings; exit 2 with the reasons when they cannot work."""
    settings = _settings(config)
    console.print(f"Settings OK: store {settings.store.url.split('://')[0]}, bus "
                  f"{settings.bus.url.split('://')[0]}, port {settings.server.port}, "
                  f"demo {settings.demo.mode}.")


@config_app.command("example")
def config_example() -> None:
    """Print an annotated settings file with every default (cryptowire.example.toml)."""
    from cryptowire.settings_example import render_example

    print(render_example(), end="")


from cryptowire.cli.tail import tail  # noqa: E402  (the command lives in its module)

app.command()(tail)


def main() -> None:
    app()
