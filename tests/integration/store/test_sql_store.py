"""SqlStore against real SQLite files and the real Postgres: every test runs on both."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, select, text
from sqlalchemy.engine import make_url
from tests.integration.store.clock import T0, Clock

from cryptowire.errors import StoreError
from cryptowire.store import VALID_SCOPES, ApiKey, SqlStore
from cryptowire.store import sql as sql_module
from cryptowire.store.keys import generate_key, hash_key
from cryptowire.store.sql import LAST_USED_INTERVAL_MS, alembic_config
from cryptowire.store.tables import api_keys, metadata

pytestmark = pytest.mark.integration

DEFAULT_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(store_url: str, clock: Clock) -> AsyncIterator[SqlStore]:
    s = await SqlStore.open(store_url, clock=clock)
    try:
        yield s
    finally:
        await s.close()


def _schema_state(conn: Connection) -> tuple[set[str], list[Any]]:
    # Compare only the tables of tables.py; other modules keep their own MetaData.
    def mine(name: str | None, type_: str, parent: Any) -> bool:
        return type_ != "table" or name in metadata.tables

    ctx = MigrationContext.configure(conn, opts={"include_name": mine})
    return set(ctx.get_current_heads()), compare_metadata(ctx, metadata)


async def test_migrations_idempotent_and_match_tables(store_url: str) -> None:
    first = await SqlStore.open(store_url)
    plaintext, key = await first.create_key("bot", ["read"])
    await first.close()
    second = await SqlStore.open(store_url)  # already at head: no-op, data kept
    try:
        assert await second.verify_key(plaintext) is not None
        async with second.engine.connect() as conn:
            heads, diff = await conn.run_sync(_schema_state)
        assert heads == set(ScriptDirectory.from_config(alembic_config()).get_heads())
        assert diff == []  # tables.py and the migrations describe the same schema
    finally:
        await second.close()


async def test_concurrent_open(store_url: str) -> None:
    opened = await asyncio.gather(
        *(SqlStore.open(store_url) for _ in range(3)), return_exceptions=True
    )
    stores = [s for s in opened if isinstance(s, SqlStore)]
    try:
        assert stores == opened
        for s in stores:
            assert (await s.table_counts())["api_keys"] == 0
    finally:
        for s in stores:
            await s.close()


async def test_create_verify_list_revoke(store: SqlStore, clock: Clock) -> None:
    plaintext, key = await store.create_key("trading bot", ["read", "rfq"])
    assert plaintext.startswith(f"cw_{key.prefix}_")
    assert key == ApiKey(
        id=key.id,
        prefix=key.prefix,
        name="trading bot",
        scopes=frozenset({"read", "rfq"}),
        created_at=T0,
        revoked_at=None,
        last_used_at=None,
    )
    assert len(key.id) == 12

    clock.now = T0 + 5
    verified = await store.verify_key(plaintext)
    assert verified is not None
    assert verified.id == key.id and verified.scopes == key.scopes
    assert verified.last_used_at == T0 + 5

    assert await store.list_keys() == [verified]

    clock.now = T0 + 10
    assert await store.revoke_key(key.id) is True
    assert await store.verify_key(plaintext) is None
    assert await store.revoke_key(key.id) is False  # already revoked
    [listed] = await store.list_keys()
    assert listed.revoked and listed.revoked_at == T0 + 10


async def test_revoke_by_prefix_and_unknown(store: SqlStore) -> None:
    plaintext, key = await store.create_key("a", ["admin"])
    other_plain, other = await store.create_key("b", ["read"])
    assert await store.revoke_key("nosuchkey") is False
    assert await store.revoke_key(key.prefix) is True
    assert await store.verify_key(plaintext) is None
    assert await store.verify_key(other_plain) is not None  # the other key is untouched


async def test_wrong_secret_with_right_prefix(store: SqlStore) -> None:
    plaintext, key = await store.create_key("a", ["read"])
    forged, _ = generate_key(key.prefix)
    assert forged != plaintext
    assert await store.verify_key(forged) is None
    assert await store.verify_key(plaintext[:-1] + ("A" if plaintext[-1] != "A" else "B")) is None


@pytest.mark.parametrize(
    "plaintext",
    ["", "garbage", "cw_abcd1234_short", "Bearer cw_x", "cw_zzzzzzzz_" + "a" * 43],
)
async def test_bad_format_or_unknown_prefix(store: SqlStore, plaintext: str) -> None:
    await store.create_key("a", ["read"])
    assert await store.verify_key(plaintext) is None


async def test_plaintext_never_stored(store: SqlStore) -> None:
    created = [await store.create_key(f"k{i}", ["read", "publish"]) for i in range(3)]
    async with store.engine.connect() as conn:
        rows = [
            row
            for table in metadata.sorted_tables
            for row in (await conn.execute(select(table))).all()
        ]
        stored = " ".join(str(value) for row in rows for value in row)
        hashes = set((await conn.execute(select(api_keys.c.key_hash))).scalars())
    for plaintext, key in created:
        secret = plaintext.split("_", 2)[2]
        assert plaintext not in stored
        assert secret not in stored
        assert secret[:16] not in stored
        assert key.prefix in stored  # the prefix is stored in clear, on purpose
    assert hashes == {hash_key(p) for p, _ in created}


async def test_unknown_scope_refused(store: SqlStore) -> None:
    with pytest.raises(StoreError, match="unknown scope"):
        await store.create_key("a", ["read", "write"])
    with pytest.raises(StoreError, match="at least one scope"):
        await store.create_key("a", [])
    with pytest.raises(StoreError):
        await store.create_key("  ", ["read"])
    assert (await store.table_counts())["api_keys"] == 0


async def test_all_scopes_round_trip(store: SqlStore) -> None:
    plaintext, key = await store.create_key("root", sorted(VALID_SCOPES))
    verified = await store.verify_key(plaintext)
    assert verified is not None and verified.scopes == VALID_SCOPES == key.scopes


async def test_last_used_written_at_most_once_a_minute(store: SqlStore, clock: Clock) -> None:
    plaintext, key = await store.create_key("a", ["read"])

    async def stored_last_used() -> int | None:
        [listed] = await store.list_keys()
        return listed.last_used_at

    clock.now = T0 + 1_000
    assert (await store.verify_key(plaintext)) is not None
    assert await stored_last_used() == T0 + 1_000
    clock.now = T0 + 1_000 + LAST_USED_INTERVAL_MS - 1
    verified = await store.verify_key(plaintext)
    assert verified is not None and verified.last_used_at == T0 + 1_000
    assert await stored_last_used() == T0 + 1_000
    clock.now = T0 + 1_000 + LAST_USED_INTERVAL_MS
    verified = await store.verify_key(plaintext)
    assert verified is not None and verified.last_used_at == clock.now
    assert await stored_last_used() == clock.now


async def test_revoked_key_ids(store: SqlStore, clock: Clock) -> None:
    keys = [(await store.create_key(f"k{i}", ["read"]))[1] for i in range(4)]
    assert await store.revoked_key_ids() == set()
    clock.now = T0 + 1_000
    await store.revoke_key(keys[0].id)
    clock.now = T0 + 2_000
    await store.revoke_key(keys[1].prefix)
    await store.revoke_key(keys[2].id)
    assert await store.revoked_key_ids() == {keys[0].id, keys[1].id, keys[2].id}
    assert await store.revoked_key_ids(T0 + 1_000) == {keys[0].id, keys[1].id, keys[2].id}
    assert await store.revoked_key_ids(T0 + 1_001) == {keys[1].id, keys[2].id}
    assert await store.revoked_key_ids(T0 + 2_000) == {keys[1].id, keys[2].id}
    assert await store.revoked_key_ids(T0 + 2_001) == set()


async def test_table_counts_ping_and_engine(store: SqlStore) -> None:
    counts = await store.table_counts()
    assert counts["api_keys"] == 0 and "alembic_version" not in counts
    assert set(metadata.tables) <= set(counts)
    assert set(counts.values()) == {0}
    await store.create_key("a", ["read"])
    await store.create_key("b", ["rfq"])
    assert (await store.table_counts())["api_keys"] == 2
    await store.ping()
    async with store.engine.connect() as conn:
        assert (await conn.execute(text("SELECT count(*) FROM api_keys"))).scalar_one() == 2


async def test_prefix_collision_draws_again(
    store: SqlStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, first = await store.create_key("a", ["read"])
    drawn = [generate_key(first.prefix), generate_key()]
    monkeypatch.setattr(sql_module, "generate_key", lambda: drawn.pop(0))
    plaintext, second = await store.create_key("b", ["read"])
    assert second.prefix != first.prefix
    assert drawn == []
    verified = await store.verify_key(plaintext)
    assert verified is not None and verified.id == second.id


async def test_sqlite_wal_and_foreign_keys(tmp_path: Any) -> None:
    store = await SqlStore.open(f"sqlite:///{tmp_path / 'x.db'}")  # plain URL: aiosqlite
    try:
        assert store.engine.dialect.driver == "aiosqlite"
        async with store.engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar_one() == "wal"
            assert (await conn.execute(text("PRAGMA foreign_keys"))).scalar_one() == 1
    finally:
        await store.close()


async def test_plain_postgres_url_uses_asyncpg(pg_url: str) -> None:
    plain = make_url(pg_url).set(drivername="postgresql").render_as_string(hide_password=False)
    store = await SqlStore.open(plain)
    try:
        assert store.engine.dialect.driver == "asyncpg"
        await store.ping()
    finally:
        await store.close()


async def test_ping_fails_when_database_is_gone(pg_url: str) -> None:
    store = await SqlStore.open(pg_url)
    try:
        await store.ping()
        name = make_url(pg_url).database
        admin_url = os.environ.get("CRYPTOWIRE_TEST_DATABASE_URL", DEFAULT_ADMIN_URL)
        admin = await asyncpg.connect(admin_url)
        try:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        finally:
            await admin.close()
        with pytest.raises(StoreError):
            await store.ping()
        with pytest.raises(StoreError):
            await store.list_keys()
    finally:
        await store.close()


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@127.0.0.1:1/postgres",  # nothing listens on port 1
        "sqlite:////nonexistent-dir/cryptowire.db",
        "nonsense",
    ],
)
async def test_open_failures_are_store_errors(url: str) -> None:
    with pytest.raises(StoreError):
        await SqlStore.open(url)
    # After a failed connect, aiosqlite's worker thread answers its own stop request later;
    # let it finish before the loop closes (omnilib/aiosqlite#389, "Event loop is closed").
    for thread in threading.enumerate():
        if thread.name.endswith("(_connection_worker_thread)"):
            await asyncio.to_thread(thread.join, 1.0)
