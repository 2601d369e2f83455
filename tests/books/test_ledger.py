"""The ledger on a real PostgreSQL: funding, fills, crosses, FIFO lots, cash, runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.capital import BookCapital, capital_transfers
from alchemiser.books.ledger import BrokerOrderRecord, ExecutionReport, LedgerError
from alchemiser.books.netting import Cross, NetOrder, Share, net_intents
from alchemiser.books.planner import Intent, RebalanceOptions, plan_book, plan_liquidation
from alchemiser.books.reconcile import ledger_problems, reconcile
from alchemiser.settings import UNALLOCATED_BOOK, BooksConfig, RiskConfig
from tests.books.harness import (
    Broker,
    Checkpoint,
    Crash,
    crash_at,
    execute_run,
    no_crash,
    send,
    strategy,
)

D = Decimal
DAY = date(2026, 11, 2)
TOLERANCE = D("0.01")


@pytest.fixture
async def conn(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    async with engine.begin() as connection:
        yield connection


async def setup_books(conn: AsyncConnection, deposit: str, **capital: str) -> Broker:
    await ledger.deposit(conn, D(deposit))
    await ledger.sync_strategies(conn, [strategy(i, c) for i, c in capital.items()], D(deposit))
    return Broker(D(deposit))


async def holdings(conn: AsyncConnection) -> dict[tuple[str, str], Decimal]:
    rows = await conn.execute(text("select strategy_id, symbol, quantity from book_holdings"))
    return {(b, s): q for b, s, q in rows if q != 0}


async def cash(conn: AsyncConnection) -> dict[str, Decimal]:
    return dict((await conn.execute(text("select id, cash from strategies"))).all())


async def assert_consistent(conn: AsyncConnection, broker: Broker) -> None:
    assert await ledger_problems(conn) == []
    result = await reconcile(conn, broker.positions, broker.cash, TOLERANCE)
    assert result.ok, result.differences
    assert result.differences == ()


def buy(book: str, qty: str, price: str, symbol: str = "SPY") -> Intent:
    return Intent(book, symbol, "buy", D(qty), D(price), "rebalance")


def sell(book: str, qty: str, price: str, symbol: str = "SPY", reason: str = "rebalance") -> Intent:
    return Intent(book, symbol, "sell", D(qty), D(price), reason)


async def test_funding_moves_cash_from_unallocated(conn: AsyncConnection) -> None:
    await ledger.deposit(conn, D(100_000))
    result = await ledger.sync_strategies(
        conn, [strategy("a", allocation="0.25"), strategy("b", capital="5000")], D(100_000)
    )
    assert result.funded == {"a": D(25_000), "b": D(5000)}
    assert await cash(conn) == {UNALLOCATED_BOOK: D(70_000), "a": D(25_000), "b": D(5000)}
    again = await ledger.sync_strategies(
        conn, [strategy("a", allocation="0.25"), strategy("b", capital="5000")], D(100_000)
    )
    assert again.funded == {}
    assert (await cash(conn))["a"] == D(25_000)
    assert await ledger_problems(conn) == []


async def test_funding_beyond_unallocated_cash_is_refused(conn: AsyncConnection) -> None:
    await ledger.deposit(conn, D(1000))
    with pytest.raises(LedgerError, match="unallocated cash is only 1000"):
        await ledger.sync_strategies(conn, [strategy("a", capital="5000")], D(1000))


async def test_two_books_same_ticker_one_exits_while_the_other_buys_more(
    conn: AsyncConnection,
) -> None:
    broker = await setup_books(conn, "100000", a="10000", b="10000")
    run1 = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run1.id, [buy("a", "10", "100"), buy("b", "10", "100")], broker)
    assert broker.positions == {"SPY": D(20)}

    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    exit_a = sell("a", "10", "110", reason="exit")
    intents = [exit_a, buy("b", "4", "110")]
    netted = net_intents(intents)
    assert [(c.quantity, c.price) for c in netted.crosses] == [(D(4), D(110))]
    assert [(o.side, o.quantity) for o in netted.orders] == [("sell", D(6))]
    await execute_run(conn, run2.id, intents, broker, fills=lambda o: [D(1)])

    assert broker.positions == {"SPY": D(14)}  # only the net 6 went to the broker
    assert await holdings(conn) == {("b", "SPY"): D(14)}
    books_cash = await cash(conn)
    assert books_cash["a"] == D(10_000) - 1000 + 4 * 110 + 6 * 110
    assert books_cash["b"] == D(10_000) - 1000 - 4 * 110
    realised = await conn.scalar(
        text("select realised_pnl from book_holdings where strategy_id='a'")
    )
    assert realised == D(100)
    await assert_consistent(conn, broker)


async def test_partial_fills_are_split_pro_rata_and_replays_change_nothing(
    conn: AsyncConnection,
) -> None:
    broker = await setup_books(conn, "100000", a="10000", b="10000")
    run = await ledger.start_run(conn, DAY, "daily")
    intents = [buy("a", "30", "100"), buy("b", "10", "100")]
    await ledger.record_plan(conn, run.id, intents, "inputs")
    (order,) = net_intents(intents).orders
    reports = await send(conn, run.id, order, broker, [D("0.25")], None)
    assert await holdings(conn) == {("a", "SPY"): D("7.5"), ("b", "SPY"): D("2.5")}

    before = (await holdings(conn), await cash(conn))
    assert await ledger.book_execution(conn, reports[0]) == []
    assert (await holdings(conn), await cash(conn)) == before

    rest = NetOrder("SPY", "buy", D(30), D(100), (Share("a", D("22.5")), Share("b", D("7.5"))))
    await send(conn, run.id, rest, broker, [D(1)], None)
    assert await holdings(conn) == {("a", "SPY"): D(30), ("b", "SPY"): D(10)}
    filled = await conn.scalar(text("select sum(filled_quantity) from broker_orders"))
    assert filled == D(40)
    await assert_consistent(conn, broker)


async def test_fifo_lots_across_three_buys_and_a_partial_sell(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "100000", a="10000")
    for day, price in ((2, "100"), (3, "110"), (4, "120")):
        run = await ledger.start_run(conn, date(2026, 11, day), "daily")
        await execute_run(conn, run.id, [buy("a", "10", price)], broker)
    run = await ledger.start_run(conn, date(2026, 11, 5), "daily")
    await execute_run(conn, run.id, [sell("a", "15", "130")], broker)

    lots = (
        await conn.execute(text("select quantity, remaining, cost_price from lots order by id"))
    ).all()
    assert lots == [(D(10), D(0), D(100)), (D(10), D(5), D(110)), (D(10), D(10), D(120))]
    closures = (
        await conn.execute(text("select quantity, realised_pnl from lot_closures order by id"))
    ).all()
    assert closures == [(D(10), D(300)), (D(5), D(100))]
    row = (
        await conn.execute(text("select quantity, cost_basis, realised_pnl from book_holdings"))
    ).one()
    assert tuple(row) == (D(15), D(550 + 1200), D(400))
    await assert_consistent(conn, broker)


async def test_selling_more_than_a_book_holds_is_refused(conn: AsyncConnection) -> None:
    await setup_books(conn, "2000", a="1000", b="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    cross = Cross("SPY", D(10), D(1), (Share("b", D(1)),), (Share("a", D(1)),))
    with pytest.raises(LedgerError, match="more than it holds"):
        await ledger.book_cross(conn, run.id, cross)


async def test_an_unasked_fill_of_our_order_lands_in_unallocated(conn: AsyncConnection) -> None:
    await setup_books(conn, "1000", a="500")
    coid = "alch-manual-SPY-buy-0"
    order = BrokerOrderRecord(coid, None, "SPY", "buy", 0, "market", D(2), "new", fractionable=True)
    await ledger.record_broker_order(conn, order)
    report = ExecutionReport("x1", "SPY", "buy", D(2), D(10), datetime.now(UTC), coid, D(2))
    booked = await ledger.book_execution(conn, report)
    assert [(b.strategy_id, b.quantity) for b in booked] == [(UNALLOCATED_BOOK, D(2))]
    assert (await cash(conn))[UNALLOCATED_BOOK] == D(480)


async def test_buys_are_capped_to_the_cash_sells_actually_brought(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="1100")
    run1 = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run1.id, [buy("a", "10", "100")], broker)
    # Switch SPY → TLT, but only half the SPY sale fills: cash is 100 + 500.
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    intents = [sell("a", "10", "100", reason="exit"), buy("a", "100", "10", "TLT")]
    await execute_run(
        conn, run2.id, intents, broker, fills=lambda o: [D("0.5")] if o.side == "sell" else [D(1)]
    )
    assert (await cash(conn))["a"] >= 0
    affordable = D(600) * (1 - ledger.DEFAULT_BUY_HEADROOM) / 10
    assert await holdings(conn) == {("a", "SPY"): D(5), ("a", "TLT"): affordable}
    planned = await conn.scalar(
        text("select planned_quantity from intents where symbol = 'TLT' and run_id = :r"),
        {"r": run2.id},
    )
    assert planned == D(100)
    await assert_consistent(conn, broker)


async def test_run_is_one_row_per_day_and_kind(conn: AsyncConnection) -> None:
    first = await ledger.start_run(conn, DAY, "daily", "live", "abc")
    again = await ledger.start_run(conn, DAY, "daily", "live", "abc")
    other = await ledger.start_run(conn, DAY, "trade-now")
    assert (first.resumed, again.resumed, again.id) == (False, True, first.id)
    assert other.id != first.id
    await ledger.set_run_status(
        conn, first.id, "completed", timings={"evaluate": 1.5}, finished=True
    )
    row = (
        await conn.execute(
            text("select status, timings, finished_at from runs where id = :i"), {"i": first.id}
        )
    ).one()
    assert row.status == "completed"
    assert row.timings == {"evaluate": 1.5}
    assert row.finished_at is not None


async def test_signals_and_intents_are_recorded_once(conn: AsyncConnection) -> None:
    await setup_books(conn, "1000", a="500")
    run = await ledger.start_run(conn, DAY, "daily")
    await ledger.record_signal(conn, run.id, "a", allocation={"SPY": 1.0}, trace=[{"if": "x"}])
    await ledger.record_signal(conn, run.id, "a", allocation={"TLT": 1.0})
    intents = [buy("a", "1", "100")]
    await ledger.record_plan(conn, run.id, intents, "inputs")
    await ledger.record_plan(conn, run.id, intents, "inputs")
    assert await ledger.load_intents(conn, run.id) == intents
    allocation = await conn.scalar(text("select allocation from signals"))
    assert allocation == {"SPY": 1.0}


async def test_allocation_change_moves_cash_by_transfer(conn: AsyncConnection) -> None:
    await ledger.deposit(conn, D(100_000))
    await ledger.sync_strategies(conn, [strategy("a", allocation="0.5")], D(100_000))
    result = await ledger.sync_strategies(conn, [strategy("a", allocation="0.3")], D(100_000))
    assert result.allocation_changed == {"a": D("0.3")}
    books = [BookCapital("a", D(50_000), D(50_000), D("0.3"), allocation_changed=True)]
    plan = capital_transfers(books, D(50_000), D(100_000), "allocation_change", D("0.05"))
    assert [(t.source, t.destination, t.amount) for t in plan.transfers] == [
        ("a", UNALLOCATED_BOOK, D(20_000))
    ]
    for t in plan.transfers:
        await ledger.transfer_cash(conn, t.source, t.destination, t.amount)
    for strategy_id in plan.settled:
        await ledger.apply_allocation(conn, strategy_id, result.allocation_changed[strategy_id])
    assert await cash(conn) == {UNALLOCATED_BOOK: D(70_000), "a": D(30_000)}
    later = await ledger.sync_strategies(conn, [strategy("a", allocation="0.3")], D(100_000))
    assert later.allocation_changed == {}
    assert await ledger_problems(conn) == []


def test_capital_outflow_is_limited_to_cash_and_the_rest_is_owed() -> None:
    books = [BookCapital("a", D(50_000), D(5_000), D("0.3"), allocation_changed=True)]
    plan = capital_transfers(books, D(0), D(100_000), "allocation_change", D("0.05"))
    assert [t.amount for t in plan.transfers] == [D(5000)]
    assert plan.withdrawals == {"a": D(15_000)}
    assert plan.settled == []


def test_drift_policy_rebalances_capital_only_past_the_threshold() -> None:
    near = BookCapital("a", D(52_000), D(52_000), D("0.5"))
    far = BookCapital("b", D(40_000), D(0), D("0.3"))
    fixed = BookCapital("c", D(1000), D(1000), D(0), fixed_capital=True)
    plan = capital_transfers([near, far, fixed], D(20_000), D(100_000), "drift", D("0.05"))
    # Only b is past the threshold (0.40 vs 0.30); it has no cash, so it owes it all.
    assert plan.transfers == []
    assert plan.withdrawals == {"b": D(10_000)}
    richer = BookCapital("b", D(40_000), D(25_000), D("0.3"))
    plan = capital_transfers([richer], D(0), D(100_000), "drift", D("0.05"))
    assert [(t.source, t.amount) for t in plan.transfers] == [("b", D(10_000))]
    assert plan.settled == ["b"]
    assert (
        capital_transfers([near], D(0), D(100_000), "allocation_change", D("0.01")).transfers == []
    )


async def test_removed_strategy_is_liquidated_into_unallocated(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="1000", b="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run.id, [buy("a", "5", "100")], broker)
    result = await ledger.sync_strategies(conn, [strategy("b", "1000")], D(10_000))
    assert result.removed == ["a"]
    assert not await ledger.retire_book(conn, "a")  # still holds SPY
    books = await ledger.load_books(conn)
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    await execute_run(conn, run2.id, plan_liquidation(books["a"], {"SPY": D(102)}), broker)
    assert await ledger.retire_book(conn, "a")
    assert (await cash(conn))["a"] == 0
    assert (await cash(conn))[UNALLOCATED_BOOK] == D(8000) + 1000 - 500 + 510
    state = await conn.scalar(text("select state from strategies where id = 'a'"))
    assert state == "removed"
    await assert_consistent(conn, broker)


async def test_open_account_adopts_the_broker_positions(conn: AsyncConnection) -> None:
    await ledger.open_account(conn, D(5000), {"SPY": (D("2.5"), D(400))})
    broker = Broker(D(5000), {"SPY": D("2.5")})
    await assert_consistent(conn, broker)
    pnl = await conn.scalar(text("select pnl from book_value where strategy_id = 'unallocated'"))
    assert pnl == 0


async def test_opening_the_account_twice_changes_nothing(conn: AsyncConnection) -> None:
    assert await ledger.open_account(conn, D(5000), {"SPY": (D("2.5"), D(400))})
    before = (await holdings(conn), await cash(conn))
    # A restart on a ledger that already has its opening balance: a no-op.
    assert not await ledger.open_account(conn, D(5000), {"SPY": (D("2.5"), D(400))})
    assert (await holdings(conn), await cash(conn)) == before
    assert before[1] == {UNALLOCATED_BOOK: D(5000)}
    await assert_consistent(conn, Broker(D(5000), {"SPY": D("2.5")}))


async def test_a_manual_trade_is_reported_never_absorbed(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run.id, [buy("a", "5", "100")], broker)
    before = (await holdings(conn), await cash(conn))
    # Someone buys 3 AAPL in the Alpaca app; the broker also rounded cash by half a cent.
    manual = {**broker.positions, "AAPL": D(3)}
    result = await reconcile(
        conn, manual, broker.cash - 3 * 150 - D("0.005"), TOLERANCE, run_id=run.id
    )
    assert not result.ok
    by_kind = {(d.kind, d.symbol): d for d in result.differences}
    aapl = by_kind[("position", "AAPL")]
    assert (aapl.books, aapl.broker, aapl.difference, aapl.beyond_tolerance) == (
        D(0),
        D(3),
        D(3),
        True,
    )
    assert by_kind[("cash", None)].difference == D("-450.005")
    assert (await holdings(conn), await cash(conn)) == before
    row = (
        await conn.execute(
            text("select ok, differences from reconciliations where run_id = :r"), {"r": run.id}
        )
    ).one()
    assert row.ok is False
    assert {d["symbol"] for d in row.differences} == {"AAPL", None}


async def test_differences_within_tolerance_pass_but_are_recorded(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="1000")
    result = await reconcile(conn, {}, broker.cash + D("0.004"), TOLERANCE)
    assert result.ok
    assert [d.difference for d in result.differences] == [D("0.004")]
    recorded = await conn.scalar(text("select differences from reconciliations"))
    assert recorded[0]["difference"] == "0.004"


async def test_crosses_and_orders_are_idempotent_for_a_resumed_run(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="1000", b="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run.id, [buy("a", "5", "100")], broker)
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    intents = [sell("a", "5", "100"), buy("b", "5", "100")]
    await ledger.record_plan(conn, run2.id, intents, "inputs")
    (cross,) = net_intents(intents).crosses
    assert len(await ledger.book_cross(conn, run2.id, cross)) == 2
    assert await ledger.book_cross(conn, run2.id, cross) == []
    assert await holdings(conn) == {("b", "SPY"): D(5)}
    order = ledger.BrokerOrderRecord(
        "coid-1", run2.id, "TLT", "buy", 0, "limit", D(1), "new", fractionable=True
    )
    first = await ledger.record_broker_order(conn, order)
    again = await ledger.record_broker_order(
        conn,
        ledger.BrokerOrderRecord(**{**order.__dict__, "status": "filled", "alpaca_order_id": "A1"}),
    )
    assert first == again
    (found,) = await ledger.find_broker_orders(conn, run2.id)
    assert (found.client_order_id, found.status, found.alpaca_order_id) == (
        "coid-1",
        "filled",
        "A1",
    )
    await assert_consistent(conn, broker)


async def test_rebalance_capital_follows_a_changed_allocation(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "0")
    await ledger.deposit(conn, D(100_000))
    broker.cash = D(100_000)
    await ledger.sync_strategies(conn, [strategy("a", allocation="0.5")], D(100_000))
    run = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run.id, [buy("a", "400", "100")], broker)  # $40k of SPY
    smaller = [strategy("a", allocation="0.2")]
    await ledger.sync_strategies(conn, smaller, D(100_000))
    plan = await ledger.rebalance_capital(conn, smaller, {"SPY": D(100)}, BooksConfig())
    # Target 20k; a holds 10k cash + 40k SPY: 10k moves now, 20k is owed.
    assert [(t.source, t.amount) for t in plan.transfers] == [("a", D(10_000))]
    assert plan.withdrawals == {"a": D(20_000)}
    assert (await cash(conn))["a"] == 0
    books = await ledger.load_books(conn)
    owed = replace(books["a"], withdrawal=plan.withdrawals["a"])
    intents = plan_book(
        owed,
        targets={"SPY": 1.0},
        prices={"SPY": D(100)},
        fractionable={"SPY"},
        options=RebalanceOptions(),
        rebalance_day=True,
        risk=RiskConfig(cash_buffer=D(0)),
    )
    assert [(i.side, i.quantity) for i in intents] == [("sell", D(200))]
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    await execute_run(conn, run2.id, intents, broker)
    again = await ledger.rebalance_capital(conn, smaller, {"SPY": D(100)}, BooksConfig())
    assert [(t.source, t.amount) for t in again.transfers] == [("a", D(20_000))]
    assert again.settled == ["a"]
    assert (await ledger.sync_strategies(conn, smaller, D(100_000))).allocation_changed == {}
    await assert_consistent(conn, broker)


async def test_buys_leave_headroom_for_fills_above_the_reference_price(
    conn: AsyncConnection,
) -> None:
    broker = await setup_books(conn, "10000", a="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    await ledger.record_plan(conn, run.id, [buy("a", "10", "100")], "inputs")
    (order,) = await ledger.affordable_buy_orders(conn, run.id, fractionable={"SPY"})
    await send(conn, run.id, order, broker, [D(1)], None, price=D("100.05"))
    assert (await cash(conn))["a"] >= 0
    await assert_consistent(conn, broker)
    # Capped at cash × (1 − headroom), not at exactly the cash.
    assert order.quantity == D(1000) * (1 - ledger.DEFAULT_BUY_HEADROOM) / 100


async def test_a_fill_beyond_the_headroom_is_booked_and_reported(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    await ledger.record_plan(conn, run.id, [buy("a", "10", "100")], "inputs")
    (order,) = await ledger.affordable_buy_orders(conn, run.id, fractionable={"SPY"}, headroom=D(0))
    assert order.quantity == D(10)
    # The fill is real: it is booked even though it overdraws the book ...
    await send(conn, run.id, order, broker, [D(1)], None, price=D("100.05"))
    assert await holdings(conn) == {("a", "SPY"): D(10)}
    assert (await cash(conn))["a"] == D("-0.50")
    # ... and the self-check says so loudly; the broker still agrees with Σ books.
    assert await ledger_problems(conn) == ["book cash is negative: ('a',)"]
    result = await reconcile(conn, broker.positions, broker.cash, TOLERANCE)
    assert result.differences == ()


async def test_net_run_gives_the_same_work_after_the_crosses_are_booked(
    conn: AsyncConnection,
) -> None:
    broker = await setup_books(conn, "10000", a="2000", b="440")
    run1 = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run1.id, [buy("a", "10", "100")], broker)
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    await ledger.record_plan(
        conn, run2.id, [sell("a", "10", "110"), buy("b", "4", "110")], "inputs"
    )
    first = await ledger.net_run(conn, run2.id, fractionable={"SPY"})
    (cross,) = first.crosses
    assert (cross.quantity, [(o.side, o.quantity) for o in first.orders]) == (
        D(4),
        [("sell", D(6))],
    )
    await ledger.book_cross(conn, run2.id, cross)
    # b's cash is spent now; the crosses and the sell are still those of the plan.
    again = await ledger.net_run(conn, run2.id, fractionable={"SPY"})
    assert again.crosses == ()
    assert again.orders == first.orders


async def run_with_a_crash(engine: AsyncEngine, checkpoint: Checkpoint) -> tuple:
    """A two-day scenario whose second run crashes at `checkpoint` and is run again."""
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            broker = await setup_books(conn, "100000", a="10000", b="440", c="5000")
            run1 = await ledger.start_run(conn, DAY, "daily")
            await execute_run(conn, run1.id, [buy("a", "10", "100")], broker)
            run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
            intents = [
                sell("a", "10", "110", reason="exit"),
                buy("a", "5", "50", "TLT"),
                buy("b", "4", "110"),
                buy("c", "20", "50", "TLT"),
            ]

            def halves(order: NetOrder) -> list[Decimal]:
                return [D("0.5"), D(1)]

            try:
                await execute_run(conn, run2.id, intents, broker, halves, checkpoint=checkpoint)
            except Crash:
                resumed = await ledger.start_run(conn, date(2026, 11, 3), "daily")
                assert resumed.resumed
                saved = await ledger.load_intents(conn, resumed.id)
                await execute_run(conn, resumed.id, saved, broker, halves)
            await assert_consistent(conn, broker)
            # Lots may be cut differently (one per execution); what is open at each cost may not.
            lots = await conn.execute(
                text(
                    "select strategy_id, symbol, cost_price, sum(remaining) from lots"
                    " group by 1, 2, 3 having sum(remaining) > 0 order by 1, 2, 3"
                )
            )
            return (
                await holdings(conn),
                await cash(conn),
                [tuple(r) for r in lots],
                broker.positions,
                broker.cash,
            )
        finally:
            await transaction.rollback()


@pytest.mark.parametrize(
    "checkpoint",
    [crash_at("crosses"), crash_at("sell"), crash_at("sell", 2), crash_at("buy")],
    ids=["after-crosses", "after-first-sell", "after-sells", "after-first-buy"],
)
async def test_a_restarted_run_ends_where_an_uninterrupted_run_ends(
    engine: AsyncEngine, checkpoint: Checkpoint
) -> None:
    uninterrupted = await run_with_a_crash(engine, no_crash)
    assert uninterrupted[0] == {("a", "TLT"): D(5), ("b", "SPY"): D(4), ("c", "TLT"): D(20)}
    assert uninterrupted[3] == {"SPY": D(4), "TLT": D(25)}  # only the net 6 SPY was sold
    assert await run_with_a_crash(engine, checkpoint) == uninterrupted


async def test_dust_exits_of_a_whole_share_asset_cross_without_overselling(
    conn: AsyncConnection,
) -> None:
    broker = await setup_books(conn, "10000", a="1000", b="1000", c="1000")
    run1 = await ledger.start_run(conn, DAY, "daily")
    # Bought when UVXY still traded in fractions.
    await execute_run(
        conn, run1.id, [buy("a", "0.5", "10", "UVXY"), buy("b", "0.6", "10", "UVXY")], broker
    )
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    intents = [
        sell("a", "0.5", "10", "UVXY", reason="exit"),
        sell("b", "0.6", "10", "UVXY", reason="exit"),
        buy("c", "1", "10", "UVXY"),
    ]
    await execute_run(conn, run2.id, intents, broker, fractionable=frozenset())
    held = await holdings(conn)
    assert held[("c", "UVXY")] == D(1)
    assert held[("a", "UVXY")] + held[("b", "UVXY")] == D("0.1")  # the net sell: no whole share
    await assert_consistent(conn, broker)


async def test_a_resumed_run_that_plans_again_keeps_the_first_plan(conn: AsyncConnection) -> None:
    await setup_books(conn, "10000", a="1000")
    run = await ledger.start_run(conn, DAY, "daily")
    first = [buy("a", "5", "100")]
    assert await ledger.record_plan(conn, run.id, first, "inputs-1") == first
    # The process restarts and plans again from prices that moved: the saved plan stands.
    resumed = await ledger.start_run(conn, DAY, "daily")
    again = [buy("a", "4", "120"), buy("a", "10", "50", "TLT")]
    assert await ledger.record_plan(conn, resumed.id, again, "inputs-2") == first
    assert await ledger.load_intents(conn, run.id) == first
    hashed = await conn.scalar(text("select input_hash from runs where id = :r"), {"r": run.id})
    assert hashed == "inputs-1"
    # An empty plan is a plan too: a resume does not add one.
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    assert await ledger.record_plan(conn, run2.id, [], "inputs-3") == []
    assert await ledger.record_plan(conn, run2.id, again, "inputs-4") == []
    assert await ledger_problems(conn) == []


async def test_a_run_that_completes_after_an_interruption_shows_no_error(
    conn: AsyncConnection,
) -> None:
    run = await ledger.start_run(conn, DAY, "daily")
    await ledger.set_run_status(conn, run.id, "failed", error="interrupted: SIGTERM")
    await ledger.set_run_status(conn, run.id, "completed", finished=True)
    row = (
        await conn.execute(text("select status, error from runs where id = :r"), {"r": run.id})
    ).one()
    assert tuple(row) == ("completed", None)


async def test_crosses_are_saved_when_first_computed(conn: AsyncConnection) -> None:
    broker = await setup_books(conn, "10000", a="2000", b="440")
    run1 = await ledger.start_run(conn, DAY, "daily")
    await execute_run(conn, run1.id, [buy("a", "10", "100")], broker)
    run2 = await ledger.start_run(conn, date(2026, 11, 3), "daily")
    await ledger.record_plan(conn, run2.id, [sell("a", "10", "110"), buy("b", "4", "110")], "in")
    first = await ledger.net_run(conn, run2.id, fractionable={"SPY"})
    assert [c.quantity for c in first.crosses] == [D(4)]
    # A transfer (a fee, a dividend) during the resumed run changes b's cash ...
    await ledger.transfer_cash(conn, "b", UNALLOCATED_BOOK, D(300))
    # ... but not the run's crosses, nor the work derived from them.
    again = await ledger.net_run(conn, run2.id, fractionable={"SPY"})
    assert again == first


async def test_a_strategy_added_back_is_funded_again(conn: AsyncConnection) -> None:
    await ledger.deposit(conn, D(10_000))
    await ledger.sync_strategies(conn, [strategy("a", "1000")], D(10_000))
    assert (await ledger.sync_strategies(conn, [], D(10_000))).removed == ["a"]
    assert await ledger.retire_book(conn, "a")
    assert (await cash(conn))["a"] == 0
    again = await ledger.sync_strategies(conn, [strategy("a", "1500")], D(10_000))
    assert again.funded == {"a": D(1500)}
    assert await cash(conn) == {UNALLOCATED_BOOK: D(8500), "a": D(1500)}
    state = await conn.scalar(text("select state from strategies where id = 'a'"))
    assert state == "active"
    assert await ledger_problems(conn) == []
