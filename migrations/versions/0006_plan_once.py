"""A run's plan is written once: `runs.planned_at` marks it written.

Revision ID: 0006_plan_once
Revises: 0005_fill_totals_from_fills
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_plan_once"
down_revision: str | Sequence[str] | None = "0005_fill_totals_from_fills"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("runs", sa.Column("planned_at", sa.DateTime(timezone=True), nullable=True))
    # Runs planned before this revision: their intents are their plan.
    op.execute(
        "UPDATE runs SET planned_at = started_at WHERE EXISTS "
        "(SELECT 1 FROM intents WHERE intents.run_id = runs.id)"
    )


def downgrade() -> None:
    op.drop_column("runs", "planned_at")
