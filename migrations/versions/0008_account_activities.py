"""Account activities (fees, dividends, splits) booked once; cash entries name their symbol.

Revision ID: 0008_account_activities
Revises: 0007_saved_crosses
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008_account_activities"
down_revision: str | Sequence[str] | None = "0007_saved_crosses"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "account_activities",
        sa.Column("id", sa.String(length=128), nullable=False),
        sa.Column("activity_type", sa.String(length=16), nullable=False),
        sa.Column("activity_date", sa.Date(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("books_quantity", sa.Numeric(precision=28, scale=9), nullable=True),
        sa.Column("net_amount", sa.Numeric(), nullable=False),
        sa.Column("per_share_amount", sa.Numeric(), nullable=True),
        sa.Column("raw", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "booked_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_account_activities")),
    )
    op.create_index(
        op.f("ix_account_activities_activity_date"),
        "account_activities",
        ["activity_date"],
        unique=False,
    )
    op.add_column("cash_entries", sa.Column("symbol", sa.String(length=32), nullable=True))
    op.alter_column("lots", "book_fill_id", existing_type=sa.BigInteger(), nullable=True)


def downgrade() -> None:
    op.alter_column("lots", "book_fill_id", existing_type=sa.BigInteger(), nullable=False)
    op.drop_column("cash_entries", "symbol")
    op.drop_index(op.f("ix_account_activities_activity_date"), table_name="account_activities")
    op.drop_table("account_activities")
