"""Orders booked by cumulative progress; fills of unrecorded own orders parked; foreign fills.

Revision ID: 0004_order_progress
Revises: 0002_ledger
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004_order_progress"
down_revision: str | Sequence[str] | None = "0002_ledger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _now(name: str) -> sa.Column:
    return sa.Column(
        name, sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
    )


def upgrade() -> None:
    op.add_column(
        "broker_orders",
        sa.Column("filled_value", sa.Numeric(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column(
        "broker_orders",
        sa.Column("fractionable", sa.Boolean(), server_default=sa.text("true"), nullable=False),
    )
    op.create_table(
        "parked_fills",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=False),
        sa.Column("execution_id", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=True),
        sa.Column("price", sa.Numeric(), nullable=True),
        sa.Column("cumulative_quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("average_price", sa.Numeric(), nullable=True),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        _now("parked_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_parked_fills")),
    )
    op.create_index(
        op.f("ix_parked_fills_client_order_id"), "parked_fills", ["client_order_id"], unique=False
    )
    op.create_table(
        "foreign_fills",
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("client_order_id", sa.String(length=128), nullable=True),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.Column("executed_at", sa.DateTime(timezone=True), nullable=False),
        _now("seen_at"),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_foreign_fills")),
    )


def downgrade() -> None:
    op.drop_table("foreign_fills")
    op.drop_index(op.f("ix_parked_fills_client_order_id"), table_name="parked_fills")
    op.drop_table("parked_fills")
    op.drop_column("broker_orders", "fractionable")
    op.drop_column("broker_orders", "filled_value")
