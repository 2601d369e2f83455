"""The psql views, `alchemiser report`, and the migration that creates them."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from datetime import UTC, date, datetime
from decimal import Decimal

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

import alchemiser.books.models as books_models
from alchemiser import db
from alchemiser.books import ledger
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import reconcile
from alchemiser.books.report import fetch_report, format_table, render_report
from alchemiser.models import metadata
from tests.books.harness import Broker, execute_run, strategy
from tests.conftest import REPO_ROOT

D = Decimal
VIEWS = {
    "latest_prices",
    "book_positions",
    "book_value",
    "book_pnl",
    "trade_history",
    "run_summary",
}
BOOK_TABLES = {
    model.__tablename__
    for model in books_models.Base.__subclasses__()
    if model.__module__ == books_models.__name__
}


def only_book_tables(obj: object, name: str | None, type_: str, *_: object) -> bool:
    """Compare this issue's tables only (other areas check their own)."""
    if type_ == "table":
        return name in BOOK_TABLES
    return getattr(getattr(obj, "table", None), "name", None) in BOOK_TABLES


async def build_ledger(engine: AsyncEngine) -> None:
    """a: buys 10 SPY @100 then sells 4 @120; b: buys 5 TLT @50. Marks: SPY 130, TLT 40."""
    async with engine.begin() as conn:
        await ledger.deposit(conn, D(10_000))
        await ledger.sync_strategies(
            conn, [strategy("a", "2000"), strategy("b", "1000")], D(10_000)
        )
        broker = Broker(D(10_000))
        run1 = await ledger.start_run(conn, date(2026, 11, 2), "daily", "live")
        intents = [
            Intent("a", "SPY", "buy", D(10), D(100), "rebalance"),
            Intent("b", "TLT", "buy", D(5), D(50), "rebalance"),
        ]
        await execute_run(conn, run1.id, intents, broker)
        await ledger.record_signal(conn, run1.id, "a", allocation={"SPY": 1.0})
        await ledger.record_signal(conn, run1.id, "b", allocation=None, error="x.clj:1:2: boom")
        run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily", "live")
        sell = Intent("a", "SPY", "sell", D(4), D(120), "rebalance")
        await execute_run(conn, run2.id, [sell], broker)
        await ledger.record_prices(
            conn, {"SPY": D(130), "TLT": D(40)}, as_of=datetime(2099, 1, 1, tzinfo=UTC)
        )
        await reconcile(conn, broker.positions, broker.cash, D("0.01"), run_id=run2.id)
        await ledger.set_run_status(conn, run2.id, "completed", finished=True)


async def test_views_value_books_and_split_pnl(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    async with engine.connect() as conn:
        positions = (
            await conn.execute(
                text(
                    "select strategy_id, symbol, quantity, average_cost, last_price,"
                    " market_value, unrealised_pnl from book_positions order by 1"
                )
            )
        ).all()
        pnl = (
            await conn.execute(
                text(
                    "select strategy_id, realised_pnl, unrealised_pnl, total_pnl"
                    " from book_pnl order by 1"
                )
            )
        ).all()
        value = {r.strategy_id: r for r in await conn.execute(text("select * from book_value"))}
    assert [tuple(p) for p in positions] == [
        ("a", "SPY", D(6), D(100), D(130), D(780), D(180)),
        ("b", "TLT", D(5), D(50), D(40), D(200), D(-50)),
    ]
    assert [tuple(p) for p in pnl] == [("a", D(80), D(180), D(260)), ("b", D(0), D(-50), D(-50))]
    assert value["a"].cash == D(2000 - 1000 + 480)
    assert value["a"].total_value == D(1480 + 780)
    assert value["a"].pnl == D(260)
    assert value["b"].pnl == D(-50)
    assert value["unallocated"].total_value == D(7000)
    total_share = sum(v.account_share for v in value.values())
    assert abs(total_share - 1) < D("0.00001")


async def test_trade_history_and_run_summary(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    trades = await fetch_report(engine, "trades")
    assert [(r[1], r[2], r[3], r[4]) for r in trades.rows] == [
        ("a", "SPY", "sell", D(4)),
        ("b", "TLT", "buy", D(5)),
        ("a", "SPY", "buy", D(10)),
    ]
    assert len(trades.rows) == 3
    runs = await fetch_report(engine, "runs")
    by_day = {r[1]: dict(zip(runs.columns, r, strict=True)) for r in runs.rows}
    first, second = by_day[date(2026, 11, 2)], by_day[date(2026, 11, 3)]
    assert (first["strategies"], first["failed_strategies"], first["intents"]) == (2, 1, 2)
    assert (first["broker_orders"], first["book_fills"], first["traded_value"]) == (2, 2, D(1250))
    assert (second["status"], second["reconciled"], second["book_fills"]) == ("completed", True, 1)
    only_b = await fetch_report(engine, "books", strategy="b")
    assert [r[0] for r in only_b.rows] == ["b"]


def test_format_table_aligns_and_rounds_money() -> None:
    table = format_table(
        ["strategy_id", "quantity", "cash"],
        [("a", D("1.500000000"), D("10.005")), ("bb", D(10), None)],
    )
    lines = table.splitlines()
    assert lines[0].split() == ["strategy_id", "quantity", "cash"]
    assert "1.5" in lines[2] and "10.00" in lines[2]
    assert lines[3].split() == ["bb", "10"]
    assert lines[-1] == "(2 rows)"


async def test_each_report_renders(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    for what, expected in (
        ("books", "unallocated"),
        ("positions", "SPY"),
        ("trades", "TLT"),
        ("runs", "2026-11-03"),
    ):
        assert expected in await render_report(engine, what)  # type: ignore[arg-type]


async def test_report_command_prints_the_books(engine: AsyncEngine, db_url: str) -> None:
    await build_ledger(engine)
    base = {k: v for k, v in os.environ.items() if not k.startswith(("ALCHEMISER_", "ALPACA_"))}
    env = {**base, "ALCHEMISER_DATABASE_URL": db_url, "ALCHEMISER_CONFIG": "/dev/null"}
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "alchemiser.cli", "report", "positions", "--strategy", "a"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split()[:3] == ["strategy_id", "symbol", "quantity"]
    assert lines[2].split()[:3] == ["a", "SPY", "6"]
    assert lines[-1] == "(1 row)"


async def test_migration_matches_the_models_and_downgrade_drops_the_views(
    empty_db_url: str,
) -> None:
    engine = db.create_engine(empty_db_url)
    try:
        await db.upgrade(engine)

        def diffs(connection: object) -> list:
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "include_object": only_book_tables}
            )
            return compare_metadata(context, metadata)

        async with engine.connect() as conn:
            assert await conn.run_sync(diffs) == []
            views = set(
                (
                    await conn.execute(
                        text("select viewname from pg_views where schemaname = 'public'")
                    )
                ).scalars()
            )
            assert views >= VIEWS
            unallocated = await conn.scalar(
                text("select state from strategies where id = 'unallocated'")
            )
            assert unallocated == "system"
        await db.downgrade(engine, "base")
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    text("select viewname from pg_views where schemaname = 'public'")
                )
            ).scalars()
            assert set(left) == set()
    finally:
        await engine.dispose()


def sql_examples(markdown: str) -> list[str]:
    block = markdown.split("```sql", 1)[1].split("```", 1)[0]
    return [s.strip() for s in block.split(";") if s.strip()]


async def test_the_readme_psql_examples_run(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    statements = sql_examples(readme.split("## Reading the books with psql", 1)[1])
    assert len(statements) >= 6
    async with engine.connect() as conn:
        for statement in statements:
            await conn.execute(text(statement))


async def test_the_ledger_guide_queries_run_and_name_every_view(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    guide = (REPO_ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")
    statements = sql_examples(guide)
    assert len(statements) >= 8
    async with engine.connect() as conn:
        for statement in statements:
            await conn.execute(text(statement))
    assert all(f"`{view}`" in guide for view in VIEWS)
    assert all(f"`{table}`" in guide for table in BOOK_TABLES)
