"""evm: token watchlist, chain cursors, on-chain event log, Telegram bindings.

Revision ID: 0002
Revises: 0001
Create Date: 2025-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Spelled out (not imported from store/evm.py): a migration must not change afterwards.
    op.create_table(
        "tokens",
        sa.Column("chain", sa.Integer(), nullable=False),
        sa.Column("address", sa.String(42), nullable=False),
        sa.Column("symbol", sa.String(64), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("decimals", sa.Integer(), nullable=False),
        sa.Column("pair", sa.String(42), nullable=True),
        sa.Column("paired", sa.String(42), nullable=True),
        sa.Column("paired_symbol", sa.String(64), nullable=True),
        sa.Column("paired_decimals", sa.Integer(), nullable=True),
        sa.Column("is_token0", sa.Boolean(), nullable=False),
        sa.Column("group", sa.String(100), nullable=True),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain", "address", name="pk_tokens"),
    )
    op.create_table(
        "chain_cursors",
        sa.Column("chain", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(66), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("chain", name="pk_chain_cursors"),
    )
    op.create_table(
        "onchain_events",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
                  autoincrement=True, nullable=False),
        sa.Column("chain", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("token", sa.String(42), nullable=False),
        sa.Column("tx_hash", sa.String(66), nullable=False),
        sa.Column("log_index", sa.Integer(), nullable=False),
        sa.Column("block", sa.BigInteger(), nullable=False),
        sa.Column("block_hash", sa.String(66), nullable=False),
        sa.Column("time", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_onchain_events"),
        sa.UniqueConstraint("chain", "tx_hash", "log_index",
                            name="uq_onchain_events_chain_tx_log"),
    )
    op.create_index("ix_onchain_events_chain_kind_block", "onchain_events",
                    ["chain", "kind", "block", "log_index"])
    op.create_table(
        "telegram_bindings",
        sa.Column("group", sa.String(100), nullable=False),
        sa.Column("chat_id", sa.String(64), nullable=False),
        sa.Column("added_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("group", "chat_id", name="pk_telegram_bindings"),
    )


def downgrade() -> None:
    op.drop_table("telegram_bindings")
    op.drop_index("ix_onchain_events_chain_kind_block", table_name="onchain_events")
    op.drop_table("onchain_events")
    op.drop_table("chain_cursors")
    op.drop_table("tokens")
