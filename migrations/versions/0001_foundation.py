"""Foundation: a journal of the configuration each start ran with.

Revision ID: 0001_foundation
Revises:
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001_foundation"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "config_snapshots",
        sa.Column("id", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column(
            "recorded_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column("config_hash", sa.String(64), nullable=False),
        sa.Column("config", postgresql.JSONB, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_config_snapshots"),
        sa.UniqueConstraint("config_hash", name="uq_config_snapshots_config_hash"),
    )


def downgrade() -> None:
    op.drop_table("config_snapshots")
