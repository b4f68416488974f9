"""rfq_trades: filled RFQ orders with their quotes at full precision.

Revision ID: 0004
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "rfq_trades",
        sa.Column("id", sa.String(32), nullable=False),
        sa.Column("quote_id", sa.String(32), nullable=False),
        sa.Column("key_id", sa.String(12), nullable=True),
        sa.Column("provider", sa.String(32), nullable=False),
        sa.Column("curr_from", sa.String(12), nullable=False),
        sa.Column("curr_to", sa.String(12), nullable=False),
        sa.Column("amount_from", sa.String(80), nullable=False),
        sa.Column("amount_to", sa.String(80), nullable=False),
        sa.Column("rate", sa.String(80), nullable=False),
        sa.Column("commission", sa.String(20), nullable=False),
        sa.Column("rate_path", sa.String(64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_rfq_trades"),
    )
    op.create_index("ix_rfq_trades_quote_id", "rfq_trades", ["quote_id"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_rfq_trades_quote_id", table_name="rfq_trades")
    op.drop_table("rfq_trades")
