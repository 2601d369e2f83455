"""Property-based: a batch of reports books exactly what booking them one by one books.

Random executions of a few orders (buys split among books, fractional and whole
shares, a sell closing lots, an over-fill) reach the ledger as stream executions,
REST progress and status reports, some twice, in any order, in random batches.
Booked one batch at a time or one report at a time (fill reports of a batch
before its status reports, as the batch writes them), the ledger ends the same.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.fill_batch import BookedFill, Report
from alchemiser.books.fills import (
    ExecutionReport,
    OrderProgress,
    execution_report,
    progress_report,
)
from alchemiser.books.kinds import ExecutionKind
from alchemiser.books.money import add, mul
from alchemiser.books.orders import BrokerOrderRecord
from alchemiser.books.planner import Intent, Side
from alchemiser.books.postings import LedgerError, Posting, insert_execution, post_fills
from tests.books.harness import strategy

D = Decimal
AT = datetime(2026, 11, 3, 20, 31, tzinfo=UTC)
# (symbol, side, quantity, fractionable, step): the orders of the second run.
ORDERS: list[tuple[str, Side, Decimal, bool, int]] = [
    ("SPY", "buy", D(10), True, 0),
    ("SPY", "buy", D(10), True, 1),
    ("UVXY", "buy", D(3), False, 0),
    ("TLT", "sell", D(6), True, 0),
]
PIECES = [D(1), D(2), D("0.5"), D("1.25"), D(3)]
STATUSES = ["partially_filled", "filled", "canceled", "replaced", "pending_cancel"]


def coid(symbol: str, side: str, step: int, day: str = "20261103") -> str:
    return f"alch-{day}-daily-{symbol}-{side}-{step}"


async def books_and_run(conn: AsyncConnection) -> int:
    """Books a, b, c, with two lots of TLT in a and b; the second run's plan and orders."""
    await ledger.deposit(conn, D(100_000))
    books = [strategy(b, "20000") for b in "abc"]
    await ledger.sync_strategies(conn, books, D(100_000))
    first = await ledger.start_run(conn, date(2026, 11, 2), "daily")
    held = [Intent(b, "TLT", "buy", D(q), D(90), "test") for b, q in (("a", 4), ("b", 3))]
    await ledger.record_plan(conn, first.id, held, "x")
    tlt = BrokerOrderRecord(
        coid("TLT", "buy", 0, "20261102"),
        first.id,
        "TLT",
        "buy",
        0,
        "limit",
        D(7),
        "new",
        fractionable=True,
    )
    await ledger.record_broker_order(conn, tlt)
    for n, price in enumerate((D(90), D(92))):  # two lots in each book
        cumulative = D("3.5") * (n + 1)
        fill = ExecutionReport(
            f"tlt-{n}", "TLT", "buy", D("3.5"), price, AT - timedelta(days=1, minutes=-n),
            tlt.client_order_id, cumulative, D(91) if n else D(90),
        )  # fmt: skip
        await ledger.book_execution(conn, fill)
    run = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    plan = [
        Intent("a", "SPY", "buy", D("4.5"), D(100), "test"),
        Intent("b", "SPY", "buy", D(7), D(100), "test"),
        Intent("c", "SPY", "buy", D("3.25"), D(100), "test"),
        Intent("a", "UVXY", "buy", D(1), D(20), "test"),
        Intent("c", "UVXY", "buy", D(2), D(20), "test"),
        Intent("a", "TLT", "sell", D(4), D(90), "test"),
        Intent("b", "TLT", "sell", D(2), D(90), "test"),
    ]
    await ledger.record_plan(conn, run.id, plan, "x")
    for symbol, side, quantity, fractionable, step in ORDERS:
        await ledger.record_broker_order(
            conn,
            BrokerOrderRecord(
                coid(symbol, side, step),
                run.id,
                symbol,
                side,
                step,
                "limit",
                quantity,
                "new",
                fractionable=fractionable,
            ),
        )
    return run.id


@st.composite
def reports_st(draw: st.DrawFn) -> list[Report]:
    """Each order's executions as every source reports them, some twice, shuffled."""
    reports: list[Report] = []
    for n, (symbol, side, quantity, fractionable, step) in enumerate(ORDERS):
        cid = coid(symbol, side, step)
        cumulative, value, average = D(0), D(0), None
        pieces = draw(st.lists(st.sampled_from(PIECES), max_size=4))
        for k, drawn in enumerate(pieces):
            piece = drawn if fractionable else drawn.to_integral_value() or D(1)
            if cumulative + piece > quantity + 1:  # at most one share over the order
                break
            price = D(100) + draw(st.integers(-50, 50)) * D("0.01")
            cumulative += piece
            value = add(value, mul(piece, price))
            average = (value / cumulative).quantize(D("0.0001"))
            status = "filled" if cumulative >= quantity else "partially_filled"
            at = AT + timedelta(seconds=n * 10 + k)
            stream = ExecutionReport(
                f"x-{n}-{k}",
                symbol,
                side,
                piece,
                price,
                at,
                cid,
                cumulative,
                average,
                status,
                f"alpaca-{n}",
            )
            rest = OrderProgress(cid, symbol, side, cumulative, average, at, status)
            reports += draw(
                st.lists(
                    st.sampled_from([execution_report(stream), progress_report(rest)]),
                    min_size=1,
                    max_size=2,
                )
            )
        if draw(st.booleans()):
            status = draw(st.sampled_from(STATUSES))
            echo = OrderProgress(cid, symbol, side, cumulative, average, AT, status, f"alpaca-{n}")
            reports.append(progress_report(echo, fills=False))
    return draw(st.permutations(reports))


@settings(
    deadline=None,
    max_examples=20,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(reports=reports_st(), data=st.data())
async def test_a_batch_books_what_one_report_at_a_time_books(
    engine: AsyncEngine, reports: list[Report], data: st.DataObject
) -> None:
    cuts = sorted(data.draw(st.sets(st.integers(1, max(len(reports) - 1, 1)), max_size=3)))
    batches = [reports[i:j] for i, j in zip([0, *cuts], [*cuts, len(reports)], strict=True)]
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await books_and_run(conn)
            one_by_one = await conn.begin_nested()
            alone = []
            for batch in batches:
                for report in sorted(batch, key=lambda r: not r.fills):
                    alone.append((report, (await ledger.book_reports(conn, [report]))[0]))
            expected = await ledger_state(conn)
            await one_by_one.rollback()
            together = []
            for batch in batches:
                together += zip(batch, await ledger.book_reports(conn, batch), strict=True)
            assert await ledger_state(conn) == expected
            assert by_report(together) == by_report(alone)
        finally:
            await transaction.rollback()


def by_report(booked: Sequence[tuple[Report, list[BookedFill]]]) -> list[str]:
    """Each report's fills, in an order that does not depend on how they were batched."""
    return sorted(repr(pair) for pair in booked)


async def ledger_state(conn: AsyncConnection) -> dict[str, list[tuple[object, ...]]]:
    """Everything a booking writes, without row ids (sequences are not rolled back)."""
    queries = {
        "executions": "select execution_id, kind, broker_order_id, symbol, side, quantity,"
        " price, executed_at from executions",
        "book_fills": "select execution_id, strategy_id, run_id, symbol, side, quantity, price,"
        " filled_at from book_fills",
        "lots": "select l.strategy_id, l.symbol, f.execution_id, l.quantity, l.remaining,"
        " l.cost_price from lots l left join book_fills f on f.id = l.book_fill_id",
        "closures": "select f.execution_id, f.strategy_id, c.quantity, c.cost_price,"
        " c.sale_price, c.realised_pnl, l.cost_price from lot_closures c"
        " join book_fills f on f.id = c.book_fill_id join lots l on l.id = c.lot_id",
        "cash": "select e.strategy_id, e.kind, e.amount, f.execution_id from cash_entries e"
        " left join book_fills f on f.id = e.book_fill_id",
        "books": "select id, cash from strategies",
        "holdings": "select strategy_id, symbol, quantity, cost_basis, realised_pnl"
        " from book_holdings",
        "orders": "select client_order_id, status, alpaca_order_id, filled_quantity,"
        " filled_value from broker_orders",
        "totals": "select run_id, book_fills, traded_value from run_fill_totals",
    }
    state = {}
    for name, query in queries.items():
        rows = await conn.execute(text(query))
        state[name] = sorted((tuple(r) for r in rows), key=repr)
    return state


async def test_a_batchs_second_sale_closes_the_lots_its_first_sale_left(
    engine: AsyncEngine,
) -> None:
    """Book a sells 3 then 1 TLT of its two lots of 2 in one batch: FIFO across the batch."""
    cid = coid("TLT", "sell", 0)
    sales = [
        ExecutionReport("s-0", "TLT", "sell", D(3), D(95), AT, cid, D(3), D(95)),
        ExecutionReport("s-1", "TLT", "sell", D(3), D(97), AT, cid, D(6), D(96)),
    ]
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await books_and_run(conn)
            alone = await conn.begin_nested()
            for sale in sales:
                await ledger.book_execution(conn, sale)
            expected = await ledger_state(conn)
            await alone.rollback()
            await ledger.book_reports(conn, [execution_report(s) for s in sales])
            state = await ledger_state(conn)
        finally:
            await transaction.rollback()
    assert state == expected
    open_lots = sorted((book, remaining) for book, symbol, _, _, remaining, _ in state["lots"])
    assert ("a", D(0)) in open_lots and ("b", D("1.0")) in open_lots


async def test_a_buy_after_a_sale_in_one_batch_never_feeds_that_sale(engine: AsyncEngine) -> None:
    """Book a holds 4 TLT and sells 5, then buys 3, in one call: the oversale is refused
    as when the sale is posted alone (the later buy's lot must not cover it)."""
    fills = [
        Posting("x-sell", None, "a", "TLT", "sell", D(5), D(95), AT),
        Posting("x-buy", None, "a", "TLT", "buy", D(3), D(96), AT + timedelta(seconds=1)),
    ]
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await books_and_run(conn)
            for fill in fills:
                await insert_execution(conn, fill, kind=ExecutionKind.BROKER, side=fill.side)
            for batch in ([fills[0]], fills):
                attempt = await conn.begin_nested()
                with pytest.raises(LedgerError, match=r"would sell 1\.0+ TLT more"):
                    await post_fills(conn, batch)
                await attempt.rollback()
        finally:
            await transaction.rollback()
