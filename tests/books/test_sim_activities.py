"""End to end: orders at the simulator through alpaca-py, fills booked by order progress,
fees, dividends and splits read from `GET /v2/account/activities`; the books match to the cent."""

from __future__ import annotations

import asyncio
from datetime import date, datetime
from decimal import Decimal

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.models import Order, TradeAccount
from alpaca.trading.requests import MarketOrderRequest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.netting import NetOrder
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import ledger_problems, reconcile
from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.books.harness import strategy
from tests.sim.conftest import BASE_NOW, sim, trading, wait_until

__all__ = ["sim", "trading"]  # the simulator's session fixtures, used here too

D = Decimal
AFTER_CLOSE = datetime(2026, 11, 18, 16, 0, 1, tzinfo=NEW_YORK)
EX_DATE = date(2026, 11, 19)
NEXT_OPEN = datetime(2026, 11, 19, 9, 30, 1, tzinfo=NEW_YORK)


def send(trading: TradingClient, coid: str, order: NetOrder) -> Order:
    request = MarketOrderRequest(
        symbol=order.symbol,
        qty=float(order.quantity),
        side=OrderSide(order.side),
        time_in_force=TimeInForce.DAY,
        client_order_id=coid,
    )
    sent = trading.submit_order(request)
    assert isinstance(sent, Order)
    wait_until(lambda: trading.get_order_by_id(sent.id).status == OrderStatus.FILLED)
    done = trading.get_order_by_id(sent.id)
    assert isinstance(done, Order)
    return done


async def run_day(engine: AsyncEngine, trading: TradingClient, kind: str, *intents: Intent) -> None:
    """Plan, record each order before it is sent, send it, book its progress read over REST."""
    async with engine.begin() as conn:
        run = await ledger.start_run(conn, BASE_NOW.date(), kind)
        await ledger.record_plan(conn, run.id, intents, kind)
        work = await ledger.net_run(conn, run.id, fractionable={"SPY", "XOM"})
    for order in work.orders:
        async with engine.begin() as conn:
            step, coid = await ledger.next_order(conn, run.id, order.symbol, order.side)
        record = ledger.BrokerOrderRecord(
            coid,
            run.id,
            order.symbol,
            order.side,
            step,
            "market",
            order.quantity,
            "pending_new",
            fractionable=True,
        )
        async with engine.begin() as conn:
            await ledger.record_broker_order(conn, record)
        done = await asyncio.to_thread(send, trading, coid, order)
        progress = ledger.OrderProgress(
            coid,
            order.symbol,
            order.side,
            D(str(done.filled_qty)),
            D(str(done.filled_avg_price)),
            done.filled_at or BASE_NOW,
            str(done.status.value),
            str(done.id),
        )
        async with engine.begin() as conn:
            await ledger.book_order_progress(conn, progress)


async def test_fees_dividends_and_splits_from_the_simulator_keep_the_books_on_the_cent(
    engine: AsyncEngine, sim: SimThread, trading: TradingClient
) -> None:
    sim.reset()
    sim.set_clock(now=BASE_NOW, speed=1.0, virtual=False)
    sim.set_price("SPY", D("500.00"), spread_bps=2)
    account = trading.get_account()
    assert isinstance(account, TradeAccount)
    async with engine.begin() as conn:
        await ledger.open_account(conn, D(str(account.cash)), {})
        await ledger.sync_strategies(
            conn, [strategy("a", "20000"), strategy("b", "10000")], D(str(account.cash))
        )
    buy = [Intent(b, "SPY", "buy", D(q), D(500), "rebalance") for b, q in (("a", 10), ("b", 6))]
    buy += [Intent(b, "XOM", "buy", D(q), D(100), "rebalance") for b, q in (("a", 3), ("b", 2))]
    await run_day(engine, trading, "daily", *buy)
    sell = [Intent(b, "SPY", "sell", D(q), D(500), "rebalance") for b, q in (("a", 4), ("b", 2))]
    await run_day(engine, trading, "trade-now", *sell)
    sim.set_clock(now=AFTER_CLOSE)  # the day's regulatory fee posts at the close
    sim.corporate_action("SPY", EX_DATE, dividend=0.51)
    sim.corporate_action("XOM", EX_DATE, split_ratio=0.1)  # 1-for-10 reverse
    sim.set_clock(now=NEXT_OPEN)  # the dividend posts on the ex-date

    rows = await asyncio.to_thread(ledger.fetch_activities, trading)
    assert sorted(r["activity_type"] for r in rows) == ["DIV", "FEE", "SPLIT"]
    async with engine.begin() as conn:
        # XOM is booked as a whole-share asset: each book's 0.3 and 0.2 go to `unallocated`.
        assert len(await ledger.book_activities(conn, rows, fractionable={"SPY"})) == 3
        assert await ledger.book_activities(conn, rows, fractionable={"SPY"}) == []
    account = trading.get_account()
    assert isinstance(account, TradeAccount)
    positions = {p.symbol: D(str(p.qty)) for p in trading.get_all_positions()}  # type: ignore[union-attr]
    async with engine.begin() as conn:
        result = await reconcile(conn, positions, D(str(account.cash)), D(0))
        assert result.differences == ()
        assert await ledger_problems(conn) == []
        held = await conn.execute(
            text("select strategy_id, quantity from book_holdings where symbol = 'XOM'")
        )
        assert {b: q for b, q in held if q} == {"unallocated": D("0.5")}
