"""Booking what the broker did, exactly once, whatever the order of events (real Postgres)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.fills import ExecutionReport, OrderProgress
from alchemiser.books.orders import BrokerOrderRecord
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import ledger_problems, reconcile
from alchemiser.settings import UNALLOCATED_BOOK
from tests.books.harness import strategy

D = Decimal
DAY = date(2026, 11, 2)
AT = datetime(2026, 11, 2, 20, 31, tzinfo=UTC)
COID = "alch-20261102-daily-SPY-buy-0"


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        yield connection


async def holdings(conn: AsyncConnection) -> dict[tuple[str, str], Decimal]:
    rows = await conn.execute(text("select strategy_id, symbol, quantity from book_holdings"))
    return {(b, s): q for b, s, q in rows if q != 0}


async def planned_run(conn: AsyncConnection, *intents: Intent) -> int:
    await ledger.deposit(conn, D(100_000))
    await ledger.sync_strategies(conn, [strategy("a", "5000"), strategy("b", "5000")], D(100_000))
    run = await ledger.start_run(conn, DAY, "daily")
    await ledger.record_plan(conn, run.id, intents, "inputs")
    return run.id


def order(run_id: int, quantity: str, coid: str = COID, side: str = "buy") -> BrokerOrderRecord:
    return BrokerOrderRecord(
        coid, run_id, "SPY", side, 0, "limit", D(quantity), "pending_new", fractionable=True
    )  # type: ignore[arg-type]


def execution(
    eid: str, qty: str, price: str, cum: str, avg: str, coid: str | None = COID
) -> ExecutionReport:
    return ExecutionReport(eid, "SPY", "buy", D(qty), D(price), AT, coid, D(cum), D(avg))


def progress(cum: str, avg: str, status: str = "partially_filled") -> OrderProgress:
    return OrderProgress(COID, "SPY", "buy", D(cum), D(avg), AT, status)


async def test_a_fill_that_beats_its_order_record_is_parked_then_booked(
    conn: AsyncConnection,
) -> None:
    run_id = await planned_run(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    # The stream reports the fill before the order row is written (or a crash fell between).
    assert await ledger.book_execution(conn, execution("e1", "10", "100", "10", "100")) == []
    assert await holdings(conn) == {}
    problems = await ledger_problems(conn)
    assert problems == [f"fill parked, its order not recorded: ('{COID}', 'e1')"]
    # Recording the order books what was parked for it, to the book that asked.
    await ledger.record_broker_order(conn, order(run_id, "10"))
    assert await holdings(conn) == {("a", "SPY"): D(10)}
    work = await ledger.net_run(conn, run_id, fractionable={"SPY"})
    assert work.orders == ()  # nothing bought twice
    assert await ledger.book_execution(conn, execution("e1", "10", "100", "10", "100")) == []
    assert await holdings(conn) == {("a", "SPY"): D(10)}
    assert await ledger_problems(conn) == []


async def test_a_fill_of_a_foreign_order_is_reported_never_absorbed(conn: AsyncConnection) -> None:
    await planned_run(conn)
    manual = execution("m1", "3", "150", "3", "150", coid="web-app-3f2a")
    assert await ledger.book_execution(conn, manual) == []
    assert await ledger.book_execution(conn, manual) == []
    assert await holdings(conn) == {}
    (foreign,) = await ledger.foreign_fills(conn)
    assert (foreign.client_order_id, foreign.quantity, foreign.price) == ("web-app-3f2a", 3, 150)
    cash = await conn.scalar(
        text("select cash from strategies where id = :u"), {"u": UNALLOCATED_BOOK}
    )
    assert cash == D(90_000)


async def test_rest_progress_and_stream_executions_book_each_share_once(
    conn: AsyncConnection,
) -> None:
    run_id = await planned_run(
        conn,
        Intent("a", "SPY", "buy", D(30), D(100), "rebalance"),
        Intent("b", "SPY", "buy", D(10), D(100), "rebalance"),
    )
    await ledger.record_broker_order(conn, order(run_id, "40"))
    # The stream's first execution: 10 @ 100.
    await ledger.book_execution(conn, execution("e1", "10", "100", "10", "100"))
    # The stream drops; REST reads the order back: 30 filled at an average of 101.
    booked = await ledger.book_order_progress(conn, progress("30", "101"))
    assert sum(f.quantity for f in booked) == 20
    assert {f.price for f in booked} == {D("101.5")}  # makes the booked average the broker's
    # The missed executions arrive late from a replay: already booked by progress.
    assert await ledger.book_execution(conn, execution("e2", "20", "101.5", "30", "101")) == []
    # A stale REST snapshot books nothing.
    assert await ledger.book_order_progress(conn, progress("10", "100")) == []
    await ledger.book_execution(conn, execution("e3", "10", "102", "40", "101.25"))
    assert await holdings(conn) == {("a", "SPY"): D(30), ("b", "SPY"): D(10)}
    row = (
        await conn.execute(text("select filled_quantity, filled_value, status from broker_orders"))
    ).one()
    assert tuple(row) == (D(40), D(4050), "partially_filled")
    spent = await conn.scalar(text("select -sum(amount) from cash_entries where kind = 'fill'"))
    assert spent == D(4050)  # = 40 × 101.25, the broker's average
    assert await ledger_problems(conn) == []


async def test_an_order_is_never_booked_past_its_quantity(conn: AsyncConnection) -> None:
    run_id = await planned_run(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    await ledger.record_broker_order(conn, order(run_id, "10"))
    booked = await ledger.book_order_progress(conn, progress("12", "100", "filled"))
    assert sorted((f.strategy_id, f.quantity) for f in booked) == [
        ("a", D(10)),
        (UNALLOCATED_BOOK, D(2)),
    ]
    problems = await ledger_problems(conn)
    assert any(p.startswith("order booked past its quantity") for p in problems), problems


async def test_lots_are_closed_in_execution_time_order_not_booking_order(
    conn: AsyncConnection,
) -> None:
    run_id = await planned_run(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    later, earlier = "alch-20261102-daily-SPY-buy-1", "alch-20261102-daily-SPY-buy-0"
    for coid in (earlier, later):
        await ledger.record_broker_order(conn, order(run_id, "5", coid))
    # The later execution is booked first (its report arrived first).
    late = ExecutionReport("e2", "SPY", "buy", D(5), D(110), AT, later, D(5), D(110))
    early = ExecutionReport(
        "e1", "SPY", "buy", D(5), D(90), datetime(2026, 11, 2, 20, 1, tzinfo=UTC), earlier, D(5)
    )
    await ledger.book_execution(conn, late)
    await ledger.book_execution(conn, early)
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    await ledger.record_plan(conn, run2.id, [Intent("a", "SPY", "sell", D(5), D(120), "x")], "h")
    sell = "alch-20261103-daily-SPY-sell-0"
    await ledger.record_broker_order(conn, order(run2.id, "5", sell, side="sell"))
    later_at = datetime(2026, 11, 3, 20, 1, tzinfo=UTC)
    await ledger.book_execution(
        conn, ExecutionReport("e3", "SPY", "sell", D(5), D(120), later_at, sell, D(5))
    )
    realised = await conn.scalar(text("select realised_pnl from book_holdings"))
    assert realised == 5 * (120 - 90)  # the 09:01 lot went first


async def test_whole_share_fills_leave_whole_shares_in_every_book(conn: AsyncConnection) -> None:
    run_id = await planned_run(
        conn,
        Intent("a", "UVXY", "buy", D(3), D(20), "rebalance"),
        Intent("b", "UVXY", "buy", D(2), D(20), "rebalance"),
    )
    coid = "alch-20261102-daily-UVXY-buy-0"
    record = BrokerOrderRecord(
        coid, run_id, "UVXY", "buy", 0, "limit", D(5), "new", fractionable=False
    )
    await ledger.record_broker_order(conn, record)
    for n, cumulative in enumerate(("1", "2", "3"), start=1):
        report = ExecutionReport(f"u{n}", "UVXY", "buy", D(1), D(20), AT, coid, D(cumulative))
        await ledger.book_execution(conn, report)
        held = await holdings(conn)
        assert all(q == q.to_integral_value() for q in held.values()), held
    rest = OrderProgress(coid, "UVXY", "buy", D(5), D(20), AT, "filled")
    await ledger.book_order_progress(conn, rest)
    assert await holdings(conn) == {("a", "UVXY"): D(3), ("b", "UVXY"): D(2)}


async def test_reconciliation_names_the_foreign_fill_behind_a_difference(
    conn: AsyncConnection,
) -> None:
    await planned_run(conn)
    await ledger.book_execution(conn, execution("m1", "3", "150", "3", "150", coid="web-app-1"))
    cash = await conn.scalar(text("select sum(cash) from strategies"))
    result = await reconcile(conn, {"SPY": D(3)}, cash - 450, D("0.01"))
    assert not result.ok
    (position,) = [d for d in result.differences if d.kind == "position"]
    assert position.known_causes == ("foreign fills (manual trades, not booked): +3 shares",)
    recorded = await conn.scalar(text("select differences from reconciliations"))
    assert any(d["known_causes"] for d in recorded)
