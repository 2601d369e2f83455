"""A crash is a crash: a child killed with SIGKILL mid-transaction leaves the last commit."""

from __future__ import annotations

import asyncio
import signal
import sys
from datetime import date
from decimal import Decimal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import ledger_problems
from tests.books.crash_child import AT, COID
from tests.books.harness import strategy
from tests.conftest import REPO_ROOT

D = Decimal


async def held(engine: AsyncEngine) -> dict[str, Decimal]:
    async with engine.connect() as conn:
        rows = await conn.execute(text("select strategy_id, quantity from book_holdings"))
        return {b: q for b, q in rows if q}


async def test_a_process_killed_mid_transaction_leaves_the_last_commit(
    engine: AsyncEngine, db_url: str
) -> None:
    async with engine.begin() as conn:
        await ledger.deposit(conn, D(10_000))
        await ledger.sync_strategies(conn, [strategy("a", "5000")], D(10_000))
        run = await ledger.start_run(conn, date(2026, 11, 2), "daily")
        await ledger.record_plan(conn, run.id, [Intent("a", "SPY", "buy", D(12), D(100), "x")], "h")
        order = ledger.BrokerOrderRecord(
            COID, run.id, "SPY", "buy", 0, "limit", D(12), "new", fractionable=True
        )
        await ledger.record_broker_order(conn, order)
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.books.crash_child",
        db_url,
        cwd=REPO_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    assert await child.stdout.readline() == b"committed\n"
    assert await child.stdout.readline() == b"open\n"
    child.send_signal(signal.SIGKILL)
    assert await child.wait() == -signal.SIGKILL
    # The next process finds the first fill booked and the second not, and the ledger whole.
    assert await held(engine) == {"a": D(4)}
    async with engine.begin() as conn:
        assert await ledger_problems(conn) == []
        filled = await conn.scalar(text("select filled_quantity from broker_orders"))
        assert filled == D(4)
        # The REST catch-up books what the killed process had not committed, once.
        progress = ledger.OrderProgress(COID, "SPY", "buy", D(12), D(100), AT, "filled")
        assert sum(f.quantity for f in await ledger.book_order_progress(conn, progress)) == 8
        assert await ledger.book_order_progress(conn, progress) == []
    assert await held(engine) == {"a": D(12)}
