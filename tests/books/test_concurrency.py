"""Two real connections booking at once: no deadlock, nothing booked twice."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.fills import ExecutionReport, OrderProgress
from alchemiser.books.orders import BrokerOrderRecord
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import ledger_problems
from alchemiser.books.retry import transact
from tests.books.harness import strategy

D = Decimal
DAY = date(2026, 11, 2)
AT = datetime(2026, 11, 2, 20, 31, tzinfo=UTC)


def coid(symbol: str) -> str:
    return f"alch-20261102-daily-{symbol}-buy-0"


def fill(eid: str, symbol: str, qty: str, cum: str) -> ExecutionReport:
    return ExecutionReport(eid, symbol, "buy", D(qty), D(100), AT, coid(symbol), D(cum), D(100))


async def setup(engine: AsyncEngine) -> int:
    """Book a wants 10 SPY and 10 TLT; both orders are recorded and committed."""
    async with engine.begin() as conn:
        await ledger.deposit(conn, D(100_000))
        await ledger.sync_strategies(conn, [strategy("a", "5000")], D(100_000))
        run = await ledger.start_run(conn, DAY, "daily")
        intents = [
            Intent("a", symbol, "buy", D(10), D(100), "rebalance") for symbol in ("SPY", "TLT")
        ]
        await ledger.record_plan(conn, run.id, intents, "inputs")
        for symbol in ("SPY", "TLT"):
            await ledger.record_broker_order(
                conn,
                BrokerOrderRecord(
                    coid(symbol), run.id, symbol, "buy", 0, "limit", D(10), "new", fractionable=True
                ),
            )
    return run.id


async def blocked_or_done(engine: AsyncEngine, pid: int, task: asyncio.Task[None]) -> None:
    """Wait until `task` finished or its connection (backend `pid`) waits for a lock."""
    async with engine.connect() as watcher:
        while not task.done():
            waiting = await watcher.scalar(
                text("select wait_event_type = 'Lock' from pg_stat_activity where pid = :p"),
                {"p": pid},
            )
            await watcher.rollback()
            if waiting:
                return
            await asyncio.sleep(0.01)


async def in_transaction(
    conn: AsyncConnection, work: Callable[[AsyncConnection], Awaitable[object]]
) -> None:
    await work(conn)
    await conn.commit()


async def booked(engine: AsyncEngine) -> dict[str, Decimal]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("select symbol, sum(quantity) from book_fills group by 1"))
        return dict(rows.all())


async def test_a_run_status_change_racing_a_booking_does_not_deadlock(engine: AsyncEngine) -> None:
    run_id = await setup(engine)
    async with engine.connect() as first, engine.connect() as stream:
        # The run's own transaction touches `runs` first, then books a fill ...
        await ledger.set_run_status(first, run_id, "executing")
        pid = await stream.scalar(text("select pg_backend_pid()"))
        # ... while the stream books another fill of the same book.
        racing = asyncio.create_task(
            in_transaction(
                stream, lambda c: ledger.book_execution(c, fill("t1", "TLT", "10", "10"))
            )
        )
        await blocked_or_done(engine, pid, racing)
        await ledger.book_execution(first, fill("s1", "SPY", "10", "10"))
        await first.commit()
        await racing
    assert await booked(engine) == {"SPY": D(10), "TLT": D(10)}
    async with engine.connect() as conn:
        assert await ledger_problems(conn) == []


async def test_a_deadlock_victim_is_run_again_by_transact(engine: AsyncEngine) -> None:
    await setup(engine)
    locked = {"a": asyncio.Event(), "unallocated": asyncio.Event()}
    attempts: list[str] = []

    def crossing(first: str, second: str) -> Callable[[AsyncConnection], Awaitable[str]]:
        async def work(conn: AsyncConnection) -> str:
            attempts.append(first)
            touch = text("update strategies set updated_at = now() where id = :i")
            await conn.execute(touch, {"i": first})
            locked[first].set()
            await locked[second].wait()  # both hold one row and want the other's
            await conn.execute(touch, {"i": second})
            return first

        return work

    done = await asyncio.gather(
        transact(engine, crossing("a", "unallocated")),
        transact(engine, crossing("unallocated", "a")),
    )
    assert done == ["a", "unallocated"]
    assert len(attempts) == 3  # Postgres rolled one back; it ran again and went through


async def race(
    engine: AsyncEngine,
    first: Callable[[AsyncConnection], Awaitable[object]],
    second: Callable[[AsyncConnection], Awaitable[object]],
) -> None:
    """`first` books and holds its transaction open while `second` books the same order."""
    async with engine.connect() as one, engine.connect() as two:
        await first(one)
        pid = await two.scalar(text("select pg_backend_pid()"))
        racing = asyncio.create_task(in_transaction(two, second))
        await blocked_or_done(engine, pid, racing)
        await one.commit()
        await racing


async def test_the_stream_and_rest_booking_one_order_at_once_book_it_once(
    engine: AsyncEngine,
) -> None:
    await setup(engine)
    rest = OrderProgress(coid("SPY"), "SPY", "buy", D(10), D(100), AT, "filled")
    await race(
        engine,
        lambda c: ledger.book_execution(c, fill("s1", "SPY", "10", "10")),
        lambda c: ledger.book_order_progress(c, rest),
    )
    assert await booked(engine) == {"SPY": D(10)}
    async with engine.connect() as conn:
        assert await ledger_problems(conn) == []


async def test_two_executions_of_one_order_at_once_are_both_booked_once(
    engine: AsyncEngine,
) -> None:
    await setup(engine)
    # The second execution's report arrives first: it books the first one's shares too.
    await race(
        engine,
        lambda c: ledger.book_execution(c, fill("s2", "SPY", "6", "10")),
        lambda c: ledger.book_execution(c, fill("s1", "SPY", "4", "4")),
    )
    await race(
        engine,
        lambda c: ledger.book_execution(c, fill("s1", "SPY", "4", "4")),
        lambda c: ledger.book_execution(c, fill("s2", "SPY", "6", "10")),
    )
    assert await booked(engine) == {"SPY": D(10)}
    async with engine.connect() as conn:
        assert await ledger_problems(conn) == []
        filled = await conn.scalar(text("select sum(filled_quantity) from broker_orders"))
        assert filled == D(10)


async def test_a_fill_racing_its_order_record_is_booked_not_left_parked(
    engine: AsyncEngine,
) -> None:
    async with engine.begin() as conn:
        await ledger.deposit(conn, D(100_000))
        await ledger.sync_strategies(conn, [strategy("a", "5000")], D(100_000))
        run = await ledger.start_run(conn, DAY, "daily")
        intent = Intent("a", "SPY", "buy", D(10), D(100), "rebalance")
        await ledger.record_plan(conn, run.id, [intent], "inputs")
    record = BrokerOrderRecord(
        coid("SPY"), run.id, "SPY", "buy", 0, "limit", D(10), "pending_new", fractionable=True
    )
    # The order's row is written but not committed when the stream reports its fill.
    await race(
        engine,
        lambda c: ledger.record_broker_order(c, record),
        lambda c: ledger.book_execution(c, fill("s1", "SPY", "10", "10")),
    )
    assert await booked(engine) == {"SPY": D(10)}
    async with engine.connect() as conn:
        assert await conn.scalar(text("select count(*) from parked_fills")) == 0
