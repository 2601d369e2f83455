"""Run fill totals kept in their own table, the last lock a booking takes (never `runs`).

Summing book_fills in `run_summary` (0005) made listing every run slow on a long
history. `run_fill_totals` is only ever locked by bookings, and always last, so a
run's transaction that touched `runs` first cannot deadlock with the stream.

Revision ID: 0010_run_fill_totals
Revises: 0009_order_details
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010_run_fill_totals"
down_revision: str | Sequence[str] | None = "0009_order_details"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

RUN_SUMMARY = """
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.trading_day, r.kind, r.status, r.price_mode,
       r.started_at, r.finished_at, r.finished_at - r.started_at AS duration,
       r.strategies, r.failed_strategies, r.intents, r.broker_orders,
       COALESCE(t.book_fills, 0) AS book_fills, COALESCE(t.traded_value, 0) AS traded_value,
       rc.ok AS reconciled,
       r.error
FROM runs r
LEFT JOIN run_fill_totals t ON t.run_id = r.id
LEFT JOIN LATERAL (
    SELECT ok FROM reconciliations c WHERE c.run_id = r.id ORDER BY c.id DESC LIMIT 1
) rc ON true
"""

SUMMED_RUN_SUMMARY = """
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


def upgrade() -> None:
    op.create_table(
        "run_fill_totals",
        sa.Column("run_id", sa.BigInteger(), nullable=False),
        sa.Column("book_fills", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("traded_value", sa.Numeric(), server_default=sa.text("0"), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_run_fill_totals_run_id_runs")
        ),
        sa.PrimaryKeyConstraint("run_id", name=op.f("pk_run_fill_totals")),
    )
    op.execute(
        "INSERT INTO run_fill_totals (run_id, book_fills, traded_value)"
        " SELECT run_id, count(*), sum(quantity * price) FROM book_fills"
        " WHERE run_id IS NOT NULL GROUP BY run_id"
    )
    op.execute("DROP VIEW run_summary")
    op.execute(RUN_SUMMARY)


def downgrade() -> None:
    op.execute("DROP VIEW run_summary")
    op.execute(SUMMED_RUN_SUMMARY)
    op.drop_table("run_fill_totals")
