"""Benchmark of the books: planning + netting, booking fills, and the psql views on a large ledger.

    .venv/bin/python benchmarks/bench_books.py [--fills 1000000]

1. Plan 100 books × 50 tickers and net their intents (target: < 100 ms).
2. Book fills as the daemon does, one committed transaction each (`retry.transact`):
   stream executions and REST order progress of orders split among 20 books
   (target: < 50 ms per booking).
3. Build a ledger of 1,000,000 book fills (set-based INSERT ... SELECT
   generate_series) in a scratch database on the server TEST_DATABASE_URL names
   (default postgresql://postgres@127.0.0.1:5432/postgres), time each reporting
   view as `alchemiser report` and a psql user query it (target: < 200 ms), and
   drop the database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser import db
from alchemiser.books import ledger
from alchemiser.books.fills import ExecutionReport, OrderProgress
from alchemiser.books.netting import net_intents
from alchemiser.books.planner import BookState, Intent, RebalanceOptions, plan_book
from alchemiser.books.reconcile import ledger_problems
from alchemiser.books.retry import transact
from alchemiser.settings import RiskConfig, StrategyConfig

DEFAULT_SERVER = "postgresql://postgres@127.0.0.1:5432/postgres"
BOOKS, TICKERS = 100, 50
PLAN_TARGET_MS, VIEW_TARGET_MS, BOOKING_TARGET_MS = 100.0, 200.0, 50.0
BOOKING_BOOKS, BOOKING_ORDERS, EXECUTIONS_PER_ORDER = 20, 25, 4
FILLS_PER_EXECUTION = 10
EXECUTIONS_PER_RUN = 40


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def report(name: str, times: list[float], target: float) -> bool:
    best, median, worst = min(times), statistics.median(times), max(times)
    ok = median < target
    print(
        f"  {name:<62} best {best:8.2f} ms  median {median:8.2f} ms  max {worst:8.2f} ms"
        f"  {'ok' if ok else 'SLOW'} (< {target:.0f} ms)"
    )
    return ok


# ---------------------------------------------------------------- planning + netting


def planning_inputs(seed: int = 7) -> tuple[list[BookState], list[dict[str, float]], dict]:
    rng = random.Random(seed)
    tickers = [f"T{i:02d}" for i in range(TICKERS)]
    prices = {t: Decimal(str(round(rng.uniform(5, 500), 2))) for t in tickers}
    books, targets = [], []
    for b in range(BOOKS):
        held = rng.sample(tickers, rng.randint(5, TICKERS))
        positions = {t: Decimal(str(round(rng.uniform(0, 200), 9))) for t in held}
        books.append(BookState(f"book{b:03d}", Decimal(rng.randint(0, 100_000)), positions))
        wanted = rng.sample(tickers, rng.randint(5, TICKERS))
        raw = [rng.random() for _ in wanted]
        targets.append({t: w / sum(raw) for t, w in zip(wanted, raw, strict=True)})
    return books, targets, prices


def bench_planning(repeat: int) -> bool:
    books, targets, prices = planning_inputs()
    fractionable = frozenset(list(prices)[: TICKERS - 5])  # five whole-share tickers
    risk = RiskConfig()
    counts: dict[str, int] = {}

    def plan_and_net() -> None:
        intents = []
        for book, book_targets in zip(books, targets, strict=True):
            intents += plan_book(
                book,
                targets=book_targets,
                prices=prices,
                fractionable=fractionable,
                options=RebalanceOptions(),
                rebalance_day=True,
                risk=risk,
            )
        netted = net_intents(intents, fractionable, {b.strategy_id: b.cash for b in books})
        counts.update(intents=len(intents), orders=len(netted.orders), crosses=len(netted.crosses))

    times = timed(plan_and_net, repeat)
    print(f"planning + netting: {BOOKS} books x {TICKERS} tickers ({counts})")
    return report("plan every book, then net all intents", times, PLAN_TARGET_MS)


# ---------------------------------------------------------------- the ledger


def _dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _with_database(url: str, name: str) -> str:
    return make_url(url).set(database=name).render_as_string(hide_password=False)


def ledger_sql(runs: int) -> list[tuple[str, str]]:
    """Set-based statements that fill every ledger table; `runs` × 400 book fills."""
    symbol = "'T' || lpad(((r * 7 + k) % 50)::text, 2, '0')"
    price = "(50 + ((r * 31 + k * 17) % 1000) / 10.0)::numeric"
    side = "CASE WHEN (r + k) % 3 = 0 THEN 'sell' ELSE 'buy' END"
    at = "(DATE '2017-01-02' + r) + TIME '15:45' + k * INTERVAL '1 second'"
    grid = f"generate_series(1, {runs}) r, generate_series(1, {EXECUTIONS_PER_RUN}) k"
    book = "'book' || lpad(((r * 3 + k * 11 + j * 10) % 100)::text, 3, '0')"
    return [
        (
            "strategies",
            f"INSERT INTO strategies (id, file, allocation, state, cash, net_funding) "
            f"SELECT 'book' || lpad(b::text, 3, '0'), 'strategies/s' || b || '.clj', 0.0099, "
            f"'active', 1000 + b, 10000 FROM generate_series(0, {BOOKS - 1}) b",
        ),
        (
            "runs",
            f"INSERT INTO runs (id, trading_day, kind, status, price_mode, started_at, finished_at)"
            f" OVERRIDING SYSTEM VALUE SELECT r, DATE '2017-01-02' + r, 'daily', 'completed',"
            f" 'live', (DATE '2017-01-02' + r) + TIME '15:30', (DATE '2017-01-02' + r)"
            f" + TIME '15:52' FROM generate_series(1, {runs}) r",
        ),
        (
            "signals",
            f"INSERT INTO signals (run_id, strategy_id, allocation, trace) SELECT r, "
            f"'book' || lpad(b::text, 3, '0'), '{{\"SPY\": 1.0}}', '[]' "
            f"FROM generate_series(1, {runs}) r, generate_series(0, {BOOKS - 1}) b",
        ),
        (
            "broker_orders",
            f"INSERT INTO broker_orders (id, run_id, client_order_id, alpaca_order_id, symbol,"
            f" side, step, order_type, quantity, limit_price, status, filled_quantity)"
            f" OVERRIDING SYSTEM VALUE SELECT (r - 1) * {EXECUTIONS_PER_RUN} + k, r,"
            f" 'alch-' || r || '-' || k, 'ord-' || r || '-' || k, {symbol}, {side}, 0, 'limit',"
            f" 10, {price}, 'filled', 10 FROM {grid}",
        ),
        (
            "executions",
            f"INSERT INTO executions (execution_id, kind, run_id, broker_order_id, symbol, side,"
            f" quantity, price, executed_at) SELECT 'exec-' || r || '-' || k, 'broker', r,"
            f" (r - 1) * {EXECUTIONS_PER_RUN} + k, {symbol}, {side}, 10, {price}, {at}"
            f" FROM {grid}",
        ),
        (
            "intents",
            f"INSERT INTO intents (run_id, strategy_id, symbol, side, quantity, reference_price,"
            f" reason) SELECT r, {book}, {symbol}, {side}, 1, {price}, 'rebalance'"
            f" FROM {grid}, generate_series(0, {FILLS_PER_EXECUTION - 1}) j"
            f" ON CONFLICT DO NOTHING",
        ),
        (
            "book_fills",
            f"INSERT INTO book_fills (execution_id, strategy_id, run_id, symbol, side, quantity,"
            f" price, filled_at) SELECT 'exec-' || r || '-' || k, {book}, r, {symbol}, {side}, 1,"
            f" {price}, {at} FROM {grid}, generate_series(0, {FILLS_PER_EXECUTION - 1}) j",
        ),
        (
            "lots",
            "INSERT INTO lots (strategy_id, symbol, book_fill_id, opened_at, quantity, remaining,"
            " cost_price) SELECT strategy_id, symbol, id, filled_at, quantity,"
            " CASE WHEN id % 7 = 0 THEN quantity ELSE 0 END, price FROM book_fills"
            " WHERE side = 'buy'",
        ),
        (
            "lot_closures",
            "INSERT INTO lot_closures (lot_id, book_fill_id, quantity, cost_price, sale_price,"
            " realised_pnl) SELECT l.id, f.id, 1, l.cost_price, f.price, f.price - l.cost_price"
            " FROM book_fills f JOIN lots l ON l.id = (SELECT max(id) FROM lots)"
            " WHERE f.side = 'sell'",
        ),
        (
            "cash_entries",
            "INSERT INTO cash_entries (strategy_id, kind, amount, book_fill_id, run_id)"
            " SELECT strategy_id, 'fill', CASE WHEN side = 'buy' THEN -1 ELSE 1 END"
            " * quantity * price, id, run_id FROM book_fills",
        ),
        (
            "book_holdings",
            "INSERT INTO book_holdings (strategy_id, symbol, quantity, cost_basis, realised_pnl)"
            " SELECT strategy_id, symbol, abs(sum(CASE WHEN side = 'buy' THEN quantity"
            " ELSE -quantity END)) + 1, sum(quantity * price) / 10, sum(price) / 100"
            " FROM book_fills GROUP BY strategy_id, symbol",
        ),
        (
            "marks",
            f"INSERT INTO marks (symbol, as_of, price, run_id) SELECT 'T' || lpad(t::text, 2, '0'),"
            f" (DATE '2017-01-02' + r) + TIME '15:30', 50 + ((r * 13 + t) % 900) / 10.0, r"
            f" FROM generate_series(1, {runs}) r, generate_series(0, {TICKERS - 1}) t",
        ),
        (
            "runs (running totals)",
            "UPDATE runs r SET"
            " intents = (SELECT count(*) FROM intents i WHERE i.run_id = r.id),"
            " broker_orders = (SELECT count(*) FROM broker_orders o WHERE o.run_id = r.id),"
            " strategies = (SELECT count(*) FROM signals s WHERE s.run_id = r.id)",
        ),
        (
            "run_fill_totals",
            "INSERT INTO run_fill_totals (run_id, book_fills, traded_value)"
            " SELECT run_id, count(*), sum(quantity * price) FROM book_fills GROUP BY run_id",
        ),
        (
            "reconciliations",
            f"INSERT INTO reconciliations (run_id, ok, tolerance, books_cash, broker_cash,"
            f" differences) SELECT r, true, 0.01, 1000, 1000, '[]'"
            f" FROM generate_series(1, {runs}) r",
        ),
    ]


async def bench_booking(server: str) -> bool:
    """Time each booking transaction: stream executions, then REST progress, of many orders."""

    async def body(url: str) -> bool:
        engine = db.create_engine(url)
        try:
            await db.upgrade(engine)
            orders = await booking_setup(engine)
            stream, rest = [], []
            for step in range(1, EXECUTIONS_PER_ORDER + 1):
                for coid, symbol in orders:
                    cumulative = Decimal(step * BOOKING_BOOKS)
                    execution = ExecutionReport(
                        f"{coid}-{step}",
                        symbol,
                        "buy",
                        Decimal(BOOKING_BOOKS),
                        Decimal(100),
                        datetime.now(UTC),
                        coid,
                        cumulative,
                        Decimal(100),
                    )
                    progress = OrderProgress(
                        coid, symbol, "buy", cumulative, Decimal(100), datetime.now(UTC)
                    )
                    # Every other step arrives by REST catch-up, the stream's replay after it.
                    first, then = (execution, progress) if step % 2 else (progress, execution)
                    for event, into in ((first, stream if step % 2 else rest), (then, None)):
                        start = time.perf_counter()
                        await transact(engine, lambda c, e=event: _book_event(c, e))
                        if into is not None:
                            into.append((time.perf_counter() - start) * 1000)
            async with engine.connect() as conn:
                assert await ledger_problems(conn) == []
        finally:
            await engine.dispose()
        print(
            f"booking: {BOOKING_ORDERS} orders x {EXECUTIONS_PER_ORDER} fills, each split among"
            f" {BOOKING_BOOKS} books, one transaction per report"
        )
        ok = report("book a stream execution (new shares)", stream, BOOKING_TARGET_MS)
        return ok & report("book REST order progress (new shares)", rest, BOOKING_TARGET_MS)

    return await with_scratch_database(server, body)


async def _book_event(conn: AsyncConnection, event: ExecutionReport | OrderProgress) -> object:
    if isinstance(event, OrderProgress):
        return await ledger.book_order_progress(conn, event)
    return await ledger.book_execution(conn, event)


async def booking_setup(engine: AsyncEngine) -> list[tuple[str, str]]:
    """Books that each want every ticker; one recorded order per ticker."""
    async with engine.begin() as conn:
        await ledger.deposit(conn, Decimal(100_000_000))
        books = [
            StrategyConfig(
                id=f"book{b:02d}",
                file=Path(f"s{b}.clj"),
                allocation=Decimal(0),
                capital=Decimal(1_000_000),
            )
            for b in range(BOOKING_BOOKS)
        ]
        await ledger.sync_strategies(conn, books, Decimal(100_000_000))
        run = await ledger.start_run(conn, date(2026, 11, 2), "daily")
        quantity = Decimal(EXECUTIONS_PER_ORDER)
        symbols = [f"T{t:02d}" for t in range(BOOKING_ORDERS)]
        intents = [
            Intent(b.id, s, "buy", quantity, Decimal(100), "rebalance")
            for b in books
            for s in symbols
        ]
        await ledger.record_plan(conn, run.id, intents, "bench")
        orders = []
        for symbol in symbols:
            step, coid = await ledger.next_order(conn, run.id, symbol, "buy")
            record = ledger.BrokerOrderRecord(
                coid,
                run.id,
                symbol,
                "buy",
                step,
                "limit",
                quantity * BOOKING_BOOKS,
                "new",
                fractionable=True,
            )
            await ledger.record_broker_order(conn, record)
            orders.append((coid, symbol))
    return orders


# What `alchemiser report` and a psql user ask of each view.
VIEW_QUERIES = [
    ("book_positions: every open position", "SELECT * FROM book_positions"),
    ("book_value: every book", "SELECT * FROM book_value"),
    ("book_pnl: every book and ticker", "SELECT * FROM book_pnl"),
    (
        "trade_history: latest 100 fills",
        "SELECT * FROM trade_history ORDER BY filled_at DESC, fill_id DESC LIMIT 100",
    ),
    (
        "trade_history: one book's latest 100 fills",
        "SELECT * FROM trade_history WHERE strategy_id = '{book}'"
        " ORDER BY filled_at DESC, fill_id DESC LIMIT 100",
    ),
    (
        "trade_history: one book, one ticker, all fills",
        "SELECT * FROM trade_history WHERE strategy_id = '{book}' AND symbol = '{symbol}'",
    ),
    (
        "run_summary: latest 50 runs",
        "SELECT * FROM run_summary ORDER BY trading_day DESC, kind LIMIT 50",
    ),
    ("run_summary: one run", "SELECT * FROM run_summary WHERE run_id = {run}"),
    ("run_summary: every run", "SELECT * FROM run_summary"),
]
# Whole-history scans, for information (no target: a psql user pages these).
SCAN_QUERIES = [
    ("trade_history: count(*) (full scan)", "SELECT count(*) FROM trade_history"),
]


async def timed_query(conn: asyncpg.Connection, sql: str, repeat: int) -> list[float]:
    await conn.fetch(sql)  # warm the cache once, as a daemon that keeps running would
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await conn.fetch(sql)
        times.append((time.perf_counter() - start) * 1000)
    return times


async def with_scratch_database(server: str, body: Callable[[str], Awaitable[bool]]) -> bool:
    name = f"alchemiser_bench_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(_dsn(server))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            return await body(db.async_url(_with_database(server, name)))
        finally:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def bench_views(server: str, fills: int, repeat: int) -> bool:
    runs = fills // (EXECUTIONS_PER_RUN * FILLS_PER_EXECUTION)

    async def body(url: str) -> bool:
        engine = db.create_engine(url)
        try:
            await db.upgrade(engine)
        finally:
            await engine.dispose()
        conn = await asyncpg.connect(_dsn(url))
        try:
            await build_ledger(conn, runs)
            print(f"views on a ledger of {fills:,} book fills ({runs:,} runs), {repeat} runs each")
            ok = True
            # A book and ticker that traded, and a run from the middle of the history.
            book, symbol = await conn.fetchrow(
                "SELECT strategy_id, symbol FROM book_holdings ORDER BY 1, 2 LIMIT 1 OFFSET 2121"
            )
            names = {"book": book, "symbol": symbol, "run": runs // 2}
            for name, template in VIEW_QUERIES:
                sql = template.format(**names)
                rows = len(await conn.fetch(sql))
                ok &= report(
                    f"{name} [{rows} rows]", await timed_query(conn, sql, repeat), VIEW_TARGET_MS
                )
            for name, sql in SCAN_QUERIES:
                times = await timed_query(conn, sql, max(1, repeat // 3))
                print(f"  {name:<62} median {statistics.median(times):8.2f} ms  (information)")
            return ok
        finally:
            await conn.close()

    return await with_scratch_database(server, body)


async def build_ledger(conn: asyncpg.Connection, runs: int) -> None:
    start = time.perf_counter()
    # Bulk load in one transaction; the generated rows are consistent by construction,
    # so foreign-key triggers are skipped (replica role) when the server allows it.
    await conn.execute("SET synchronous_commit = off")
    is_superuser = await conn.fetchval("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")
    async with conn.transaction():
        if is_superuser:
            await conn.execute("SET LOCAL session_replication_role = replica")
        for _table, sql in ledger_sql(runs):
            await conn.execute(sql)
    await conn.execute("ANALYZE")
    counts = await conn.fetchrow(
        "SELECT (SELECT count(*) FROM book_fills) AS fills,"
        " (SELECT count(*) FROM executions) AS executions,"
        " (SELECT count(*) FROM lots) AS lots, (SELECT count(*) FROM cash_entries) AS cash"
    )
    elapsed = time.perf_counter() - start
    print(f"built the ledger in {elapsed:.1f} s: {dict(counts)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fills", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=30)
    parser.add_argument("--server", default=os.environ.get("TEST_DATABASE_URL", DEFAULT_SERVER))
    args = parser.parse_args()
    ok = bench_planning(args.repeat)
    ok &= asyncio.run(bench_booking(args.server))
    ok &= asyncio.run(bench_views(args.server, args.fills, args.repeat))
    print("all targets met" if ok else "SOME TARGETS MISSED")
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
