"""The bar store in Postgres: bulk writes with COPY, coverage, and fast reads.

The hot paths talk to asyncpg directly (through the engine's pool): COPY in for
writes, COPY out as CSV for the price frame, which polars parses in one pass.
"""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.marketdata.alpaca import BarRow

BAR_COLUMNS = ("ticker", "date", "open", "high", "low", "close", "volume")
# The evaluator's names (dsl and `alchemiser evaluate --bars`).
FRAME_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "date": pl.Date(),
    "open": pl.Float64(),
    "high": pl.Float64(),
    "low": pl.Float64(),
    "close": pl.Float64(),
    "volume": pl.Float64(),
}


@dataclass(frozen=True, slots=True)
class Coverage:
    """What the store holds for one ticker."""

    ticker: str
    requested_from: date
    first_date: date
    last_date: date
    bar_count: int
    refreshed_at: datetime
    full_fetch_at: datetime


@dataclass(slots=True)
class TickerWrite:
    """Bars replacing a ticker's stored bars from `since` on (date.min: the whole history)."""

    ticker: str
    since: date
    requested_from: date
    full: bool
    rows: list[BarRow] = field(default_factory=list)


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The pooled connection's asyncpg connection (COPY is not in SQLAlchemy)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        yield raw.driver_connection


DELETE_FROM = """
DELETE FROM bars AS b USING unnest($1::text[], $2::date[]) AS f(ticker, since)
WHERE b.ticker = f.ticker AND b.date >= f.since
"""
UPSERT_STATE = """
INSERT INTO bar_refresh_state AS s
    (ticker, requested_from, first_date, last_date, bar_count, refreshed_at, full_fetch_at)
SELECT b.ticker, f.requested_from, min(b.date), max(b.date), count(*), $3, $3
FROM bars AS b JOIN unnest($1::text[], $2::date[]) AS f(ticker, requested_from)
    ON b.ticker = f.ticker
GROUP BY b.ticker, f.requested_from
ON CONFLICT (ticker) DO UPDATE SET
    requested_from = least(s.requested_from, excluded.requested_from),
    first_date = excluded.first_date,
    last_date = excluded.last_date,
    bar_count = excluded.bar_count,
    refreshed_at = excluded.refreshed_at
"""
MARK_FULL = "UPDATE bar_refresh_state SET full_fetch_at = $2 WHERE ticker = ANY($1::text[])"


async def write_bars(engine: AsyncEngine, writes: Sequence[TickerWrite], now: datetime) -> int:
    """Replace bars and refresh state of several tickers in ONE transaction; return rows written.

    All or nothing: a failure leaves every ticker's bars and state as they were.
    """
    rows = [row for w in writes for row in w.rows]
    tickers = [w.ticker for w in writes]
    async with driver_connection(engine) as conn, conn.transaction():
        await conn.execute(DELETE_FROM, tickers, [w.since for w in writes])
        if rows:
            await conn.copy_records_to_table("bars", records=rows, columns=BAR_COLUMNS)
        await conn.execute(UPSERT_STATE, tickers, [w.requested_from for w in writes], now)
        await conn.execute(MARK_FULL, [w.ticker for w in writes if w.full], now)
    return len(rows)


async def load_coverage(
    engine: AsyncEngine, tickers: Iterable[str] | None = None
) -> dict[str, Coverage]:
    """Refresh state per ticker (all tickers when `tickers` is None)."""
    query = "SELECT * FROM bar_refresh_state"
    args: list[Any] = []
    if tickers is not None:
        query += " WHERE ticker = ANY($1::text[])"
        args.append(list(tickers))
    async with driver_connection(engine) as conn:
        records = await conn.fetch(query, *args)
    return {r["ticker"]: Coverage(**dict(r)) for r in records}


async def recent_closes(
    engine: AsyncEngine, tickers: Sequence[str], depth: int
) -> dict[str, dict[date, float]]:
    """The `depth` newest stored closes of each ticker (to detect retroactive adjustments)."""
    query = """
    SELECT t.ticker, b.date, b.close
    FROM unnest($1::text[]) AS t(ticker)
    CROSS JOIN LATERAL (
        SELECT date, close FROM bars WHERE ticker = t.ticker ORDER BY date DESC LIMIT $2
    ) AS b
    """
    async with driver_connection(engine) as conn:
        records = await conn.fetch(query, list(tickers), depth)
    out: dict[str, dict[date, float]] = {}
    for r in records:
        out.setdefault(r["ticker"], {})[r["date"]] = r["close"]
    return out


async def read_bars(
    engine: AsyncEngine, tickers: Iterable[str], before: date, since: date | None = None
) -> pl.DataFrame:
    """Bars of `tickers` with since <= date < before, as the evaluator's frame, sorted."""
    query = (
        "SELECT ticker, date, open, high, low, close, volume FROM bars"
        " WHERE ticker = ANY($1::text[]) AND date < $2 AND date >= $3"
        " ORDER BY ticker, date"
    )
    buffer = io.BytesIO()
    async with driver_connection(engine) as conn:
        await conn.copy_from_query(
            query, sorted(set(tickers)), before, since or date.min, output=buffer, format="csv"
        )
    if buffer.tell() == 0:
        return pl.DataFrame(schema=FRAME_SCHEMA)
    buffer.seek(0)
    return pl.read_csv(
        buffer, has_header=False, new_columns=list(FRAME_SCHEMA), schema=FRAME_SCHEMA
    )


async def last_bars(engine: AsyncEngine, ticker: str, count: int) -> list[dict[str, Any]]:
    """The newest `count` bars of one ticker, oldest first (for `data show`)."""
    query = "SELECT * FROM bars WHERE ticker = $1 ORDER BY date DESC LIMIT $2"
    async with driver_connection(engine) as conn:
        records = await conn.fetch(query, ticker, count)
    return [dict(r) for r in reversed(records)]
