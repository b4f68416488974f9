"""SqlStore: the SQL store over SQLAlchemy 2 Core, async (aiosqlite or asyncpg), same code for both.

:meth:`SqlStore.open` creates the engine and applies the Alembic migrations in
``migrations/`` (DESIGN.md, "Store"). There is no alembic.ini: :func:`alembic_config` builds
the configuration in code, so migrations also run from an installed package. Every foreign
exception leaves this module as :class:`~cryptowire.errors.StoreError` (``raise ... from``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from alembic import command
from alembic.config import Config
from alembic.util.exc import CommandError
from sqlalchemy import (
    Connection,
    Row,
    event,
    func,
    insert,
    inspect,
    or_,
    select,
    table,
    text,
    update,
)
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError, OperationalError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from cryptowire.clock import now_ms
from cryptowire.errors import StoreError
from cryptowire.logthrottle import log_throttled
from cryptowire.store.keys import (
    ApiKey,
    check_key,
    check_name,
    format_scopes,
    generate_key,
    hash_key,
    new_key_id,
    parse_prefix,
    parse_scopes,
)
from cryptowire.store.tables import api_keys

log = logging.getLogger("cryptowire.store")

#: The Alembic script directory shipped inside the package.
MIGRATIONS_DIR = Path(__file__).with_name("migrations")
#: ``verify_key`` writes ``last_used_at`` at most this often per key, not on every connect.
LAST_USED_INTERVAL_MS = 60_000
#: How long :meth:`SqlStore.ping` waits for ``SELECT 1``.
PING_TIMEOUT_S = 5.0

_CREATE_ATTEMPTS = 5
# Postgres advisory lock id ("cw_migrt") so two processes opening at once migrate one by one.
_MIGRATION_LOCK_ID = 0x63775F6D69677274
# Compared against when the prefix is unknown, so a miss costs what a hit costs.
_DUMMY_HASH = hash_key("cw_00000000_" + "0" * 43)
# What the drivers raise, through SQLAlchemy (it wraps asyncpg's and sqlite3's errors) or not
# (refused connections, missing driver modules, Alembic refusing an unknown revision).
_FOREIGN_ERRORS: tuple[type[Exception], ...] = (SQLAlchemyError, OSError, CommandError)
# Execution option: _sqlite_begin takes the write lock at once (for migrations).
_SQLITE_IMMEDIATE = "cryptowire_sqlite_immediate"
_ASYNC_DRIVERS = {
    "sqlite": "sqlite+aiosqlite",
    "postgresql": "postgresql+asyncpg",
    "postgres": "postgresql+asyncpg",
}


def async_url(url: str) -> URL:
    """Parse ``url`` and pick the async driver: ``sqlite://`` -> aiosqlite, ``postgresql://``
    (or ``postgres://``) -> asyncpg. URLs naming a driver are kept as they are."""
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise StoreError("not a database URL (expected e.g. sqlite:///cryptowire.db)") from exc
    return parsed.set(drivername=_ASYNC_DRIVERS.get(parsed.drivername, parsed.drivername))


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations; ``connection`` is used by ``env.py``."""
    cfg = Config()
    # Config values go through configparser interpolation: escape '%'.
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR).replace("%", "%%"))
    cfg.attributes["connection"] = connection
    return cfg


def _upgrade(conn: Connection) -> None:
    # Concurrent openers migrate one at a time: Postgres by an advisory lock held until the
    # transaction ends, SQLite by the write lock its BEGIN IMMEDIATE took (see open()).
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:id)"), {"id": _MIGRATION_LOCK_ID})
    # "heads": apply every branch, should two migrations ever share a parent.
    command.upgrade(alembic_config(conn), "heads")


async def _migrate(engine: AsyncEngine) -> None:
    """Apply the pending migrations. Several processes opening one new SQLite file at once
    can get "database is locked" at once, without the busy timeout (switching the file to
    WAL, a lock upgrade SQLite refuses to wait for): those are retried with backoff."""
    for attempt in range(8):
        try:
            async with engine.connect() as conn:
                await conn.execution_options(**{_SQLITE_IMMEDIATE: True})
                async with conn.begin():
                    await conn.run_sync(_upgrade)
            return
        except OperationalError as exc:
            if engine.dialect.name != "sqlite" or "locked" not in str(exc) or attempt == 7:
                raise
            await asyncio.sleep(0.05 * 2**attempt)


def _sqlite_connect(dbapi_conn: Any, _record: Any) -> None:
    # WAL lets readers run during a write; SQLite leaves foreign keys off unless asked.
    cursor = dbapi_conn.cursor()
    try:
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
    finally:
        cursor.close()
    # The driver would BEGIN only before DML, leaving DDL and reads outside any transaction;
    # turn that off and BEGIN in _sqlite_begin (SQLAlchemy docs, "Serializable isolation /
    # Savepoints / Transactional DDL" for aiosqlite).
    dbapi_conn.isolation_level = None


def _sqlite_begin(conn: Connection) -> None:
    immediate = conn.get_execution_options().get(_SQLITE_IMMEDIATE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _table_names(conn: Connection) -> list[str]:
    return inspect(conn).get_table_names()


def _describe(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0]}" if first else type(exc).__name__


def _to_key(row: Row[Any]) -> ApiKey:
    m = row._mapping
    return ApiKey(
        id=m["id"],
        prefix=m["prefix"],
        name=m["name"],
        scopes=frozenset(s for s in m["scopes"].split(",") if s),
        created_at=m["created_at"],
        revoked_at=m["revoked_at"],
        last_used_at=m["last_used_at"],
    )


class SqlStore:
    """API keys (and, through :attr:`engine`, other modules' tables) in SQLite or Postgres.

    Open with ``await SqlStore.open(url)``; usable as ``async with``. ``clock`` returns epoch
    milliseconds and exists for tests.
    """

    def __init__(self, engine: AsyncEngine, *, clock: Callable[[], int] = now_ms) -> None:
        self._engine = engine
        self._clock = clock

    @classmethod
    async def open(cls, url: str, *, clock: Callable[[], int] = now_ms) -> SqlStore:
        """Create the engine for ``url`` and apply every pending migration."""
        target = async_url(url)
        shown = target.render_as_string(hide_password=True)
        try:
            # hide_parameters keeps bound values (key hashes) out of error messages.
            engine = create_async_engine(target, pool_pre_ping=True, hide_parameters=True)
        except (SQLAlchemyError, ImportError) as exc:  # unknown dialect, sync or missing driver
            raise StoreError(f"cannot use database {shown}: {_describe(exc)}") from exc
        if engine.dialect.name == "sqlite":
            event.listen(engine.sync_engine, "connect", _sqlite_connect)
            event.listen(engine.sync_engine, "begin", _sqlite_begin)
        store = cls(engine, clock=clock)
        try:
            await _migrate(engine)
        except _FOREIGN_ERRORS as exc:
            await engine.dispose()
            raise StoreError(f"cannot open database {shown}: {_describe(exc)}") from exc
        except BaseException:
            await engine.dispose()
            raise
        log.info("store open: %s", shown)
        return store

    @property
    def engine(self) -> AsyncEngine:
        """The async engine, for modules that add their own tables and queries."""
        return self._engine

    async def close(self) -> None:
        """Close every pooled connection; safe to call twice."""
        await self._engine.dispose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @asynccontextmanager
    async def _begin(self, what: str) -> AsyncIterator[AsyncConnection]:
        """A transaction whose foreign errors become ``StoreError("<what> failed ...")`` (the
        driver's words in its ``detail``, not in what a client is told)."""
        try:
            async with self._engine.begin() as conn:
                yield conn
        except _FOREIGN_ERRORS as exc:
            error = StoreError(f"{what} failed (a database error)", detail=_describe(exc))
            # ``what`` is a literal of this module: one throttle key per operation.
            log_throttled(log, logging.WARNING, f"store: {what} failed: %s", error.detail)
            raise error from exc

    async def ping(self) -> None:
        """Run ``SELECT 1``; :class:`StoreError` unless it answers within ``PING_TIMEOUT_S``."""
        try:
            async with asyncio.timeout(PING_TIMEOUT_S):
                async with self._begin("ping") as conn:
                    await conn.execute(text("SELECT 1"))
        except TimeoutError as exc:
            raise StoreError(f"database did not answer within {PING_TIMEOUT_S:g} s") from exc

    async def create_key(self, name: str, scopes: Iterable[str]) -> tuple[str, ApiKey]:
        """Create a key; return ``(plaintext, record)``. The plaintext exists only here.

        :class:`StoreError` for an unknown or missing scope, or an empty name.
        """
        name = check_name(name)
        scope_set = parse_scopes(scopes)
        for _ in range(_CREATE_ATTEMPTS):
            plaintext, prefix = generate_key()
            key = ApiKey(
                id=new_key_id(),
                prefix=prefix,
                name=name,
                scopes=scope_set,
                created_at=self._clock(),
                revoked_at=None,
                last_used_at=None,
            )
            row = {
                "id": key.id,
                "prefix": key.prefix,
                "name": key.name,
                "key_hash": hash_key(plaintext),
                "scopes": format_scopes(scope_set),
                "created_at": key.created_at,
            }
            try:
                async with self._engine.begin() as conn:
                    await conn.execute(insert(api_keys).values(row))
            except IntegrityError:
                # A prefix (or id) already taken: draw again.
                log.debug("api key prefix or id collision, drawing again")
                continue
            except _FOREIGN_ERRORS as exc:
                raise StoreError("create key failed (a database error)",
                                 detail=_describe(exc)) from exc
            log.info(
                "api key created: id=%s prefix=%s name=%r scopes=%s",
                key.id, key.prefix, key.name, format_scopes(scope_set),
            )  # fmt: skip
            return plaintext, key
        raise StoreError("could not find a free key prefix; try again")

    async def verify_key(self, plaintext: str) -> ApiKey | None:
        """The record of a valid, unrevoked key, else None (bad format, unknown, wrong, revoked).

        Stamps ``last_used_at`` when it is older than :data:`LAST_USED_INTERVAL_MS`.
        """
        prefix = parse_prefix(plaintext)
        if prefix is None:
            return None
        async with self._begin("verify key") as conn:
            row = (await conn.execute(select(api_keys).where(api_keys.c.prefix == prefix))).first()
        if row is None:
            check_key(plaintext, _DUMMY_HASH)
            return None
        if not check_key(plaintext, row._mapping["key_hash"]):
            log.debug("api key %s: wrong secret", prefix)
            return None
        key = _to_key(row)
        if key.revoked:
            log.debug("api key %s: revoked", key.id)
            return None
        now = self._clock()
        if key.last_used_at is None or now - key.last_used_at >= LAST_USED_INTERVAL_MS:
            key = await self._touch(key, now)
        return key

    async def _touch(self, key: ApiKey, now: int) -> ApiKey:
        # Conditional, so concurrent verifications of one key write once. Best effort: a key
        # that verified is not refused because its usage stamp could not be written.
        stale = or_(
            api_keys.c.last_used_at.is_(None),
            api_keys.c.last_used_at <= now - LAST_USED_INTERVAL_MS,
        )
        stmt = update(api_keys).where(api_keys.c.id == key.id, stale).values(last_used_at=now)
        try:
            async with self._begin("record key use") as conn:
                result = await conn.execute(stmt)
        except StoreError as exc:
            log.warning("api key %s: %s", key.id, exc)
            return key
        return replace(key, last_used_at=now) if result.rowcount else key

    async def list_keys(self) -> list[ApiKey]:
        """Every key, revoked ones included, oldest first."""
        stmt = select(api_keys).order_by(api_keys.c.created_at, api_keys.c.id)
        async with self._begin("list keys") as conn:
            rows = (await conn.execute(stmt)).all()
        return [_to_key(row) for row in rows]

    async def revoke_key(self, id_or_prefix: str) -> bool:
        """Revoke the key with this id or prefix; False if none matches or it was revoked."""
        stmt = (
            update(api_keys)
            .where(
                or_(api_keys.c.id == id_or_prefix, api_keys.c.prefix == id_or_prefix),
                api_keys.c.revoked_at.is_(None),
            )
            .values(revoked_at=self._clock())
        )
        async with self._begin("revoke key") as conn:
            result = await conn.execute(stmt)
        if result.rowcount:
            log.info("api key revoked: %s", id_or_prefix)
        return bool(result.rowcount)

    async def revoked_key_ids(self, since_ms: int = 0) -> set[str]:
        """Ids of keys revoked at or after ``since_ms`` (polled to close revoked sessions)."""
        stmt = select(api_keys.c.id).where(
            api_keys.c.revoked_at.is_not(None), api_keys.c.revoked_at >= since_ms
        )
        async with self._begin("list revoked keys") as conn:
            return set((await conn.execute(stmt)).scalars())

    async def table_counts(self) -> dict[str, int]:
        """Row count of every table in the database except Alembic's, by table name."""
        counts: dict[str, int] = {}
        async with self._begin("count rows") as conn:
            for name in sorted(await conn.run_sync(_table_names)):
                if name != "alembic_version":
                    stmt = select(func.count()).select_from(table(name))
                    counts[name] = (await conn.execute(stmt)).scalar_one()
        return counts
