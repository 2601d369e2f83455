"""Account activities (fees, dividends, splits) booked to the books that caused them."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import ledger_problems, reconcile
from alchemiser.settings import UNALLOCATED_BOOK
from tests.books.harness import Broker, execute_run, strategy

D = Decimal
NEW_YORK = ZoneInfo("America/New_York")
TODAY = datetime.now(NEW_YORK).date()  # the harness's fills happen now
TOMORROW = TODAY + timedelta(days=1)


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        yield connection


async def books_holding(conn: AsyncConnection, **quantities: str) -> Broker:
    """Each named book funded with 5000 and holding that many SPY (bought at 100 today)."""
    await ledger.deposit(conn, D(100_000))
    await ledger.sync_strategies(conn, [strategy(b, "5000") for b in quantities], D(100_000))
    broker = Broker(D(100_000))
    run = await ledger.start_run(conn, TODAY - timedelta(days=30), "daily")
    buys = [Intent(b, "SPY", "buy", D(q), D(100), "rebalance") for b, q in quantities.items()]
    await execute_run(conn, run.id, buys, broker, fractionable={"SPY"})
    return broker


async def cash(conn: AsyncConnection) -> dict[str, Decimal]:
    return dict((await conn.execute(text("select id, cash from strategies"))).all())


def activity(kind: str, **fields: str) -> dict[str, Any]:
    return {"id": f"20261102200000000::{kind}-{fields}", "activity_type": kind, **fields}


async def test_fees_go_to_the_books_that_sold_that_day_by_sell_value(
    conn: AsyncConnection,
) -> None:
    broker = await books_holding(conn, a="30", b="20")
    run = await ledger.start_run(conn, TODAY, "daily")
    sells = [
        Intent("a", "SPY", "sell", D(20), D(100), "rebalance"),
        Intent("b", "SPY", "sell", D(10), D(100), "rebalance"),
    ]
    await execute_run(conn, run.id, sells, broker, fractionable={"SPY"})
    before = await cash(conn)
    fee = activity("FEE", date=TODAY.isoformat(), net_amount="-0.05", symbol="SPY", qty="30")
    fee |= {"description": "REG/TAF fee", "status": "executed"}
    assert await ledger.book_activities(conn, [fee], fractionable={"SPY"}) == [fee["id"]]
    after = await cash(conn)
    # 2000 and 1000 of sells: 0.0333 and 0.0166; the leftover cent goes to b's larger remainder.
    assert (after["a"] - before["a"], after["b"] - before["b"]) == (D("-0.03"), D("-0.02"))
    # Booked once, keyed by its id.
    assert await ledger.book_activities(conn, [fee], fractionable={"SPY"}) == []
    assert await cash(conn) == after
    broker.cash -= D("0.05")
    result = await reconcile(conn, broker.positions, broker.cash, D("0.01"))
    assert result.differences == ()
    assert await ledger_problems(conn) == []


async def test_dividends_follow_each_books_holding_at_the_previous_close(
    conn: AsyncConnection,
) -> None:
    broker = await books_holding(conn, a="10", b="5")
    before = await cash(conn)
    div = activity("DIV", date=TOMORROW.isoformat(), net_amount="5.00", symbol="SPY", qty="15")
    div |= {"per_share_amount": "0.333333", "description": "Cash DIV", "status": "executed"}
    await ledger.book_activities(conn, [div], fractionable={"SPY"})
    after = await cash(conn)
    # 3.333 and 1.666: the leftover cent goes to b's larger remainder; the sum is the broker's.
    assert (after["a"] - before["a"], after["b"] - before["b"]) == (D("3.33"), D("1.67"))
    broker.cash += D(5)
    assert (await reconcile(conn, broker.positions, broker.cash, D(0))).differences == ()
    assert await ledger_problems(conn) == []
    # The broker paid on 18 shares: the books held 15, so 3 shares' worth is unallocated.
    more = activity("DIV", date=TOMORROW.isoformat(), net_amount="1.80", symbol="SPY", qty="18")
    more |= {"per_share_amount": "0.1", "description": "Cash DIV", "status": "executed"}
    await ledger.book_activities(conn, [more], fractionable={"SPY"})
    final = await cash(conn)
    assert final[UNALLOCATED_BOOK] - after[UNALLOCATED_BOOK] == D("0.30")
    assert (final["a"] - after["a"], final["b"] - after["b"]) == (D("1.00"), D("0.50"))
    problems = await ledger_problems(conn)
    assert any(p.startswith("activity differs from the books") for p in problems), problems


async def test_a_dividend_is_not_paid_on_shares_bought_after_the_record_close(
    conn: AsyncConnection,
) -> None:
    await books_holding(conn, a="10", b="5")
    before = await cash(conn)
    div = activity("DIV", date=TODAY.isoformat(), net_amount="1.00", symbol="SPY", qty="0")
    div |= {"per_share_amount": "0.1", "description": "Cash DIV", "status": "executed"}
    await ledger.book_activities(conn, [div], fractionable={"SPY"})
    after = await cash(conn)
    # The books bought today, after the close before the ex-date: none of it is theirs.
    assert (after["a"], after["b"]) == (before["a"], before["b"])
    assert after[UNALLOCATED_BOOK] - before[UNALLOCATED_BOOK] == D("1.00")


async def test_a_split_scales_every_books_lots_and_keeps_the_cost(conn: AsyncConnection) -> None:
    broker = await books_holding(conn, a="10", b="5")
    split = activity("SPLIT", date=TOMORROW.isoformat(), symbol="SPY", qty="15")
    split |= {
        "per_share_amount": "2",
        "net_amount": "0",
        "description": "2:1",
        "status": "executed",
    }
    await ledger.book_activities(conn, [split], fractionable={"SPY"})
    rows = await conn.execute(
        text("select strategy_id, quantity, cost_basis from book_holdings order by 1")
    )
    assert [tuple(r) for r in rows] == [("a", D(20), D(1000)), ("b", D(10), D(500))]
    lots = await conn.execute(text("select distinct remaining / quantity, cost_price from lots"))
    assert [tuple(r) for r in lots] == [(D(1), D(50))]
    broker.positions["SPY"] = D(30)
    assert (await reconcile(conn, broker.positions, broker.cash, D(0))).differences == ()
    assert await ledger_problems(conn) == []


async def test_a_reverse_split_keeps_whole_share_books_whole(conn: AsyncConnection) -> None:
    await books_holding(conn, a="10", b="5")
    # 1-for-4: a's 2.5 and b's 1.25 new shares of a whole-share asset.
    split = activity("SPLIT", date=TOMORROW.isoformat(), symbol="SPY", qty="-11.25")
    split |= {"per_share_amount": "0.25", "net_amount": "0", "description": "1:4"}
    await ledger.book_activities(conn, [split], fractionable=set())
    held = dict((await conn.execute(text("select strategy_id, quantity from book_holdings"))).all())
    # Each book keeps its whole shares; the fractions (0.5 + 0.25) go to `unallocated`,
    # at their cost, for the broker's cash in lieu to settle.
    assert held == {"a": D(2), "b": D(1), UNALLOCATED_BOOK: D("0.75")}
    costs = dict(
        (await conn.execute(text("select strategy_id, cost_basis from book_holdings"))).all()
    )
    assert sum(costs.values()) == D(1500)
    assert await ledger_problems(conn) == []


def test_activity_rows_are_checked_against_the_contract() -> None:
    with pytest.raises(ledger.LedgerError, match="net_amount"):
        ledger.parse_activity(activity("FEE", date="2026-11-02", symbol="SPY", qty="1"))
    with pytest.raises(ledger.LedgerError, match="exponent"):
        ledger.parse_activity(
            activity("DIV", date="2026-11-02", net_amount="1E+1", symbol="SPY", qty="1")
        )


async def test_booked_activities_are_kept_for_psql(conn: AsyncConnection) -> None:
    await books_holding(conn, a="10")
    div = activity("DIV", date=TOMORROW.isoformat(), net_amount="1.00", symbol="SPY", qty="10")
    await ledger.book_activities(conn, [div], fractionable={"SPY"})
    row = (
        await conn.execute(text("select activity_type, symbol, net_amount from account_activities"))
    ).one()
    assert tuple(row) == ("DIV", "SPY", D("1.00"))
    assert date.fromisoformat(div["date"]) == TOMORROW
