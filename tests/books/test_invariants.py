"""Property-based: random targets, prices and partial fills keep every ledger invariant.

Fills reach the ledger in any order, duplicated, as stream executions or REST
progress snapshots mixed; runs crash and resume; regulatory fees and dividends
are posted as account activities. After every day the books sum to the broker
exactly, no book is short, and nothing is booked twice.

Each example runs in one transaction that is rolled back, so examples share a
database without seeing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any
from zoneinfo import ZoneInfo

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.fills import ExecutionReport, OrderProgress
from alchemiser.books.money import floor_to
from alchemiser.books.netting import NetOrder
from alchemiser.books.planner import RebalanceOptions, plan_book
from alchemiser.books.reconcile import ledger_problems, reconcile
from alchemiser.settings import UNALLOCATED_BOOK, RiskConfig
from tests.books.harness import Broker, Crash, Event, crash_at, execute_run, no_crash, strategy

D = Decimal
SYMBOLS = ("GLD", "SPY", "TLT", "UVXY")
FRACTIONABLE = frozenset({"GLD", "SPY", "TLT"})  # UVXY trades in whole shares
BOOKS = ("a", "b", "c")
RISK = RiskConfig(cash_buffer=D("0.01"), min_trade_value=D(1))
# Executions stray from the reference price against us (buys above, sells below),
# by less than the headroom phase 2 leaves: a book's cash must never go negative.
MAX_SLIPPAGE = RISK.slippage_allowance * D("0.8")
CENT = D("0.01")
FILL_FRACTIONS = [D(1), D(1), D("0.5"), D("0.37"), D(0)]
FEE_RATE = D("0.0000278")  # SEC fee per dollar sold (TAF left out: any rate will do)
# The harness's fills happen now: fees are for today, dividends for tomorrow's ex-date.
TODAY = datetime.now(ZoneInfo("America/New_York")).date()
TOMORROW = TODAY + timedelta(days=1)

prices_st = st.lists(
    st.decimals(min_value=D(5), max_value=D(400), places=2), min_size=4, max_size=4
)
targets_st = st.dictionaries(st.sampled_from(SYMBOLS), st.floats(0.05, 1), max_size=3)
step_st = st.tuples(prices_st, st.lists(targets_st, min_size=3, max_size=3))


def normalised(targets: dict[str, float]) -> dict[str, float]:
    total = sum(targets.values())
    return {s: w / total for s, w in targets.items()}


@settings(
    deadline=None,
    max_examples=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    # No shrinking: against a database it takes minutes; a failure prints its example.
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
@given(steps=st.lists(step_st, min_size=1, max_size=4), data=st.data())
async def test_random_runs_keep_every_invariant(
    engine: AsyncEngine, steps: list, data: st.DataObject
) -> None:
    async with engine.connect() as conn:
        transaction = await conn.begin()
        try:
            await run_steps(conn, steps, data)
        finally:
            await transaction.rollback()


async def run_steps(conn: AsyncConnection, steps: list, data: st.DataObject) -> None:
    await ledger.deposit(conn, D(100_000))
    configs = [strategy(b, capital) for b, capital in zip(BOOKS, ("20000", "7000", "333.33"))]
    await ledger.sync_strategies(conn, configs, D(100_000))
    broker = Broker(D(100_000))
    for day, (price_list, targets) in enumerate(steps):
        prices = dict(zip(SYMBOLS, price_list, strict=True))
        run = await ledger.start_run(conn, date(2026, 1, 5) + timedelta(days=day), "daily")
        await ledger.record_prices(conn, prices, run_id=run.id)
        books = await ledger.load_books(conn)
        intents = []
        for book_id, book_targets in zip(BOOKS, targets, strict=True):
            intents += plan_book(
                books[book_id],
                targets=normalised(book_targets),
                prices=prices,
                fractionable=FRACTIONABLE,
                options=RebalanceOptions(),
                rebalance_day=True,
                risk=RISK,
            )

        def fills(order: object) -> list[Decimal]:
            return data.draw(st.lists(st.sampled_from(FILL_FRACTIONS), min_size=1, max_size=2))

        def fill_price(order: NetOrder) -> Decimal:
            slippage = data.draw(st.decimals(D(0), MAX_SLIPPAGE, places=6))
            if order.side == "buy":
                return floor_to(order.reference_price * (1 + slippage), CENT)
            return -floor_to(-order.reference_price * (1 - slippage), CENT)

        def deliver(fills: Sequence[tuple[ExecutionReport, OrderProgress]]) -> list[Event]:
            """Each fill from the stream or read back over REST, some twice, in any order."""
            events: list[Event] = [data.draw(st.sampled_from(pair)) for pair in fills]
            if events:
                events += data.draw(st.lists(st.sampled_from(events), max_size=2))
            return data.draw(st.permutations(events))

        # Sometimes the process dies mid-run and the run is resumed from what was saved.
        crash = data.draw(st.sampled_from([None, "crosses", "sell", "buy"]))
        try:
            reports = await execute_run(
                conn,
                run.id,
                intents,
                broker,
                fills,
                FRACTIONABLE,
                prices=fill_price,
                headroom=RISK.slippage_allowance,
                checkpoint=crash_at(crash) if crash else no_crash,
                deliver=deliver,
            )
        except Crash:
            reports = await execute_run(
                conn,
                run.id,
                await ledger.load_intents(conn, run.id),
                broker,
                fills,
                FRACTIONABLE,
                prices=fill_price,
                headroom=RISK.slippage_allowance,
                deliver=deliver,
            )
        await post_activities(conn, broker, day, data)
        await check_invariants(conn, broker, prices)
        if reports:
            replayed = data.draw(st.sampled_from(reports))
            before = await snapshot(conn)
            assert await ledger.book_execution(conn, replayed) == []
            assert await snapshot(conn) == before


async def post_activities(conn: AsyncConnection, broker: Broker, day: int, data: Any) -> None:
    """The broker's fees on today's sells and, sometimes, a dividend on a held symbol."""
    rows = []
    for symbol, (sold, proceeds) in sorted(broker.sold_today().items()):
        fee = -(proceeds * FEE_RATE).quantize(CENT, rounding=ROUND_CEILING)
        broker.cash += fee
        rows.append(activity(day, "FEE", symbol, sold, fee, date=TODAY, description="REG/TAF fee"))
    held = sorted(s for s, q in broker.positions.items() if q > 0)
    if held and data.draw(st.booleans()):
        symbol = data.draw(st.sampled_from(held))
        per_share = data.draw(st.decimals(D("0.01"), D("2"), places=4))
        quantity = broker.positions[symbol]
        amount = (quantity * per_share).quantize(CENT)
        broker.cash += amount
        rows.append(
            activity(day, "DIV", symbol, quantity, amount, date=TOMORROW, per_share=per_share)
        )
    await ledger.book_activities(conn, rows, fractionable=FRACTIONABLE)


def activity(
    day: int,
    kind: str,
    symbol: str,
    quantity: Decimal,
    amount: Decimal,
    *,
    date: date,
    per_share: Decimal | None = None,
    description: str = "",
) -> dict[str, Any]:
    row = {
        "id": f"{day:017d}::{kind}-{symbol}",
        "activity_type": kind,
        "date": date.isoformat(),
        "symbol": symbol,
        "qty": f"{quantity:f}",
        "net_amount": f"{amount:f}",
        "description": description,
        "status": "executed",
    }
    if per_share is not None:
        row["per_share_amount"] = f"{per_share:f}"
    return row


async def snapshot(conn: AsyncConnection) -> tuple[list, list, int]:
    holdings = (await conn.execute(text("select * from book_holdings order by 1, 2"))).all()
    cash = (await conn.execute(text("select id, cash from strategies order by 1"))).all()
    fills = await conn.scalar(text("select count(*) from book_fills"))
    return [tuple(r) for r in holdings], [tuple(r) for r in cash], fills


async def check_invariants(conn: AsyncConnection, broker: Broker, prices: dict) -> None:
    assert await ledger_problems(conn) == []
    # Books sum to the broker exactly: every difference is zero, not just small.
    positions = {s: q for s, q in broker.positions.items() if q != 0}
    result = await reconcile(conn, positions, broker.cash, D(0))
    assert result.differences == (), result.differences
    # Nothing twice: no book is filled beyond what it planned, nothing is left over.
    overfilled = await conn.execute(
        text(
            "select f.run_id, f.strategy_id, f.symbol, f.side from book_fills f"
            " join intents i using (run_id, strategy_id, symbol, side)"
            " group by 1, 2, 3, 4 having sum(f.quantity) > max(coalesce(i.planned_quantity,"
            " i.quantity))"
        )
    )
    assert overfilled.all() == []
    books = await ledger.load_books(conn)
    assert books[UNALLOCATED_BOOK].positions == {}
    assert all(b.cash >= 0 for b in books.values()), {b: s.cash for b, s in books.items()}
    assert all(q > 0 for b in books.values() for q in b.positions.values())
    for symbol, quantity in ((s, q) for b in books.values() for s, q in b.positions.items()):
        if symbol not in FRACTIONABLE:
            assert quantity == quantity.to_integral_value()
    # Realised + unrealised P&L = value − funding, per book, valued at the prices the
    # views use (the latest of today's marks and executions, which stray from the marks).
    prices = dict((await conn.execute(text("select symbol, price from latest_prices"))).all())
    funding = dict((await conn.execute(text("select id, net_funding from strategies"))).all())
    pnl = dict(
        (
            await conn.execute(
                text("select strategy_id, sum(total_pnl) from book_pnl group by strategy_id")
            )
        ).all()
    )
    for book_id, book in books.items():
        value = book.cash + sum(q * prices[s] for s, q in book.positions.items())
        assert pnl.get(book_id, D(0)) == value - funding[book_id], book_id
    view_pnl = dict((await conn.execute(text("select strategy_id, pnl from book_value"))).all())
    assert {b: view_pnl[b] for b in books} == {b: pnl.get(b, D(0)) for b in books}
