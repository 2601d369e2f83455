"""The bar store on its own: COPY writes are all-or-nothing; the migration is reversible."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import polars as pl
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from polars.testing import assert_frame_equal
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.market_calendar import get_calendar
from alchemiser.marketdata.alpaca import BarRow
from alchemiser.marketdata.store import (
    StoreError,
    TickerWrite,
    driver_connection,
    load_coverage,
    read_bars,
    rebuild_series,
    write_bars,
)
from alchemiser.models import metadata
from tests.marketdata.oracle import read_bar_rows

NOW = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)
MARKETDATA_TABLES = {"bars", "bar_refresh_state", "bar_series", "today_prices"}


def rows(ticker: str, days: list[date], close: float = 10.0) -> list[BarRow]:
    return [(ticker, d, close, close + 1, close - 1, close + 0.5, 100.0) for d in days]


def sessions(n: int, start: date = date(2020, 1, 2)) -> list[date]:
    cal = get_calendar()
    i = cal.first_index_on_or_after(start)
    return cal.days[i : i + n]


async def packed_state(engine: AsyncEngine) -> dict[str, tuple[date, int]]:
    async with driver_connection(engine) as conn:
        records = await conn.fetch("SELECT ticker, last_date, bar_count FROM bar_series")
    return {r["ticker"]: (r["last_date"], r["bar_count"]) for r in records}


async def assert_reads_agree(engine: AsyncEngine, tickers: list[str]) -> pl.DataFrame:
    """The packed read path returns exactly what the rows hold, for any date window."""
    fast = await read_bars(engine, tickers, before=date.max)
    assert_frame_equal(fast, await read_bar_rows(engine, tickers, before=date.max))
    window = (date(2020, 3, 2), date(2020, 6, 1))
    assert_frame_equal(
        await read_bars(engine, tickers, before=window[1], since=window[0]),
        await read_bar_rows(engine, tickers, before=window[1], since=window[0]),
    )
    return fast


async def test_copy_writes_bars_packed_series_and_refresh_state(engine: AsyncEngine) -> None:
    days = sessions(300)
    written = await write_bars(
        engine,
        [
            TickerWrite("AAA", date(2020, 1, 1), True, rows("AAA", days)),
            TickerWrite("BBB", date(2020, 1, 1), True, rows("BBB", days[:3], 20.0)),
        ],
        NOW,
    )

    assert written == 303
    coverage = await load_coverage(engine)
    assert (coverage["AAA"].first_date, coverage["AAA"].last_date) == (days[0], days[-1])
    assert (coverage["AAA"].bar_count, coverage["BBB"].bar_count) == (300, 3)
    assert coverage["BBB"].full_fetch_at == NOW
    assert await packed_state(engine) == {"AAA": (days[-1], 300), "BBB": (days[2], 3)}
    frame = await assert_reads_agree(engine, ["AAA", "BBB", "NONE"])
    assert frame.height == 303
    assert frame.filter(symbol="BBB")["high"].to_list() == [21.0] * 3


async def test_appends_grow_the_tail_and_fold_it_into_the_packed_series(
    engine: AsyncEngine,
) -> None:
    days = sessions(200)
    await write_bars(engine, [TickerWrite("AAA", days[0], True, rows("AAA", days[:50]))], NOW)
    # One session at a time, as daily top-ups do: far past the fold threshold.
    for i, day in enumerate(days[50:], start=1):
        later = NOW.replace(minute=i % 60, second=i // 60)
        await write_bars(
            engine, [TickerWrite("AAA", days[0], False, rows("AAA", [day], 10 + i))], later
        )
        await write_bars(engine, [TickerWrite("AAA", days[0], False, [])], later)

    coverage = (await load_coverage(engine))["AAA"]
    assert (coverage.bar_count, coverage.last_date, coverage.full_fetch_at) == (200, days[-1], NOW)
    packed_last, packed_count = (await packed_state(engine))["AAA"]
    assert 50 < packed_count < 200  # folded at least once, with a tail left
    assert packed_last == days[packed_count - 1]
    frame = await assert_reads_agree(engine, ["AAA"])
    assert frame["date"].to_list() == days
    assert frame["close"].to_list()[-1] == 10 + 150 + 0.5


async def test_misplaced_appends_and_failing_writes_change_nothing(engine: AsyncEngine) -> None:
    days = sessions(10)
    await write_bars(engine, [TickerWrite("AAA", days[0], True, rows("AAA", days[:5]))], NOW)
    before = await read_bars(engine, ["AAA"], before=date.max)

    with pytest.raises(StoreError, match="AAA"):
        await write_bars(engine, [TickerWrite("AAA", days[0], False, rows("AAA", days[4:6]))], NOW)
    with pytest.raises(StoreError, match="NEW"):
        await write_bars(engine, [TickerWrite("NEW", days[0], False, rows("NEW", days[:1]))], NOW)
    with pytest.raises(ValueError, match="ascending"):
        await write_bars(engine, [TickerWrite("AAA", days[0], True, rows("AAA", days[::-1]))], NOW)
    # AAA's old rows are deleted before the COPY fails on a ticker too long for its column.
    with pytest.raises(asyncpg.StringDataRightTruncationError):
        await write_bars(
            engine,
            [
                TickerWrite("AAA", days[0], True, rows("AAA", days, 99.0)),
                TickerWrite("X" * 40, days[0], True, rows("X" * 40, days[:1])),
            ],
            NOW.replace(hour=22),
        )

    assert_frame_equal(await read_bars(engine, ["AAA"], before=date.max), before)
    assert (await load_coverage(engine))["AAA"].refreshed_at == NOW
    assert await packed_state(engine) == {"AAA": (days[4], 5)}


async def test_packed_series_can_be_rebuilt_from_the_rows(engine: AsyncEngine) -> None:
    days = sessions(120)
    await write_bars(engine, [TickerWrite("AAA", days[0], True, rows("AAA", days[:100]))], NOW)
    await write_bars(engine, [TickerWrite("AAA", days[0], False, rows("AAA", days[100:]))], NOW)
    before = await read_bars(engine, ["AAA"], before=date.max)

    await rebuild_series(engine, ["AAA"])

    assert await packed_state(engine) == {"AAA": (days[-1], 120)}
    assert_frame_equal(await read_bars(engine, ["AAA"], before=date.max), before)


async def test_the_migration_matches_the_models_and_downgrades_cleanly(
    engine: AsyncEngine,
) -> None:
    def diffs(conn: Connection) -> list[object]:
        found = compare_metadata(
            MigrationContext.configure(conn, opts={"compare_type": True}), metadata
        )
        return [d for d in found if MARKETDATA_TABLES & set(map(str, _tables(d)))]

    def tables(conn: Connection) -> set[str]:
        return set(inspect(conn).get_table_names())

    async with engine.connect() as conn:
        assert await conn.run_sync(diffs) == []
        assert await conn.run_sync(tables) >= MARKETDATA_TABLES
    await db.downgrade(engine, "0003_bars@0001_foundation")
    async with engine.connect() as conn:
        assert not MARKETDATA_TABLES & await conn.run_sync(tables)
        assert "config_snapshots" in await conn.run_sync(tables)
    await db.upgrade(engine)
    async with engine.connect() as conn:
        assert await conn.run_sync(tables) >= MARKETDATA_TABLES


def _tables(diff: object) -> list[str]:
    """Table names an autogenerate diff entry mentions (entries are nested tuples)."""
    names: list[str] = []
    stack = [diff]
    while stack:
        item = stack.pop()
        if isinstance(item, tuple | list):
            stack.extend(item)
        elif hasattr(item, "table") and hasattr(item.table, "name"):
            names.append(item.table.name)
        elif hasattr(item, "name") and isinstance(item.name, str) and hasattr(item, "columns"):
            names.append(item.name)
        elif isinstance(item, str):
            names.append(item)
    return names
