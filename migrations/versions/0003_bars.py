"""Bar store: adjusted daily bars, per-ticker refresh state, today's prices.

Revision ID: 0003_bars
Revises: 0001_foundation
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_bars"
down_revision: str | Sequence[str] | None = "0001_foundation"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PACKED = ("dates", "open", "high", "low", "close", "volume")


def upgrade() -> None:
    op.create_table(
        "bars",
        sa.Column("ticker", sa.String(16, collation="C"), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("open", sa.Double, nullable=False),
        sa.Column("high", sa.Double, nullable=False),
        sa.Column("low", sa.Double, nullable=False),
        sa.Column("close", sa.Double, nullable=False),
        sa.Column("volume", sa.Double, nullable=False),
        sa.PrimaryKeyConstraint("ticker", "date", name="pk_bars"),
    )
    op.create_table(
        "bar_refresh_state",
        sa.Column("ticker", sa.String(16, collation="C"), nullable=False),
        sa.Column("requested_from", sa.Date, nullable=False),
        sa.Column("first_date", sa.Date, nullable=False),
        sa.Column("last_date", sa.Date, nullable=False),
        sa.Column("bar_count", sa.Integer, nullable=False),
        sa.Column("refreshed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("full_fetch_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ticker", name="pk_bar_refresh_state"),
    )
    op.create_table(
        "bar_series",
        sa.Column("ticker", sa.String(16, collation="C"), nullable=False),
        sa.Column("last_date", sa.Date, nullable=False),
        sa.Column("bar_count", sa.Integer, nullable=False),
        *(sa.Column(name, sa.LargeBinary, nullable=False) for name in PACKED),
        sa.PrimaryKeyConstraint("ticker", name="pk_bar_series"),
    )
    # Packed floats do not compress: store them out of line without trying.
    op.execute(
        "ALTER TABLE bar_series "
        + ", ".join(f"ALTER COLUMN {name} SET STORAGE EXTERNAL" for name in PACKED)
    )
    op.create_table(
        "today_prices",
        sa.Column("trading_day", sa.Date, nullable=False),
        sa.Column("ticker", sa.String(16, collation="C"), nullable=False),
        sa.Column("price", sa.Numeric(20, 8), nullable=False),
        sa.Column("source", sa.String(16), nullable=False),
        sa.Column("price_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "fetched_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("trading_day", "ticker", name="pk_today_prices"),
        sa.CheckConstraint("source IN ('trade', 'quote_mid')", name="ck_today_prices_source"),
        sa.CheckConstraint("price > 0", name="ck_today_prices_price_positive"),
    )


def downgrade() -> None:
    op.drop_table("today_prices")
    op.drop_table("bar_series")
    op.drop_table("bar_refresh_state")
    op.drop_table("bars")
