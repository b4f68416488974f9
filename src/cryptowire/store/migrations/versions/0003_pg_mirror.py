"""pg_mirror: Postgres NOTIFY events (seed 002) kept for the GET /<channel>s REST mirror.

Revision ID: 0003
Revises: 0001
Create Date: 2025-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Spelled out rather than taken from sources/pgnotify.py: a migration must not change.
    op.create_table(
        "pg_mirror",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False,
                  autoincrement=True),
        sa.Column("channel", sa.String(63), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("received_at", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_pg_mirror"),
    )
    op.create_index("ix_pg_mirror_channel_id", "pg_mirror", ["channel", "id"])


def downgrade() -> None:
    op.drop_index("ix_pg_mirror_channel_id", table_name="pg_mirror")
    op.drop_table("pg_mirror")
