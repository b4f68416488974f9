"""SQLAlchemy Core tables: the schema the migrations build, for queries and autogenerate.

Timestamps are ``BigInteger`` UTC epoch milliseconds so SQLite and Postgres behave the same.
Index and constraint names are explicit and follow :data:`NAMING_CONVENTION`, so a migration
can name them. Change a table here only together with a new migration in ``migrations/``.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Index, MetaData, String, Table

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_name)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

metadata = MetaData(naming_convention=NAMING_CONVENTION)

#: API keys: only the prefix and the SHA-256 of the key are stored, never the key.
api_keys = Table(
    "api_keys",
    metadata,
    Column("id", String(12), primary_key=True),
    Column("prefix", String(8), nullable=False),
    Column("name", String(100), nullable=False),
    Column("key_hash", String(64), nullable=False),
    Column("scopes", String(200), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("revoked_at", BigInteger, nullable=True),
    Column("last_used_at", BigInteger, nullable=True),
    Index("ix_api_keys_prefix", "prefix", unique=True),
    # The server polls revoked keys every ~2 s.
    Index("ix_api_keys_revoked_at", "revoked_at"),
)
