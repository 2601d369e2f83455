"""A run's internal crosses are saved when first computed (`cross_legs`, `runs.crossed_at`).

Revision ID: 0007_saved_crosses
Revises: 0006_plan_once
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007_saved_crosses"
down_revision: str | Sequence[str] | None = "0006_plan_once"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("crossed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_table(
        "cross_legs",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("symbol", sa.String(length=32), nullable=False),
        sa.Column("strategy_id", sa.String(length=100), nullable=False),
        sa.Column("side", sa.String(length=4), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=28, scale=9), nullable=False),
        sa.Column("price", sa.Numeric(), nullable=False),
        sa.CheckConstraint("side IN ('buy', 'sell')", name=op.f("ck_cross_legs_side")),
        sa.ForeignKeyConstraint(["run_id"], ["runs.id"], name=op.f("fk_cross_legs_run_id_runs")),
        sa.ForeignKeyConstraint(
            ["strategy_id"], ["strategies.id"], name=op.f("fk_cross_legs_strategy_id_strategies")
        ),
        sa.PrimaryKeyConstraint(
            "run_id", "symbol", "strategy_id", "side", name=op.f("pk_cross_legs")
        ),
    )


def downgrade() -> None:
    op.drop_table("cross_legs")
    op.drop_column("runs", "crossed_at")
