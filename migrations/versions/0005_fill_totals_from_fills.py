"""Run fill totals are read from book_fills, not kept on `runs` (bookings never lock a run).

A booking that also updated `runs` deadlocked with a run's transaction that
touched `runs` first and then booked. `run_summary` now sums a run's book fills
(indexed by run_id) instead.

Revision ID: 0005_fill_totals_from_fills
Revises: 0004_order_progress
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_fill_totals_from_fills"
down_revision: str | Sequence[str] | None = "0004_order_progress"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_SUMMARY = """
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.trading_day, r.kind, r.status, r.price_mode,
       r.started_at, r.finished_at, r.finished_at - r.started_at AS duration,
       r.strategies, r.failed_strategies, r.intents, r.broker_orders,
       f.book_fills, f.traded_value,
       rc.ok AS reconciled,
       r.error
FROM runs r
LEFT JOIN LATERAL (
    SELECT count(*) AS book_fills, COALESCE(sum(quantity * price), 0) AS traded_value
    FROM book_fills WHERE book_fills.run_id = r.id
) f ON true
LEFT JOIN LATERAL (
    SELECT ok FROM reconciliations c WHERE c.run_id = r.id ORDER BY c.id DESC LIMIT 1
) rc ON true
"""

OLD_RUN_SUMMARY = """
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.trading_day, r.kind, r.status, r.price_mode,
       r.started_at, r.finished_at, r.finished_at - r.started_at AS duration,
       r.strategies, r.failed_strategies, r.intents, r.broker_orders,
       r.book_fills, r.traded_value,
       rc.ok AS reconciled,
       r.error
FROM runs r
LEFT JOIN LATERAL (
    SELECT ok FROM reconciliations c WHERE c.run_id = r.id ORDER BY c.id DESC LIMIT 1
) rc ON true
"""


def upgrade() -> None:
    op.execute("DROP VIEW run_summary")
    op.drop_column("runs", "book_fills")
    op.drop_column("runs", "traded_value")
    op.execute(RUN_SUMMARY)


def downgrade() -> None:
    op.execute("DROP VIEW run_summary")
    op.add_column(
        "runs", sa.Column("book_fills", sa.Integer(), server_default=sa.text("0"), nullable=False)
    )
    op.add_column(
        "runs",
        sa.Column("traded_value", sa.Numeric(), server_default=sa.text("0"), nullable=False),
    )
    op.execute(
        "UPDATE runs r SET book_fills = f.n, traded_value = f.v FROM (SELECT run_id, count(*) AS n,"
        " sum(quantity * price) AS v FROM book_fills GROUP BY run_id) f WHERE f.run_id = r.id"
    )
    op.execute(OLD_RUN_SUMMARY)
