"""Orders keep their reject reason and the order they replaced; intents can be closed for the day.

Revision ID: 0009_order_details
Revises: 0008_account_activities
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009_order_details"
down_revision: str | Sequence[str] | None = "0008_account_activities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("broker_orders", sa.Column("replaces", sa.String(length=128), nullable=True))
    op.add_column("broker_orders", sa.Column("reject_reason", sa.Text(), nullable=True))
    op.add_column("intents", sa.Column("closed_reason", sa.String(length=32), nullable=True))
    op.add_column("intents", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("intents", "closed_at")
    op.drop_column("intents", "closed_reason")
    op.drop_column("broker_orders", "reject_reason")
    op.drop_column("broker_orders", "replaces")
