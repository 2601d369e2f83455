"""Execution quality: the quote each order was priced from, and a view of each walk.

Every walk-the-book step records the quote it priced from (`quote_bid`,
`quote_ask`, `quote_at`) and the broker time it was sent (`sent_at`). The view
`execution_quality` has one row per walk (run, symbol, side): the arrival mid (the
first step's quote), the spread there, the average fill price, the slippage in
basis points against that mid (positive: paid, buy or sell) and the time to fill.
`last_status` is that of the last order the broker acknowledged (a step recorded but
never sent is left out). A step priced from the last trade (no usable quote) records
the band around that trade as its bid and ask.

Revision ID: 0012_execution_quality
Revises: 0011_execution
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_execution_quality"
down_revision: str | Sequence[str] | None = "0011_execution"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MONEY = sa.Numeric()

VIEW = """
CREATE VIEW execution_quality AS
WITH walks AS (
    SELECT o.run_id, o.symbol, o.side,
           count(*) AS orders,
           sum(o.filled_quantity) AS filled_quantity,
           sum(o.filled_value) AS filled_value,
           min(o.sent_at) AS first_sent_at,
           max(f.last_fill_at) AS last_fill_at,
           (array_agg(o.quote_bid ORDER BY o.step) FILTER (WHERE o.quote_bid IS NOT NULL))[1]
               AS arrival_bid,
           (array_agg(o.quote_ask ORDER BY o.step) FILTER (WHERE o.quote_ask IS NOT NULL))[1]
               AS arrival_ask,
           (array_agg(o.status ORDER BY o.step DESC)
               FILTER (WHERE o.alpaca_order_id IS NOT NULL))[1] AS last_status
    FROM broker_orders o
    LEFT JOIN (
        SELECT broker_order_id, max(executed_at) AS last_fill_at
        FROM executions WHERE broker_order_id IS NOT NULL GROUP BY broker_order_id
    ) f ON f.broker_order_id = o.id
    GROUP BY o.run_id, o.symbol, o.side
), priced AS (
    SELECT w.*,
           w.filled_value / NULLIF(w.filled_quantity, 0) AS average_price,
           (w.arrival_bid + w.arrival_ask) / 2 AS arrival_mid
    FROM walks w
)
SELECT r.trading_day, p.run_id, p.symbol, p.side, p.orders, p.last_status,
       p.filled_quantity,
       round(p.average_price, 6) AS average_price,
       round(p.arrival_mid, 6) AS arrival_mid,
       round(10000 * (p.arrival_ask - p.arrival_bid) / NULLIF(p.arrival_mid, 0), 2) AS spread_bps,
       round(10000 * (CASE p.side WHEN 'buy' THEN 1 ELSE -1 END)
             * (p.average_price - p.arrival_mid) / NULLIF(p.arrival_mid, 0), 2) AS slippage_bps,
       p.last_fill_at - p.first_sent_at AS time_to_fill
FROM priced p
LEFT JOIN runs r ON r.id = p.run_id
"""


def upgrade() -> None:
    op.add_column("broker_orders", sa.Column("quote_bid", MONEY, nullable=True))
    op.add_column("broker_orders", sa.Column("quote_ask", MONEY, nullable=True))
    op.add_column("broker_orders", sa.Column("quote_at", sa.DateTime(timezone=True)))
    op.add_column("broker_orders", sa.Column("sent_at", sa.DateTime(timezone=True)))
    op.execute(VIEW)


def downgrade() -> None:
    op.execute("DROP VIEW execution_quality")
    for column in ("sent_at", "quote_at", "quote_ask", "quote_bid"):
        op.drop_column("broker_orders", column)
