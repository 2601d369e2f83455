"""Tables of the bar store: daily bars, per-ticker refresh state, and today's prices.

Bars are adjusted market data that Alpaca rewrites after every split and dividend;
the evaluator computes in float64, so they are stored as double precision (exact
enough, 8 bytes, and read back without a Decimal conversion). Today's prices are
evidence for the trades of a run, so they keep exactly what Alpaca sent: numeric.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    Double,
    Integer,
    LargeBinary,
    Numeric,
    String,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from alchemiser.models import Base

TICKER_LENGTH = 16
# Tickers are ASCII: byte order sorts them right, and keeps key comparisons in the
# five-million-row primary key cheap whatever the database's default locale.
TICKER_COLLATION = "C"
PRICE_SOURCES = ("trade", "quote_mid")


class Bar(Base):
    """One adjusted (splits and dividends) daily bar."""

    __tablename__ = "bars"

    ticker: Mapped[str] = mapped_column(
        String(TICKER_LENGTH, collation=TICKER_COLLATION), primary_key=True
    )
    date: Mapped[date] = mapped_column(Date, primary_key=True)
    open: Mapped[float] = mapped_column(Double)
    high: Mapped[float] = mapped_column(Double)
    low: Mapped[float] = mapped_column(Double)
    close: Mapped[float] = mapped_column(Double)
    volume: Mapped[float] = mapped_column(Double)


class BarRefreshState(Base):
    """Per ticker: how far back its bars reach and when they were last refreshed."""

    __tablename__ = "bar_refresh_state"

    ticker: Mapped[str] = mapped_column(
        String(TICKER_LENGTH, collation=TICKER_COLLATION), primary_key=True
    )
    # The earliest date ever asked for: a longer `history_years` triggers a backfill.
    requested_from: Mapped[date] = mapped_column(Date)
    first_date: Mapped[date] = mapped_column(Date)
    last_date: Mapped[date] = mapped_column(Date)
    bar_count: Mapped[int] = mapped_column(Integer)
    refreshed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the whole history was last (re)loaded: first fetch or a healed adjustment.
    full_fetch_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class BarSeries(Base):
    """A ticker's bars up to `last_date` as packed big-endian arrays (see series.py).

    Derived from `bars` in the same transaction; the fast read path of the price frame.
    """

    __tablename__ = "bar_series"

    ticker: Mapped[str] = mapped_column(
        String(TICKER_LENGTH, collation=TICKER_COLLATION), primary_key=True
    )
    last_date: Mapped[date] = mapped_column(Date)
    bar_count: Mapped[int] = mapped_column(Integer)
    dates: Mapped[bytes] = mapped_column(LargeBinary)  # int4 days since 2000-01-01
    open: Mapped[bytes] = mapped_column(LargeBinary)  # float8 each, like the four below
    high: Mapped[bytes] = mapped_column(LargeBinary)
    low: Mapped[bytes] = mapped_column(LargeBinary)
    close: Mapped[bytes] = mapped_column(LargeBinary)
    volume: Mapped[bytes] = mapped_column(LargeBinary)


class TodayPrice(Base):
    """The live price of a ticker used as "today's close" on a trading day."""

    __tablename__ = "today_prices"
    __table_args__ = (
        CheckConstraint(
            "source IN ('trade', 'quote_mid')",
            name="source",
        ),
        CheckConstraint("price > 0", name="price_positive"),
    )

    trading_day: Mapped[date] = mapped_column(Date, primary_key=True)
    ticker: Mapped[str] = mapped_column(
        String(TICKER_LENGTH, collation=TICKER_COLLATION), primary_key=True
    )
    price: Mapped[Decimal] = mapped_column(Numeric(20, 8))
    source: Mapped[str] = mapped_column(String(16))
    # Alpaca's timestamp of the trade or quote.
    price_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    fetched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
