"""Orders: natural-key client order ids, forward-only status, adoption after a crash."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.fills import ExecutionReport, OrderProgress
from alchemiser.books.order_ids import OrderKey, client_order_id, parse_client_order_id
from alchemiser.books.orders import BrokerOrderRecord
from alchemiser.books.planner import Intent
from tests.books.harness import strategy

D = Decimal
DAY = date(2026, 11, 2)
AT = datetime(2026, 11, 2, 20, 31, tzinfo=UTC)


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        yield connection


async def planned(conn: AsyncConnection, *intents: Intent, kind: str = "daily") -> int:
    await ledger.deposit(conn, D(100_000))
    await ledger.sync_strategies(conn, [strategy("a", "5000"), strategy("b", "5000")], D(100_000))
    run = await ledger.start_run(conn, DAY, kind)
    await ledger.record_plan(conn, run.id, intents, "inputs")
    return run.id


def test_client_order_ids_come_from_the_runs_natural_key() -> None:
    coid = client_order_id(DAY, "trade-now", "BRK.B", "sell", 3)
    assert coid == "alch-20261102-trade-now-BRK.B-sell-3"
    assert parse_client_order_id(coid) == OrderKey(DAY, "trade-now", "BRK.B", "sell", 3)
    assert parse_client_order_id("web-3f2a") is None
    assert parse_client_order_id("alch-garbage") is None
    longest = client_order_id(DAY, "k" * 32, "S" * 32, "sell", 10**9)
    assert len(longest) <= 128
    with pytest.raises(ValueError, match="longer than 128"):
        client_order_id(DAY, "k" * 120, "SPY", "buy")


async def test_the_walks_next_step_has_the_next_id(conn: AsyncConnection) -> None:
    run_id = await planned(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    step, coid = await ledger.next_order(conn, run_id, "SPY", "buy")
    assert (step, coid) == (0, "alch-20261102-daily-SPY-buy-0")
    await ledger.record_broker_order(
        conn,
        BrokerOrderRecord(
            coid, run_id, "SPY", "buy", step, "limit", D(10), "pending_new", fractionable=True
        ),
    )
    assert await ledger.next_order(conn, run_id, "SPY", "buy") == (
        1,
        "alch-20261102-daily-SPY-buy-1",
    )
    assert (await ledger.next_order(conn, run_id, "SPY", "sell"))[0] == 0


async def test_order_status_only_moves_forward(conn: AsyncConnection) -> None:
    run_id = await planned(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    _, coid = await ledger.next_order(conn, run_id, "SPY", "buy")
    order = BrokerOrderRecord(
        coid, run_id, "SPY", "buy", 0, "limit", D(10), "pending_new", fractionable=True
    )
    await ledger.record_broker_order(conn, order)
    filled = OrderProgress(coid, "SPY", "buy", D(10), D(100), AT, "filled", "A-1")
    await ledger.book_order_progress(conn, filled)
    stale = OrderProgress(coid, "SPY", "buy", D(6), D(100), AT, "partially_filled")
    await ledger.book_order_progress(conn, stale)
    await ledger.record_broker_order(conn, order)  # a late echo of the first record
    (found,) = await ledger.find_broker_orders(conn, run_id)
    assert (found.status, found.alpaca_order_id) == ("filled", "A-1")


async def test_a_reject_reason_and_the_replaced_order_are_kept(conn: AsyncConnection) -> None:
    run_id = await planned(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    first = BrokerOrderRecord(
        "alch-20261102-daily-SPY-buy-0",
        run_id,
        "SPY",
        "buy",
        0,
        "limit",
        D(10),
        "new",
        fractionable=True,
    )
    await ledger.record_broker_order(conn, first)
    second = BrokerOrderRecord(
        "alch-20261102-daily-SPY-buy-1",
        run_id,
        "SPY",
        "buy",
        1,
        "limit",
        D(10),
        "pending_new",
        fractionable=True,
        replaces=first.client_order_id,
    )
    await ledger.record_broker_order(conn, second)
    rejected = BrokerOrderRecord(
        **{**second.__dict__, "status": "rejected", "reject_reason": "insufficient buying power"}
    )
    await ledger.record_broker_order(conn, rejected)
    row = (
        await conn.execute(
            text("select status, reject_reason, replaces from broker_orders where step = 1")
        )
    ).one()
    assert tuple(row) == ("rejected", "insufficient buying power", first.client_order_id)


async def test_a_fill_is_checked_against_its_order(conn: AsyncConnection) -> None:
    run_id = await planned(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    _, coid = await ledger.next_order(conn, run_id, "SPY", "buy")
    await ledger.record_broker_order(
        conn,
        BrokerOrderRecord(coid, run_id, "SPY", "buy", 0, "limit", D(10), "new", fractionable=True),
    )
    wrong = [
        ExecutionReport("x1", "TLT", "buy", D(1), D(100), AT, coid, D(1)),
        ExecutionReport("x2", "SPY", "sell", D(1), D(100), AT, coid, D(1)),
        ExecutionReport("x3", "SPY", "buy", D("0.0000000001"), D(100), AT, coid, D("0.0000000001")),
        ExecutionReport("x4", "SPY", "buy", D(1), D(0), AT, coid, D(1)),
    ]
    for report in wrong:
        with pytest.raises(ledger.LedgerError, match=f"fill {report.execution_id} of order {coid}"):
            await ledger.book_execution(conn, report)


async def test_an_order_found_at_the_broker_after_a_crash_is_adopted(conn: AsyncConnection) -> None:
    run_id = await planned(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    coid = client_order_id(DAY, "daily", "SPY", "buy", 0)
    # Sent, then the process died before recording it; its fill arrived and was parked.
    await ledger.book_execution(
        conn, ExecutionReport("e1", "SPY", "buy", D(4), D(100), AT, coid, D(4))
    )
    found = BrokerOrderRecord(
        coid,
        None,
        "SPY",
        "buy",
        0,
        "limit",
        D(10),
        "partially_filled",
        alpaca_order_id="A-9",
        fractionable=True,
    )
    assert await ledger.adopt_order(conn, found) is not None
    (adopted,) = await ledger.find_broker_orders(conn, run_id)
    assert (adopted.run_id, adopted.step, adopted.alpaca_order_id) == (run_id, 0, "A-9")
    held = await conn.scalar(text("select quantity from book_holdings where strategy_id = 'a'"))
    assert held == D(4)
    # Another day's id is not attached to this run; a foreign id is not adopted at all.
    other = BrokerOrderRecord(
        client_order_id(date(2026, 11, 3), "daily", "SPY", "buy"),
        None,
        "SPY",
        "buy",
        0,
        "limit",
        D(1),
        "new",
        fractionable=True,
    )
    assert await ledger.adopt_order(conn, other) is None
    manual = BrokerOrderRecord(
        "web-1", None, "SPY", "buy", 0, "limit", D(1), "new", fractionable=True
    )
    assert await ledger.adopt_order(conn, manual) is None


async def test_a_closed_intent_is_not_brought_back_by_a_resume(conn: AsyncConnection) -> None:
    run_id = await planned(
        conn,
        Intent("a", "SPY", "buy", D(10), D(100), "rebalance"),
        Intent("a", "TLT", "buy", D(5), D(50), "rebalance"),
    )
    await ledger.close_intents(conn, run_id, "SPY", "buy", "expired")
    work = await ledger.remaining_work(conn, run_id, fractionable={"SPY", "TLT"})
    assert [(o.symbol, o.side) for o in work.buys] == [("TLT", "buy")]
    reason = await conn.scalar(text("select closed_reason from intents where symbol = 'SPY'"))
    assert reason == "expired"


async def test_remaining_work_is_crosses_then_sells_then_buys_capped_to_cash(
    conn: AsyncConnection,
) -> None:
    run_id = await planned(
        conn,
        Intent("a", "SPY", "buy", D(100), D(100), "rebalance"),  # 10,000: more than a's 5,000
    )
    work = await ledger.remaining_work(conn, run_id, fractionable={"SPY"})
    assert (work.crosses, work.sells) == ((), ())
    (buy,) = work.buys
    assert buy.quantity * buy.reference_price <= D(5000)


async def test_many_orders_are_rejected_in_one_call_final_ones_kept(conn: AsyncConnection) -> None:
    run_id = await planned(conn, Intent("a", "SPY", "buy", D(10), D(100), "rebalance"))
    ids = [f"alch-20261102-daily-SPY-buy-{step}" for step in range(3)]
    for step, (coid, status) in enumerate(zip(ids, ["new", "pending_new", "filled"], strict=True)):
        await ledger.record_broker_order(
            conn,
            BrokerOrderRecord(
                coid, run_id, "SPY", "buy", step, "limit", D(10), status, fractionable=True
            ),
        )
    refusals = [(ids[0], "wash trade"), (ids[1], "not sent"), (ids[2], "late"), (ids[0], "again")]
    await ledger.reject_orders(conn, refusals)
    rows = await conn.execute(text("select status, reject_reason from broker_orders order by step"))
    assert [tuple(r) for r in rows] == [
        ("rejected", "wash trade"),
        ("rejected", "not sent"),
        ("filled", None),
    ]
