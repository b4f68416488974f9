"""SQLAlchemy Core tables: the one ``MetaData`` the migrations build, for queries and autogenerate.

Timestamps are ``BigInteger`` UTC epoch milliseconds so SQLite and Postgres behave the same.
Index and constraint names are explicit and follow :data:`NAMING_CONVENTION`, so a migration
can name them. Change a table here only together with a new migration in ``migrations/``.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

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

# -- on-chain (migrations 0002, 0005) ----------------------------------------------------

#: Chain ids pass 2**31 (0005 made them BIGINT on Postgres; SQLite's INTEGER is 64-bit).
_CHAIN = BigInteger().with_variant(Integer(), "sqlite")
tokens = Table(
    "tokens", metadata,
    Column("chain", _CHAIN, primary_key=True),
    Column("address", String(42), primary_key=True),
    Column("symbol", String(64), nullable=False),
    Column("name", String(200), nullable=False),
    Column("decimals", Integer, nullable=False),
    Column("pair", String(42)),
    Column("paired", String(42)),
    Column("paired_symbol", String(64)),
    Column("paired_decimals", Integer),
    Column("is_token0", Boolean, nullable=False),
    Column("group", String(100)),
    Column("added_at", BigInteger, nullable=False),
)  # fmt: skip
chain_cursors = Table(
    "chain_cursors", metadata,
    Column("chain", _CHAIN, primary_key=True),
    Column("block", BigInteger, nullable=False),
    Column("hash", String(66), nullable=False),
    Column("updated_at", BigInteger, nullable=False),
)  # fmt: skip
onchain_events = Table(
    "onchain_events", metadata,
    Column("id", BigInteger().with_variant(Integer(), "sqlite"), primary_key=True,
           autoincrement=True),
    Column("chain", _CHAIN, nullable=False),
    Column("kind", String(8), nullable=False),
    Column("token", String(42), nullable=False),
    Column("tx_hash", String(66), nullable=False),
    Column("log_index", Integer, nullable=False),
    Column("block", BigInteger, nullable=False),
    Column("block_hash", String(66), nullable=False),
    Column("time", BigInteger, nullable=False),
    Column("payload", Text, nullable=False),
    UniqueConstraint("chain", "tx_hash", "log_index", name="uq_onchain_events_chain_tx_log"),
    Index("ix_onchain_events_chain_kind_block", "chain", "kind", "block", "log_index"),
)  # fmt: skip
telegram_bindings = Table(
    "telegram_bindings", metadata,
    Column("group", String(100), primary_key=True),
    Column("chat_id", String(64), primary_key=True),
    Column("added_at", BigInteger, nullable=False),
)  # fmt: skip

# -- RFQ (migration 0004) -------------------------------------------------------------------
rfq_trades = Table(
    "rfq_trades",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("quote_id", String(32), nullable=False),
    Column("key_id", String(12), nullable=True),
    Column("provider", String(32), nullable=False),
    Column("curr_from", String(12), nullable=False),
    Column("curr_to", String(12), nullable=False),
    Column("amount_from", String(80), nullable=False),
    Column("amount_to", String(80), nullable=False),
    Column("rate", String(80), nullable=False),
    Column("commission", String(20), nullable=False),
    Column("rate_path", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Index("ix_rfq_trades_quote_id", "quote_id", unique=True),
)

# -- Postgres channels (migration 0003) --------------------------------------------------
#: The Postgres channel mirror: every ``pg:`` event, as the JSON text the sockets carry.
pg_mirror = Table(
    "pg_mirror",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True,
           autoincrement=True),
    Column("channel", String(63), nullable=False),
    Column("payload", Text, nullable=False),  # the JSON text every socket frame carries
    Column("received_at", BigInteger, nullable=False),
    Index("ix_pg_mirror_channel_id", "channel", "id"),
)
