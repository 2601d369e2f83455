"""Ledger writes: books and funding, runs, signals, intents, orders, fills, lots, cash.

Every function takes an `AsyncConnection` inside a transaction the caller owns
(`async with engine.begin() as conn:`), so a step of the daily run is written
whole or not at all. Booking is idempotent: an execution is keyed by its
execution id, and a replay changes nothing. Rows of `strategies` are updated in
strategy-id order inside one transaction, so concurrent bookings cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, bindparam, func, literal_column, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.capital import BookCapital, CapitalPlan, capital_transfers
from alchemiser.books.models import (
    BookFill,
    BookHolding,
    BrokerOrder,
    CashEntry,
    Execution,
    Lot,
    LotClosure,
    Mark,
    Run,
    Signal,
    Strategy,
)
from alchemiser.books.models import (
    Intent as IntentRow,
)
from alchemiser.books.money import (
    QUANTITY_QUANTUM,
    WHOLE_SHARE,
    WIDE_FLOOR,
    ZERO,
    add,
    mul,
    quantum_for,
    scale_to_budget,
)
from alchemiser.books.netting import (
    Cross,
    NetOrder,
    Netted,
    Share,
    cross_execution_id,
    net_intents,
    split_execution,
)
from alchemiser.books.planner import BookState, Intent, Side, holdings_value
from alchemiser.logging import get_logger
from alchemiser.settings import UNALLOCATED_BOOK, BooksConfig, RiskConfig, StrategyConfig

log = get_logger(__name__)

STATE_REMOVED = "removed"
STATE_SYSTEM = "system"
RUN_STARTED = "started"
REASON_SCALED_TO_CASH = "scaled-to-cash"
EXECUTION_CROSS = "cross"
CASH_FILL = "fill"
# Phase 2's default headroom: the `[risk] slippage_allowance` default (the daemon passes
# the configured one).
DEFAULT_BUY_HEADROOM: Decimal = RiskConfig.model_fields["slippage_allowance"].default


class LedgerError(RuntimeError):
    """A booking that would break the ledger's invariants (nothing is written)."""


@dataclass(frozen=True)
class ExecutionReport:
    """A fill reported by the broker (trade-update stream or REST read-back).

    `client_order_id` links it to a recorded broker order and, through it, to the
    run whose intents it fills. `whole_shares`: split in whole shares
    (non-fractionable asset).
    """

    execution_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    client_order_id: str | None = None
    whole_shares: bool = False


@dataclass(frozen=True)
class BookedFill:
    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class RunRecord:
    id: int
    trading_day: date
    kind: str
    status: str
    resumed: bool


@dataclass(frozen=True)
class BrokerOrderRecord:
    """An order as sent (or as last seen) at the broker, keyed by its client order id."""

    client_order_id: str
    run_id: int | None
    symbol: str
    side: Side
    step: int
    order_type: str
    quantity: Decimal
    status: str
    limit_price: Decimal | None = None
    alpaca_order_id: str | None = None


@dataclass(frozen=True)
class SyncResult:
    """What `sync_strategies` did: new books funded, allocations changed, books removed."""

    funded: dict[str, Decimal]
    allocation_changed: dict[str, Decimal]
    removed: list[str]


@dataclass(frozen=True)
class _Fill:
    """One book's piece of an execution, as booked."""

    execution_id: str
    run_id: int | None
    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    at: datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


# ---------------------------------------------------------------- books and funding


async def ensure_unallocated(conn: AsyncConnection) -> None:
    """The `unallocated` book exists (the migration creates it; this repairs a wiped row)."""
    await conn.execute(
        insert(Strategy)
        .values(id=UNALLOCATED_BOOK, state=STATE_SYSTEM)
        .on_conflict_do_nothing(index_elements=[Strategy.id])
    )


async def deposit(
    conn: AsyncConnection, amount: Decimal, memo: str = "deposit", run_id: int | None = None
) -> None:
    """Money entering the account (or leaving it, if negative) lands in `unallocated`."""
    kind = "deposit" if amount >= 0 else "withdrawal"
    await _cash_entry(conn, UNALLOCATED_BOOK, kind, amount, run_id=run_id, memo=memo, funding=True)


async def open_account(
    conn: AsyncConnection,
    cash: Decimal,
    positions: Mapping[str, tuple[Decimal, Decimal]],
    at: datetime | None = None,
) -> bool:
    """Adopt the broker account into `unallocated` on first start (an empty ledger).

    `positions`: symbol → (quantity, average entry price). Each position is booked
    as a deposit of its cost plus an opening buy, so lots, cash and P&L all start
    consistent: value − funding = 0. A ledger that already has an opening balance
    (any cash entry in `unallocated`) is left alone: returns False.
    """
    at = at or utcnow()
    await ensure_unallocated(conn)
    # Lock the book, so two concurrent first starts cannot both open the account.
    await conn.execute(select(Strategy.id).where(Strategy.id == UNALLOCATED_BOOK).with_for_update())
    opened = await conn.scalar(
        select(func.count()).select_from(CashEntry).where(CashEntry.strategy_id == UNALLOCATED_BOOK)
    )
    if opened:
        return False
    cost = add(*(mul(q, p) for q, p in positions.values()))
    await deposit(conn, add(cash, cost), memo="opening balance")
    for symbol, (quantity, price) in sorted(positions.items()):
        fill = _Fill(
            f"opening-{symbol}", None, UNALLOCATED_BOOK, symbol, "buy", quantity, price, at
        )
        if await _insert_execution(conn, fill, kind="opening", side="buy"):
            await _book_fill(conn, fill)
    return True


async def sync_strategies(
    conn: AsyncConnection,
    strategies: Sequence[StrategyConfig],
    equity: Decimal,
    run_id: int | None = None,
) -> SyncResult:
    """Make the `strategies` table match the configuration; fund new books.

    A new strategy's book gets `capital` if configured, else `allocation × equity`,
    moved from `unallocated`. A changed allocation is reported (not applied: see
    `capital.capital_transfers` and `apply_allocation`). A strategy no longer
    configured is marked removed and reported, so the daemon can liquidate it.
    """
    await ensure_unallocated(conn)
    existing = {
        row.id: row
        for row in (
            await conn.execute(select(Strategy).where(Strategy.state != STATE_SYSTEM))
        ).all()
    }
    funded: dict[str, Decimal] = {}
    changed: dict[str, Decimal] = {}
    for config in sorted(strategies, key=lambda s: s.id):
        row = existing.get(config.id)
        if row is None:
            funded[config.id] = await _create_book(conn, config, equity, run_id)
            continue
        await conn.execute(
            update(Strategy)
            .where(Strategy.id == config.id)
            .values(file=str(config.file), state=config.state, capital=config.capital)
        )
        if config.capital is None and row.allocation != config.allocation:
            changed[config.id] = config.allocation
    configured = {s.id for s in strategies}
    removed = sorted(i for i, r in existing.items() if i not in configured)
    if removed:
        await conn.execute(
            update(Strategy).where(Strategy.id.in_(removed)).values(state=STATE_REMOVED)
        )
    return SyncResult(funded, changed, removed)


async def _create_book(
    conn: AsyncConnection, config: StrategyConfig, equity: Decimal, run_id: int | None
) -> Decimal:
    amount = config.capital if config.capital is not None else mul(config.allocation, equity)
    available = await conn.scalar(
        select(Strategy.cash).where(Strategy.id == UNALLOCATED_BOOK).with_for_update()
    )
    if available is None or available < amount:
        raise LedgerError(
            f"cannot fund {config.id} with {amount}: unallocated cash is only {available}"
        )
    await conn.execute(
        insert(Strategy).values(
            id=config.id,
            file=str(config.file),
            allocation=config.allocation,
            capital=config.capital,
            state=config.state,
        )
    )
    await transfer_cash(conn, UNALLOCATED_BOOK, config.id, amount, kind="funding", run_id=run_id)
    log.info("book funded", strategy_id=config.id, amount=str(amount))
    return amount


async def rebalance_capital(
    conn: AsyncConnection,
    strategies: Sequence[StrategyConfig],
    prices: Mapping[str, Decimal],
    config: BooksConfig,
    run_id: int | None = None,
) -> CapitalPlan:
    """Move cash between books as `[books]` says (call after `sync_strategies`).

    Books are valued at `prices` (every held symbol). Allocations that changed in
    the configuration (and, with the drift policy, books drifted past the
    threshold) are brought to `allocation × equity` by transfers with
    `unallocated`. Returns the plan: `withdrawals` is what a book still owes (pass
    it as `BookState.withdrawal` to the planner); settled books are marked as
    now following their configured allocation.
    """
    books = await load_books(conn)
    values = {i: b.cash + holdings_value(b.positions, prices) for i, b in books.items()}
    applied = dict((await conn.execute(select(Strategy.id, Strategy.allocation))).all())
    capital = [
        BookCapital(
            s.id,
            values[s.id],
            books[s.id].cash,
            s.allocation,
            fixed_capital=s.capital is not None,
            allocation_changed=applied[s.id] != s.allocation,
        )
        for s in strategies
        if s.id in books and s.state == "active"
    ]
    unallocated = books[UNALLOCATED_BOOK].cash
    equity = sum(values.values(), ZERO)
    plan = capital_transfers(
        capital, unallocated, equity, config.capital_policy, config.drift_threshold
    )
    for transfer in plan.transfers:
        await transfer_cash(
            conn, transfer.source, transfer.destination, transfer.amount, run_id=run_id
        )
    configured = {s.id: s.allocation for s in strategies}
    for strategy_id in plan.settled:
        await apply_allocation(conn, strategy_id, configured[strategy_id])
    return plan


async def apply_allocation(conn: AsyncConnection, strategy_id: str, allocation: Decimal) -> None:
    """Record that a book's capital now follows `allocation` (after its transfers)."""
    await conn.execute(
        update(Strategy)
        .where(Strategy.id == strategy_id)
        .values(allocation=allocation, updated_at=func.now())
    )


async def transfer_cash(
    conn: AsyncConnection,
    source: str,
    destination: str,
    amount: Decimal,
    *,
    kind: str = "transfer",
    run_id: int | None = None,
    memo: str | None = None,
) -> None:
    """Move `amount` of cash from one book to another (two entries that sum to zero)."""
    if amount < 0:
        raise LedgerError(f"transfer of a negative amount {amount}")
    for book, signed, other in sorted(
        [(source, -amount, destination), (destination, amount, source)]
    ):
        await _cash_entry(
            conn, book, kind, signed, run_id=run_id, counterparty=other, memo=memo, funding=True
        )


async def retire_book(conn: AsyncConnection, strategy_id: str, run_id: int | None = None) -> bool:
    """Sweep a removed, fully liquidated book's cash into `unallocated`; False if it still holds."""
    held = await conn.scalar(
        select(func.count())
        .select_from(BookHolding)
        .where(BookHolding.strategy_id == strategy_id, BookHolding.quantity != 0)
    )
    if held:
        return False
    cash = await conn.scalar(select(Strategy.cash).where(Strategy.id == strategy_id))
    if cash:
        source, destination = (
            (strategy_id, UNALLOCATED_BOOK)
            if cash > 0
            else (
                UNALLOCATED_BOOK,
                strategy_id,
            )
        )
        await transfer_cash(conn, source, destination, abs(cash), run_id=run_id, memo="retired")
    return True


async def load_books(conn: AsyncConnection) -> dict[str, BookState]:
    """Every book's cash and non-zero positions, for the planner."""
    positions: dict[str, dict[str, Decimal]] = {}
    rows = await conn.execute(
        select(BookHolding.strategy_id, BookHolding.symbol, BookHolding.quantity).where(
            BookHolding.quantity != 0
        )
    )
    for strategy_id, symbol, quantity in rows:
        positions.setdefault(strategy_id, {})[symbol] = quantity
    books = await conn.execute(select(Strategy.id, Strategy.cash))
    return {i: BookState(i, cash, positions.get(i, {})) for i, cash in books}


# ---------------------------------------------------------------- runs and plans


async def start_run(
    conn: AsyncConnection,
    trading_day: date,
    kind: str,
    price_mode: str | None = None,
    input_hash: str | None = None,
) -> RunRecord:
    """The run for (trading_day, kind): created, or found again (`resumed`) after a restart."""
    created = await conn.scalar(
        insert(Run)
        .values(
            trading_day=trading_day,
            kind=kind,
            status=RUN_STARTED,
            price_mode=price_mode,
            input_hash=input_hash,
        )
        .on_conflict_do_nothing(index_elements=[Run.trading_day, Run.kind])
        .returning(Run.id)
    )
    row = (
        await conn.execute(
            select(Run.id, Run.status).where(Run.trading_day == trading_day, Run.kind == kind)
        )
    ).one()
    return RunRecord(row.id, trading_day, kind, row.status, resumed=created is None)


async def set_run_status(
    conn: AsyncConnection,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    timings: Mapping[str, float] | None = None,
    finished: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status}
    if error is not None:
        values["error"] = error
    if timings is not None:
        values["timings"] = Run.timings.op("||")(bindparam("timings", dict(timings), JSONB))
    if finished:
        values["finished_at"] = func.now()
    await conn.execute(update(Run).where(Run.id == run_id).values(**values))


async def record_signal(
    conn: AsyncConnection,
    run_id: int,
    strategy_id: str,
    *,
    allocation: Mapping[str, float] | None,
    trace: Any = None,
    error: str | None = None,
) -> None:
    """A strategy's evaluation (allocation + trace, or its error). The first record wins."""
    inserted = await conn.scalar(
        insert(Signal)
        .values(
            run_id=run_id,
            strategy_id=strategy_id,
            allocation=dict(allocation) if allocation is not None else None,
            trace=trace,
            error=error,
        )
        .on_conflict_do_nothing(index_elements=[Signal.run_id, Signal.strategy_id])
        .returning(Signal.id)
    )
    if inserted is not None:
        await _add_run_totals(conn, run_id, strategies=1, failed_strategies=int(error is not None))


async def record_intents(conn: AsyncConnection, run_id: int, intents: Iterable[Intent]) -> None:
    """Persist the plan before any order. Re-recording a resumed run's plan changes nothing."""
    rows = [
        {
            "run_id": run_id,
            "strategy_id": i.strategy_id,
            "symbol": i.symbol,
            "side": i.side,
            "quantity": i.quantity,
            "reference_price": i.reference_price,
            "reason": i.reason,
        }
        for i in intents
    ]
    if rows:
        inserted = await conn.execute(
            insert(IntentRow).on_conflict_do_nothing().returning(IntentRow.id), rows
        )
        await _add_run_totals(conn, run_id, intents=len(inserted.all()))


async def _add_run_totals(conn: AsyncConnection, run_id: int | None, **counts: Any) -> None:
    """Add to a run's running totals (strategies, intents, book_fills, traded_value, ...)."""
    if run_id is None or not any(counts.values()):
        return
    values = {name: getattr(Run, name) + amount for name, amount in counts.items()}
    await conn.execute(update(Run).where(Run.id == run_id).values(**values))


async def load_intents(conn: AsyncConnection, run_id: int) -> list[Intent]:
    rows = await conn.execute(
        select(IntentRow)
        .where(IntentRow.run_id == run_id)
        .order_by(IntentRow.strategy_id, IntentRow.symbol, IntentRow.side)
    )
    return [
        Intent(r.strategy_id, r.symbol, r.side, r.quantity, r.reference_price, r.reason)
        for r in rows
    ]


async def record_prices(
    conn: AsyncConnection,
    prices: Mapping[str, Decimal],
    as_of: datetime | None = None,
    run_id: int | None = None,
) -> None:
    """Reference prices (marks) that value the books in the views."""
    as_of = as_of or utcnow()
    rows = [{"symbol": s, "as_of": as_of, "price": p, "run_id": run_id} for s, p in prices.items()]
    if rows:
        statement = insert(Mark).on_conflict_do_update(
            index_elements=[Mark.symbol, Mark.as_of], set_={"price": insert(Mark).excluded.price}
        )
        await conn.execute(statement, rows)


async def record_broker_order(conn: AsyncConnection, order: BrokerOrderRecord) -> int:
    """Insert or update an order by its client order id; returns its row id."""
    values = {
        "client_order_id": order.client_order_id,
        "run_id": order.run_id,
        "symbol": order.symbol,
        "side": order.side,
        "step": order.step,
        "order_type": order.order_type,
        "quantity": order.quantity,
        "limit_price": order.limit_price,
        "status": order.status,
        "alpaca_order_id": order.alpaca_order_id,
    }
    statement = insert(BrokerOrder).values(**values)
    upsert = statement.on_conflict_do_update(
        index_elements=[BrokerOrder.client_order_id],
        set_={
            "status": statement.excluded.status,
            "alpaca_order_id": func.coalesce(
                statement.excluded.alpaca_order_id, BrokerOrder.alpaca_order_id
            ),
            "limit_price": statement.excluded.limit_price,
            "quantity": statement.excluded.quantity,
            "updated_at": func.now(),
        },
    )
    # xmax = 0 only on a freshly inserted row: count each order once per run.
    inserted = literal_column("xmax = 0", Boolean).label("inserted")
    row = (await conn.execute(upsert.returning(BrokerOrder.id, inserted))).one()
    if row.inserted:
        await _add_run_totals(conn, order.run_id, broker_orders=1)
    order_id: int = row.id
    return order_id


async def find_broker_orders(conn: AsyncConnection, run_id: int) -> list[BrokerOrderRecord]:
    """A run's orders, so a resumed run re-attaches to what it already sent."""
    rows = await conn.execute(
        select(BrokerOrder).where(BrokerOrder.run_id == run_id).order_by(BrokerOrder.id)
    )
    return [
        BrokerOrderRecord(
            r.client_order_id,
            r.run_id,
            r.symbol,
            r.side,
            r.step,
            r.order_type,
            r.quantity,
            r.status,
            r.limit_price,
            r.alpaca_order_id,
        )
        for r in rows
    ]


async def net_run(
    conn: AsyncConnection, run_id: int, fractionable: Collection[str] | None = None
) -> Netted:
    """A run's remaining work, derived from its saved state alone (restart-safe).

    The run's intents as planned are netted (`net_intents`) with each book's cash
    before the run's first fill (its cash now minus the run's fill entries), so the
    crosses come out the same however often this is called. Returned: the crosses
    not yet booked, and one order per symbol and side for what the books still
    want: each intent minus the book's fills in this run (crosses and broker
    executions) minus its legs of the crosses still to book. Called again after
    some crosses or fills are booked, it gives the work that is left, never work
    done twice. Book the crosses before sending orders; buys go to the broker
    through `affordable_buy_orders` (phase 2, after the sells).
    """
    planned = [
        Intent(r.strategy_id, r.symbol, r.side, r.quantity, r.reference_price, r.reason)
        for r in await conn.execute(
            select(
                IntentRow.strategy_id,
                IntentRow.symbol,
                IntentRow.side,
                func.coalesce(IntentRow.planned_quantity, IntentRow.quantity).label("quantity"),
                IntentRow.reference_price,
                IntentRow.reason,
            )
            .where(IntentRow.run_id == run_id)
            .order_by(IntentRow.strategy_id, IntentRow.symbol, IntentRow.side)
        )
    ]
    spent = dict(
        (
            await conn.execute(
                select(CashEntry.strategy_id, func.sum(CashEntry.amount))
                .where(CashEntry.run_id == run_id, CashEntry.kind == CASH_FILL)
                .group_by(CashEntry.strategy_id)
            )
        ).all()
    )
    cash = dict((await conn.execute(select(Strategy.id, Strategy.cash))).all())
    before = {book: amount - spent.get(book, ZERO) for book, amount in cash.items()}
    plan = net_intents(planned, fractionable, before)
    crossed = set(
        await conn.scalars(
            select(Execution.symbol).where(
                Execution.run_id == run_id, Execution.kind == EXECUTION_CROSS
            )
        )
    )
    pending = tuple(c for c in plan.crosses if c.symbol not in crossed)
    wants = await _unfilled(conn, run_id)
    for cross in pending:
        legs: list[tuple[Side, Share]] = [("buy", s) for s in cross.buyers]
        legs += [("sell", s) for s in cross.sellers]
        for side, leg in legs:
            key = (leg.strategy_id, cross.symbol, side)
            quantity, price = wants.get(key, (ZERO, cross.price))
            if leg.quantity > quantity:
                log.warning("fills before their cross", run_id=run_id, symbol=cross.symbol)
            wants[key] = (max(quantity - leg.quantity, ZERO), price)
    by_order: dict[tuple[str, Side], list[Share]] = {}
    prices: dict[str, Decimal] = {}
    for (strategy_id, symbol, side), (quantity, price) in sorted(wants.items()):
        if quantity > 0:
            by_order.setdefault((symbol, side), []).append(Share(strategy_id, quantity))
            prices[symbol] = price
    orders = [
        NetOrder(
            symbol, side, sum((x.quantity for x in shares), ZERO), prices[symbol], tuple(shares)
        )
        for (symbol, side), shares in sorted(
            by_order.items(), key=lambda o: (o[0][0], o[0][1] == "buy")
        )
    ]
    return Netted(tuple(orders), pending)


async def _unfilled(
    conn: AsyncConnection,
    run_id: int,
    *,
    symbol: str | None = None,
    side: Side | None = None,
    lock: bool = False,
) -> dict[tuple[str, str, Side], tuple[Decimal, Decimal]]:
    """(book, symbol, side) → (its intent minus its fills in the run, reference price).

    Only what is still wanted (> 0). `symbol`, `side`: only those intents. `lock`:
    lock the intents first (serialises concurrent bookings of the same order).
    """
    which = [IntentRow.run_id == run_id]
    if symbol is not None:
        which.append(IntentRow.symbol == symbol)
    if side is not None:
        which.append(IntentRow.side == side)
    if lock:
        # The fills are read by a later statement (a new snapshot), so a booking that
        # waited for the lock sees the fills its predecessor committed.
        await conn.execute(
            select(IntentRow.id).where(*which).order_by(IntentRow.strategy_id).with_for_update()
        )
    filled = (
        select(
            BookFill.strategy_id,
            BookFill.symbol,
            BookFill.side,
            func.sum(BookFill.quantity).label("quantity"),
        )
        .where(BookFill.run_id == run_id)
        .group_by(BookFill.strategy_id, BookFill.symbol, BookFill.side)
        .subquery()
    )
    rows = await conn.execute(
        select(
            IntentRow.strategy_id,
            IntentRow.symbol,
            IntentRow.side,
            (IntentRow.quantity - func.coalesce(filled.c.quantity, 0)).label("quantity"),
            IntentRow.reference_price,
        )
        .outerjoin(
            filled,
            (filled.c.strategy_id == IntentRow.strategy_id)
            & (filled.c.symbol == IntentRow.symbol)
            & (filled.c.side == IntentRow.side),
        )
        .where(*which)
        .order_by(IntentRow.strategy_id, IntentRow.symbol, IntentRow.side)
    )
    unfilled: dict[tuple[str, str, Side], tuple[Decimal, Decimal]] = {}
    for row in rows:
        if row.quantity > 0:
            unfilled[row.strategy_id, row.symbol, row.side] = (row.quantity, row.reference_price)
    return unfilled


async def affordable_buy_orders(
    conn: AsyncConnection,
    run_id: int,
    fractionable: Collection[str] | None = None,
    headroom: Decimal = DEFAULT_BUY_HEADROOM,
) -> list[NetOrder]:
    """Phase 2: the run's net buy orders, each book's part capped to the cash it has now.

    Call after the sells (phase 1) have finished and been booked. A book whose
    remaining buys cost more (at reference prices) than its cash × (1 − `headroom`)
    gets them scaled down pro rata; its intents are lowered to match (the plan is
    kept in `planned_quantity`), so later executions are split by what it can pay
    for. `headroom` (`[risk] slippage_allowance`) pays for fills above the
    reference price. A fill that strays further is still booked (it is real): the
    book's cash goes negative and `reconcile.ledger_problems` reports it.
    """
    remaining: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
    for (strategy_id, symbol, _), want in (await _unfilled(conn, run_id, side="buy")).items():
        remaining.setdefault(strategy_id, {})[symbol] = want
    cash = dict((await conn.execute(select(Strategy.id, Strategy.cash))).all())
    by_symbol: dict[str, list[Share]] = {}
    prices: dict[str, Decimal] = {}
    cuts: list[dict[str, Any]] = []
    for strategy_id, wants in sorted(remaining.items()):
        quantum_of = {s: quantum_for(fractionable is None or s in fractionable) for s in wants}
        # Rounded down, if at all: the budget never exceeds the cash it leaves headroom in.
        budget = WIDE_FLOOR.multiply(max(cash.get(strategy_id, ZERO), ZERO), 1 - headroom)
        symbols = sorted(wants)
        scaled = scale_to_budget([(*wants[s], quantum_of[s]) for s in symbols], budget)
        affordable = dict(zip(symbols, scaled, strict=True))
        for symbol, (quantity, price) in sorted(wants.items()):
            cut = quantity - affordable[symbol]
            if cut > 0:
                cuts.append({"book": strategy_id, "ticker": symbol, "cut": cut})
                log.info("buy scaled to cash", strategy_id=strategy_id, symbol=symbol, cut=str(cut))
            if affordable[symbol] > 0:
                by_symbol.setdefault(symbol, []).append(Share(strategy_id, affordable[symbol]))
            prices[symbol] = price
    await _lower_intents(conn, run_id, cuts)
    return [
        NetOrder(s, "buy", sum((x.quantity for x in shares), ZERO), prices[s], tuple(shares))
        for s, shares in sorted(by_symbol.items())
    ]


async def _lower_intents(conn: AsyncConnection, run_id: int, cuts: list[dict[str, Any]]) -> None:
    """Lower buy intents by `cut` each (one statement), keeping the plan in `planned_quantity`."""
    if not cuts:
        return
    await conn.execute(
        update(IntentRow)
        .where(
            IntentRow.run_id == run_id,
            IntentRow.strategy_id == bindparam("book"),
            IntentRow.symbol == bindparam("ticker"),
            IntentRow.side == "buy",
        )
        .values(
            planned_quantity=func.coalesce(IntentRow.planned_quantity, IntentRow.quantity),
            quantity=IntentRow.quantity - bindparam("cut", type_=IntentRow.quantity.type),
            reason=REASON_SCALED_TO_CASH,
        ),
        cuts,
    )


# ---------------------------------------------------------------- fills


async def book_cross(
    conn: AsyncConnection, run_id: int, cross: Cross, at: datetime | None = None
) -> list[BookedFill]:
    """Book an internal cross to every book on both sides; a replay books nothing."""
    at = at or utcnow()
    execution_id = cross_execution_id(run_id, cross.symbol)
    whole = _Fill(execution_id, run_id, "", cross.symbol, "buy", cross.quantity, cross.price, at)
    if not await _insert_execution(conn, whole, kind=EXECUTION_CROSS, side=None):
        return []
    legs: list[tuple[str, Side, Decimal]] = [
        (s.strategy_id, "buy", s.quantity) for s in cross.buyers
    ]
    legs += [(s.strategy_id, "sell", s.quantity) for s in cross.sellers]
    booked = []
    for strategy_id, side, quantity in sorted(legs):
        fill = _Fill(
            execution_id, run_id, strategy_id, cross.symbol, side, quantity, cross.price, at
        )
        await _book_fill(conn, fill)
        booked.append(BookedFill(strategy_id, cross.symbol, side, quantity, cross.price))
    await _add_fill_totals(conn, run_id, booked)
    return booked


async def book_execution(conn: AsyncConnection, report: ExecutionReport) -> list[BookedFill]:
    """Split a broker execution among the books whose intents it fills, and book each piece.

    Each book's share is pro rata to what it still wants (its intent minus its
    earlier fills in this run, symbol and side). Anything nobody asked for (an
    over-fill, an order of no run) goes to `unallocated`. A replayed execution id
    books nothing and returns [].
    """
    order_id, run_id = await _order_of(conn, report.client_order_id)
    whole = _Fill(
        report.execution_id,
        run_id,
        "",
        report.symbol,
        report.side,
        report.quantity,
        report.price,
        report.executed_at,
    )
    if not await _insert_execution(
        conn, whole, kind="broker", side=report.side, broker_order_id=order_id
    ):
        return []
    remaining = await _remaining_asks(conn, run_id, report.symbol, report.side)
    quantum = WHOLE_SHARE if report.whole_shares else QUANTITY_QUANTUM
    pieces, excess = split_execution(report.quantity, remaining, quantum)
    if excess > 0:
        log.warning(
            "fill beyond what books asked for, booked to unallocated",
            execution_id=report.execution_id,
            symbol=report.symbol,
            quantity=str(excess),
        )
        pieces = _merge(pieces, Share(UNALLOCATED_BOOK, excess))
    booked = []
    for piece in sorted(pieces, key=lambda s: s.strategy_id):
        await _book_fill(
            conn, replace(whole, strategy_id=piece.strategy_id, quantity=piece.quantity)
        )
        booked.append(
            BookedFill(piece.strategy_id, report.symbol, report.side, piece.quantity, report.price)
        )
    await _add_fill_totals(conn, run_id, booked)
    if order_id is not None:
        await conn.execute(
            update(BrokerOrder)
            .where(BrokerOrder.id == order_id)
            .values(
                filled_quantity=BrokerOrder.filled_quantity + report.quantity,
                updated_at=func.now(),
            )
        )
    return booked


async def _add_fill_totals(
    conn: AsyncConnection, run_id: int | None, booked: Sequence[BookedFill]
) -> None:
    value = add(*(mul(f.quantity, f.price) for f in booked))
    await _add_run_totals(conn, run_id, book_fills=len(booked), traded_value=value)


def _merge(pieces: list[Share], extra: Share) -> list[Share]:
    others = [p for p in pieces if p.strategy_id != extra.strategy_id]
    mine = sum((p.quantity for p in pieces if p.strategy_id == extra.strategy_id), ZERO)
    return [*others, Share(extra.strategy_id, mine + extra.quantity)]


async def _order_of(
    conn: AsyncConnection, client_order_id: str | None
) -> tuple[int | None, int | None]:
    if client_order_id is None:
        return None, None
    row = (
        await conn.execute(
            select(BrokerOrder.id, BrokerOrder.run_id).where(
                BrokerOrder.client_order_id == client_order_id
            )
        )
    ).one_or_none()
    return (row.id, row.run_id) if row else (None, None)


async def _remaining_asks(
    conn: AsyncConnection, run_id: int | None, symbol: str, side: Side
) -> list[Share]:
    """Each book's intent in (run, symbol, side) minus what it has been filled so far."""
    if run_id is None:
        return []
    # Locking the intents serialises concurrent bookings of the same order.
    unfilled = await _unfilled(conn, run_id, symbol=symbol, side=side, lock=True)
    return [Share(strategy_id, q) for (strategy_id, _, _), (q, _) in sorted(unfilled.items())]


async def _insert_execution(
    conn: AsyncConnection,
    whole: _Fill,
    *,
    kind: str,
    side: Side | None,
    broker_order_id: int | None = None,
) -> bool:
    """Insert an execution; False if its id was already booked (a replay)."""
    inserted = await conn.scalar(
        insert(Execution)
        .values(
            execution_id=whole.execution_id,
            kind=kind,
            run_id=whole.run_id,
            broker_order_id=broker_order_id,
            symbol=whole.symbol,
            side=side,
            quantity=whole.quantity,
            price=whole.price,
            executed_at=whole.at,
        )
        .on_conflict_do_nothing(index_elements=[Execution.execution_id])
        .returning(Execution.execution_id)
    )
    return inserted is not None


async def _book_fill(conn: AsyncConnection, fill: _Fill) -> None:
    """One book's fill: the fill row, its lots (FIFO), holding and cash."""
    fill_id: int = (
        await conn.execute(
            insert(BookFill)
            .values(
                execution_id=fill.execution_id,
                strategy_id=fill.strategy_id,
                run_id=fill.run_id,
                symbol=fill.symbol,
                side=fill.side,
                quantity=fill.quantity,
                price=fill.price,
                filled_at=fill.at,
            )
            .returning(BookFill.id)
        )
    ).scalar_one()
    amount = mul(fill.quantity, fill.price)
    book, symbol = fill.strategy_id, fill.symbol
    if fill.side == "buy":
        await conn.execute(
            insert(Lot).values(
                strategy_id=book,
                symbol=symbol,
                book_fill_id=fill_id,
                opened_at=fill.at,
                quantity=fill.quantity,
                remaining=fill.quantity,
                cost_price=fill.price,
            )
        )
        await _add_to_holding(
            conn, book, symbol, quantity=fill.quantity, cost=amount, realised=ZERO
        )
        await _cash_entry(conn, book, CASH_FILL, -amount, book_fill_id=fill_id, run_id=fill.run_id)
    else:
        cost, realised = await _close_lots_fifo(conn, fill_id, fill)
        await _add_to_holding(
            conn, book, symbol, quantity=-fill.quantity, cost=-cost, realised=realised
        )
        await _cash_entry(conn, book, CASH_FILL, amount, book_fill_id=fill_id, run_id=fill.run_id)


async def _close_lots_fifo(
    conn: AsyncConnection, fill_id: int, fill: _Fill
) -> tuple[Decimal, Decimal]:
    """Close the oldest open lots first; returns (cost of what was sold, realised P&L)."""
    strategy_id, symbol, quantity, price = fill.strategy_id, fill.symbol, fill.quantity, fill.price
    lots = await conn.execute(
        select(Lot.id, Lot.remaining, Lot.cost_price)
        .where(Lot.strategy_id == strategy_id, Lot.symbol == symbol, Lot.remaining > 0)
        .order_by(Lot.id)
        .with_for_update()
    )
    left, cost, realised = quantity, ZERO, ZERO
    closures = []
    lowered: list[dict[str, Any]] = []
    for lot_id, remaining, cost_price in lots:
        if left == 0:
            break
        take = min(left, remaining)
        pnl = mul(take, price - cost_price)
        closures.append(
            {
                "lot_id": lot_id,
                "book_fill_id": fill_id,
                "quantity": take,
                "cost_price": cost_price,
                "sale_price": price,
                "realised_pnl": pnl,
            }
        )
        lowered.append({"lot": lot_id, "left": remaining - take})
        left -= take
        cost = add(cost, mul(take, cost_price))
        realised = add(realised, pnl)
    if left > 0:
        raise LedgerError(f"book {strategy_id} would sell {left} {symbol} more than it holds")
    await conn.execute(
        update(Lot)
        .where(Lot.id == bindparam("lot"))
        .values(remaining=bindparam("left", type_=Lot.remaining.type)),
        lowered,
    )
    await conn.execute(insert(LotClosure), closures)
    return cost, realised


async def _add_to_holding(
    conn: AsyncConnection,
    strategy_id: str,
    symbol: str,
    *,
    quantity: Decimal,
    cost: Decimal,
    realised: Decimal,
) -> None:
    statement = insert(BookHolding).values(
        strategy_id=strategy_id,
        symbol=symbol,
        quantity=quantity,
        cost_basis=cost,
        realised_pnl=realised,
    )
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[BookHolding.strategy_id, BookHolding.symbol],
            set_={
                "quantity": BookHolding.quantity + quantity,
                "cost_basis": BookHolding.cost_basis + cost,
                "realised_pnl": BookHolding.realised_pnl + realised,
                "updated_at": func.now(),
            },
        )
    )


async def _cash_entry(
    conn: AsyncConnection,
    strategy_id: str,
    kind: str,
    amount: Decimal,
    *,
    book_fill_id: int | None = None,
    run_id: int | None = None,
    counterparty: str | None = None,
    memo: str | None = None,
    funding: bool = False,
) -> None:
    """One cash movement, and the book's running cash (and funding, for P&L)."""
    await conn.execute(
        insert(CashEntry).values(
            strategy_id=strategy_id,
            kind=kind,
            amount=amount,
            book_fill_id=book_fill_id,
            run_id=run_id,
            counterparty=counterparty,
            memo=memo,
        )
    )
    values: dict[str, Any] = {"cash": Strategy.cash + amount, "updated_at": func.now()}
    if funding:
        values["net_funding"] = Strategy.net_funding + amount
    result = await conn.execute(update(Strategy).where(Strategy.id == strategy_id).values(**values))
    if result.rowcount != 1:
        raise LedgerError(f"no book {strategy_id!r}")
