"""The bar store on its own: COPY writes are all-or-nothing; the migration is reversible."""

from __future__ import annotations

from datetime import UTC, date, datetime

import asyncpg
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, inspect
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db
from alchemiser.marketdata.alpaca import BarRow
from alchemiser.marketdata.store import TickerWrite, load_coverage, read_bars, write_bars
from alchemiser.models import metadata

NOW = datetime(2026, 11, 18, 20, 0, tzinfo=UTC)
MARKETDATA_TABLES = {"bars", "bar_refresh_state", "today_prices"}


def rows(ticker: str, days: list[int], close: float = 10.0) -> list[BarRow]:
    return [(ticker, date(2026, 11, d), close, close, close, close, 100.0) for d in days]


async def test_copy_writes_bars_and_their_refresh_state(engine: AsyncEngine) -> None:
    written = await write_bars(
        engine,
        [
            TickerWrite("AAA", date.min, date(2026, 11, 1), True, rows("AAA", [2, 3, 4])),
            TickerWrite("BBB", date.min, date(2026, 11, 1), True, rows("BBB", [3])),
        ],
        NOW,
    )

    assert written == 4
    coverage = await load_coverage(engine)
    assert (coverage["AAA"].first_date, coverage["AAA"].last_date) == (
        date(2026, 11, 2),
        date(2026, 11, 4),
    )
    assert coverage["AAA"].bar_count == 3
    assert coverage["BBB"].full_fetch_at == NOW
    frame = await read_bars(engine, ["AAA", "BBB"], before=date(2026, 11, 4))
    assert frame["symbol"].to_list() == ["AAA", "AAA", "BBB"]


async def test_a_partial_replacement_keeps_older_bars_and_the_full_fetch_time(
    engine: AsyncEngine,
) -> None:
    await write_bars(
        engine, [TickerWrite("AAA", date.min, date(2026, 11, 1), True, rows("AAA", [2, 3]))], NOW
    )
    later = NOW.replace(hour=21)

    await write_bars(
        engine,
        [
            TickerWrite(
                "AAA", date(2026, 11, 3), date(2026, 11, 1), False, rows("AAA", [3, 4], 11.0)
            )
        ],
        later,
    )

    frame = await read_bars(engine, ["AAA"], before=date.max)
    assert frame["close"].to_list() == [10.0, 11.0, 11.0]
    coverage = (await load_coverage(engine))["AAA"]
    assert (coverage.bar_count, coverage.refreshed_at, coverage.full_fetch_at) == (3, later, NOW)


async def test_a_failing_write_changes_nothing(engine: AsyncEngine) -> None:
    await write_bars(
        engine, [TickerWrite("AAA", date.min, date(2026, 11, 1), True, rows("AAA", [2]))], NOW
    )
    broken = [
        TickerWrite("AAA", date.min, date(2026, 11, 1), True, rows("AAA", [5, 6])),
        # The same session twice violates the primary key half way through the COPY.
        TickerWrite("BBB", date.min, date(2026, 11, 1), True, rows("BBB", [3, 3])),
    ]

    with pytest.raises(asyncpg.UniqueViolationError):
        await write_bars(engine, broken, NOW.replace(hour=22))

    frame = await read_bars(engine, ["AAA", "BBB"], before=date.max)
    assert frame["date"].to_list() == [date(2026, 11, 2)]
    assert set(await load_coverage(engine)) == {"AAA"}


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
