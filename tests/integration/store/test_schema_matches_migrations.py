"""The one ``MetaData`` and the migrations describe the same schema, on SQLite and Postgres.

After ``alembic upgrade head`` Alembic's autogenerate comparison must find nothing to do: a
table added to the code without a migration, a migration that drifted from the code, or a
table the metadata does not know (autogenerate would propose dropping it) all fail here.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cryptowire.store.sql import SqlStore, async_url
from cryptowire.store.tables import metadata


def _diff(conn: Connection) -> list[Any]:
    ctx = MigrationContext.configure(
        conn, opts={"compare_type": True, "compare_server_default": True,
                    "include_name": lambda name, kind, _parent: name != "alembic_version"})
    return list(compare_metadata(ctx, metadata))


async def test_autogenerate_finds_no_difference_after_upgrade(store_url: str) -> None:
    store = await SqlStore.open(store_url)  # runs every migration
    await store.close()
    engine = create_async_engine(async_url(store_url))
    try:
        async with engine.connect() as conn:
            diff = await conn.run_sync(_diff)
    finally:
        await engine.dispose()
    assert diff == [], f"schema and migrations differ: {diff}"


def test_every_table_is_in_the_one_metadata() -> None:
    expected = {"api_keys", "tokens", "chain_cursors", "onchain_events", "telegram_bindings",
                "rfq_trades", "pg_mirror"}
    assert expected <= set(metadata.tables)
