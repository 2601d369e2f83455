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

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.marketdata.alpaca import BarRow

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
BAR_COLUMNS = ("ticker", "date", *PRICE_COLUMNS)
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


# Per ticker, so that each statement is an index range scan however large the table.
DELETE_FROM = "DELETE FROM bars WHERE ticker = $1 AND date >= $2"
UPSERT_STATE = """
INSERT INTO bar_refresh_state AS s
    (ticker, requested_from, first_date, last_date, bar_count, refreshed_at, full_fetch_at)
SELECT f.ticker, f.requested_from, b.first_date, b.last_date, b.bar_count, $3, $3
FROM unnest($1::text[], $2::date[]) AS f(ticker, requested_from)
CROSS JOIN LATERAL (
    SELECT min(date) AS first_date, max(date) AS last_date, count(*) AS bar_count
    FROM bars WHERE ticker = f.ticker
) AS b
WHERE b.bar_count > 0
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
        # Bars can always be fetched again: a crash may lose the newest commit (bars and
        # state together, never one without the other), so skip waiting for the flush.
        await conn.execute("SET LOCAL synchronous_commit = off")
        await conn.executemany(DELETE_FROM, [(w.ticker, w.since) for w in writes])
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


# One row of `COPY ... (FORMAT binary)` for READ_QUERY: a field count, then each field's
# length and big-endian value (int4 ticker index, date as int4 days since 2000-01-01,
# five float8). Every field is fixed-width and NOT NULL, so numpy reads rows in place.
BINARY_ROW = np.dtype(
    [("fields", ">i2"), ("len_symbol", ">i4"), ("symbol", ">i4"), ("len_date", ">i4")]
    + [("date", ">i4")]
    + [field for c in PRICE_COLUMNS for field in ((f"len_{c}", ">i4"), (c, ">f8"))]
)
BINARY_HEADER = 19  # signature (11), flags (4), header extension length (4)
BINARY_TRAILER = 2
POSTGRES_EPOCH_DAYS = 10957  # 2000-01-01 in days since 1970-01-01 (polars' Date)
READ_QUERY = """
SELECT t.i::int4, b.date, b.open, b.high, b.low, b.close, b.volume
FROM unnest($1::text[]) WITH ORDINALITY AS t(ticker, i)
CROSS JOIN LATERAL (
    SELECT date, open, high, low, close, volume FROM bars
    WHERE ticker = t.ticker AND date < $2 AND date >= $3 ORDER BY date
) AS b
"""


async def read_bars(
    engine: AsyncEngine, tickers: Iterable[str], before: date, since: date | None = None
) -> pl.DataFrame:
    """Bars of `tickers` with since <= date < before, as the evaluator's frame, sorted.

    Binary COPY out, parsed by numpy: no per-row Python and no float formatting.
    """
    names = sorted(set(tickers))
    buffer = io.BytesIO()
    async with driver_connection(engine) as conn:
        await conn.copy_from_query(
            READ_QUERY, names, before, since or date.min, output=buffer, format="binary"
        )
    raw = buffer.getbuffer()
    count = (len(raw) - BINARY_HEADER - BINARY_TRAILER) // BINARY_ROW.itemsize
    rows = np.frombuffer(raw, dtype=BINARY_ROW, count=max(count, 0), offset=BINARY_HEADER)
    symbols = pl.Series("symbol", names, dtype=pl.String)
    frame = pl.DataFrame(
        {
            "symbol": symbols.gather(rows["symbol"].astype(np.int64) - 1),
            "date": pl.Series(rows["date"].astype(np.int32) + POSTGRES_EPOCH_DAYS).cast(pl.Date),
            **{c: rows[c].astype(np.float64) for c in PRICE_COLUMNS},
        },
        schema=FRAME_SCHEMA,
    )
    # The lateral join yields ticker after ticker, each by date; sort only if it did not.
    key = (rows["symbol"].astype(np.int64) << 32) + rows["date"].astype(np.int64)
    return frame if bool(np.all(key[1:] > key[:-1])) else frame.sort("symbol", "date")


async def last_bars(engine: AsyncEngine, ticker: str, count: int) -> list[dict[str, Any]]:
    """The newest `count` bars of one ticker, oldest first (for `data show`)."""
    query = "SELECT * FROM bars WHERE ticker = $1 ORDER BY date DESC LIMIT $2"
    async with driver_connection(engine) as conn:
        records = await conn.fetch(query, ticker, count)
    return [dict(r) for r in reversed(records)]
