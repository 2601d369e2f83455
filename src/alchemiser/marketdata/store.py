"""The bar store in Postgres: bulk writes with COPY, coverage, and fast reads.

The hot paths talk to asyncpg directly (through the engine's pool): COPY in for
writes; for reads, each ticker's packed arrays (series.py) plus its few newest rows.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.marketdata.alpaca import BarRow
from alchemiser.marketdata.series import (
    FOLD_TAILS,
    PRICE_COLUMNS,
    REBUILD,
    SERIES_COLUMNS,
    fold_thresholds,
    read_frame,
    series_record,
)

BAR_COLUMNS = ("ticker", "date", *PRICE_COLUMNS)


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
    """New bars of one ticker: its whole history (`replace`), or bars after its last one."""

    ticker: str
    requested_from: date
    replace: bool
    rows: list[BarRow] = field(default_factory=list)


class StoreError(Exception):
    """A write that would break the store's invariants (nothing was written)."""


@asynccontextmanager
async def driver_connection(engine: AsyncEngine) -> AsyncIterator[Any]:
    """The pooled connection's asyncpg connection (COPY is not in SQLAlchemy)."""
    async with engine.connect() as conn:
        raw = await conn.get_raw_connection()
        yield raw.driver_connection


@asynccontextmanager
async def transaction(engine: AsyncEngine, **options: Any) -> AsyncIterator[Any]:
    """An asyncpg connection in a transaction, with JIT off.

    Without statistics on a freshly loaded table, Postgres estimates these short
    index scans as expensive and JIT-compiles them: 100-400 ms each, for nothing.
    """
    async with driver_connection(engine) as conn, conn.transaction(**options):
        await conn.execute("SET LOCAL jit = off")
        yield conn


REPLACE_STATE = """
INSERT INTO bar_refresh_state AS s
    (ticker, requested_from, first_date, last_date, bar_count, refreshed_at, full_fetch_at)
SELECT *, $6, $6 FROM unnest($1::text[], $2::date[], $3::date[], $4::date[], $5::int[])
ON CONFLICT (ticker) DO UPDATE SET
    requested_from = least(s.requested_from, excluded.requested_from),
    first_date = excluded.first_date,
    last_date = excluded.last_date,
    bar_count = excluded.bar_count,
    refreshed_at = excluded.refreshed_at,
    full_fetch_at = excluded.full_fetch_at
"""
APPEND_STATE = """
UPDATE bar_refresh_state AS s SET
    last_date = greatest(s.last_date, u.last_date),
    bar_count = s.bar_count + u.n,
    refreshed_at = $4
FROM unnest($1::text[], $2::date[], $3::int[]) AS u(ticker, last_date, n)
WHERE s.ticker = u.ticker
"""
# Appended bars must follow the ticker's last stored bar (the packed arrays rely on it).
MISPLACED_APPENDS = """
SELECT u.ticker FROM unnest($1::text[], $2::date[]) AS u(ticker, first_date)
LEFT JOIN bar_refresh_state AS s ON s.ticker = u.ticker
WHERE s.ticker IS NULL OR u.first_date <= s.last_date
"""


async def write_bars(engine: AsyncEngine, writes: Sequence[TickerWrite], now: datetime) -> int:
    """Write the bars, packed arrays and refresh state of several tickers in ONE transaction.

    All or nothing: a failure leaves every ticker's bars and state as they were.
    Returns the number of bars written.
    """
    replaced = [w for w in writes if w.replace and w.rows]
    appended = [w for w in writes if not w.replace]
    records = [series_record(w.ticker, w.rows) for w in replaced]  # checks the order
    rows = [row for w in writes for row in w.rows]
    async with transaction(engine) as conn:
        # Bars can always be fetched again: a crash may lose the newest commit (bars and
        # state together, never one without the other), so skip waiting for the flush.
        await conn.execute("SET LOCAL synchronous_commit = off")
        await _check_appends(conn, [w for w in appended if w.rows])
        names = [w.ticker for w in replaced]
        await conn.execute("DELETE FROM bars WHERE ticker = ANY($1::text[])", names)
        await conn.execute("DELETE FROM bar_series WHERE ticker = ANY($1::text[])", names)
        if rows:
            await conn.copy_records_to_table("bars", records=rows, columns=BAR_COLUMNS)
        if records:
            await conn.copy_records_to_table("bar_series", records=records, columns=SERIES_COLUMNS)
        await _replace_state(conn, replaced, now)
        await _append_state(conn, appended, now)
    return len(rows)


async def _check_appends(conn: Any, appended: Sequence[TickerWrite]) -> None:
    firsts = [min(r[1] for r in w.rows) for w in appended]
    bad = await conn.fetch(MISPLACED_APPENDS, [w.ticker for w in appended], firsts)
    if bad:
        names = ", ".join(r["ticker"] for r in bad)
        raise StoreError(f"appended bars do not follow the last stored bar: {names}")


async def _replace_state(conn: Any, replaced: Sequence[TickerWrite], now: datetime) -> None:
    await conn.execute(
        REPLACE_STATE,
        [w.ticker for w in replaced],
        [w.requested_from for w in replaced],
        [w.rows[0][1] for w in replaced],
        [w.rows[-1][1] for w in replaced],
        [len(w.rows) for w in replaced],
        now,
    )


async def _append_state(conn: Any, appended: Sequence[TickerWrite], now: datetime) -> None:
    names = [w.ticker for w in appended]
    lasts = [max(r[1] for r in w.rows) if w.rows else None for w in appended]
    await conn.execute(APPEND_STATE, names, lasts, [len(w.rows) for w in appended], now)
    await conn.execute(FOLD_TAILS, names, fold_thresholds(names))


async def rebuild_series(engine: AsyncEngine, tickers: Sequence[str]) -> None:
    """Rebuild tickers' packed arrays from their rows (repair after manual edits of `bars`)."""
    async with transaction(engine) as conn:
        await conn.execute("DELETE FROM bar_series WHERE ticker = ANY($1::text[])", list(tickers))
        await conn.execute(REBUILD, list(tickers))


async def load_coverage(
    engine: AsyncEngine, tickers: Iterable[str] | None = None
) -> dict[str, Coverage]:
    """Refresh state per ticker (all tickers when `tickers` is None)."""
    query = "SELECT * FROM bar_refresh_state"
    args: list[Any] = []
    if tickers is not None:
        query += " WHERE ticker = ANY($1::text[])"
        args.append(list(tickers))
    async with transaction(engine, readonly=True) as conn:
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
    async with transaction(engine, readonly=True) as conn:
        records = await conn.fetch(query, list(tickers), depth)
    out: dict[str, dict[date, float]] = {}
    for r in records:
        out.setdefault(r["ticker"], {})[r["date"]] = r["close"]
    return out


async def read_bars(
    engine: AsyncEngine,
    tickers: Iterable[str],
    before: date,
    since: date | None = None,
    today: tuple[date, Mapping[str, float]] | None = None,
) -> pl.DataFrame:
    """Bars of `tickers` with since <= date < before, as the evaluator's frame, sorted.

    `today` = (day, prices) adds a row on `day` for each ticker with a price (see
    `series.read_frame`); `day` must come after `before`'s window.
    """
    async with driver_connection(engine) as conn:
        return await read_frame(conn, list(tickers), before, since or date.min, today)


async def last_bars(engine: AsyncEngine, ticker: str, count: int) -> list[dict[str, Any]]:
    """The newest `count` bars of one ticker, oldest first (for `data show`)."""
    query = "SELECT * FROM bars WHERE ticker = $1 ORDER BY date DESC LIMIT $2"
    async with transaction(engine, readonly=True) as conn:
        records = await conn.fetch(query, ticker, count)
    return [dict(r) for r in reversed(records)]
