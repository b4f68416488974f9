"""Shared fixtures for integration tests: a private Postgres database per test, store URLs,
and Redis (the shared server under a per-test key prefix, or a private one to restart).

Postgres is the one at ``CRYPTOWIRE_TEST_DATABASE_URL`` (TESTING.md, "Redis and PostgreSQL").
It is shared: each test gets its own ``cw_test_<hex>`` database and drops only that one.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from tests.integration.bus.redis_peer import PrivateRedis

DEFAULT_TEST_DATABASE_URL = "postgresql://postgres@127.0.0.1:5432/postgres"


def _admin_url() -> str:
    return os.environ.get("CRYPTOWIRE_TEST_DATABASE_URL", DEFAULT_TEST_DATABASE_URL)


async def _admin_connect() -> asyncpg.Connection:
    url = _admin_url()
    # asyncpg wants a plain libpq URL, not SQLAlchemy's "+driver" form.
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        return await asyncpg.connect(plain, timeout=5)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        shown = make_url(url).render_as_string(hide_password=True)
        reason = f"Postgres unreachable at {shown}: {type(exc).__name__}: {exc}".splitlines()[0]
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """SQLAlchemy URL of a fresh, empty Postgres database, dropped after the test."""
    name = f"cw_test_{secrets.token_hex(6)}"
    admin = await _admin_connect()
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = make_url(_admin_url()).set(drivername="postgresql+asyncpg", database=name)
    try:
        yield url.render_as_string(hide_password=False)
    finally:
        admin = await _admin_connect()
        try:
            # FORCE (Postgres 13+) ends sessions a failed test left open.
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A store URL for each backend: a SQLite file in ``tmp_path``, then a fresh Postgres DB."""
    if request.param == "sqlite":
        return f"sqlite+aiosqlite:///{tmp_path / 'cryptowire.db'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def redis_url() -> str:
    """The shared Redis (fails under CI=true when unreachable, else skips)."""
    from tests.integration.bus.redis_peer import require_redis, shared_redis_url

    url = shared_redis_url()
    require_redis(url)
    return url


@pytest.fixture
def prefix(redis_url: str) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards (never FLUSH*)."""
    from tests.integration.bus.redis_peer import drop_prefix, new_prefix

    p = new_prefix()
    yield p
    drop_prefix(redis_url, p)


@pytest.fixture
async def private_redis(tmp_path: Path) -> AsyncIterator[PrivateRedis]:
    """A redis-server of this test's own, which the test may stop and start."""
    from tests.integration.bus.redis_peer import PrivateRedis

    server = PrivateRedis(tmp_path)
    await server.start()
    yield server
    server.stop()
