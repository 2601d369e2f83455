"""Execution: the broker's clock at each run's start, and the kill switch.

`runs.broker_started_at` is the broker's time when a run started (the first run
adopted the account then, so account activities before it are in the opening
balance). `trading_halts` holds `alchemiser halt`: scope '*' stops every new
order at once; a strategy id keeps that book as it is.

Revision ID: 0011_execution
Revises: 0010_run_fill_totals
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011_execution"
down_revision: str | Sequence[str] | None = "0010_run_fill_totals"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("broker_started_at", sa.DateTime(timezone=True)))
    op.create_table(
        "trading_halts",
        sa.Column("scope", sa.String(length=64), primary_key=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
    )


def downgrade() -> None:
    op.drop_table("trading_halts")
    op.drop_column("runs", "broker_started_at")
