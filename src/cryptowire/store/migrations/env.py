"""Alembic environment for cryptowire; there is no alembic.ini (see ``cryptowire.store.sql``).

Online, :meth:`SqlStore.open` passes its sync connection in ``config.attributes["connection"]``
(the Alembic async recipe, run inside ``AsyncConnection.run_sync``). Without one, the URL in
the ``sqlalchemy.url`` option is opened with an async engine, or rendered as SQL offline.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from cryptowire.store.tables import metadata

config = context.config


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
        render_as_batch=connection.dialect.name == "sqlite",
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_with_url(url: str) -> None:
    engine = create_async_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.begin() as conn:
            await conn.run_sync(_configure)
    finally:
        await engine.dispose()


def _run() -> None:
    connection = config.attributes.get("connection")
    url = config.get_main_option("sqlalchemy.url")
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=metadata, literal_binds=True)
        with context.begin_transaction():
            context.run_migrations()
    elif connection is not None:
        _configure(connection)
    elif url:
        asyncio.run(_run_with_url(url))
    else:
        raise RuntimeError("no connection and no sqlalchemy.url for the migrations")


_run()
