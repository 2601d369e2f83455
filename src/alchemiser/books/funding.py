"""Funding and capital: the `unallocated` book, deposits, new books, transfers, retirement."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.capital import BookCapital, CapitalPlan, capital_transfers
from alchemiser.books.kinds import BookState, CashKind, ExecutionKind
from alchemiser.books.models import Book, BookHolding, CashEntry
from alchemiser.books.money import ZERO, add, mul
from alchemiser.books.planner import BookState as PlannerBook
from alchemiser.books.planner import holdings_value
from alchemiser.books.postings import (
    LedgerError,
    Posting,
    cash_entry,
    insert_execution,
    post_fill,
    utcnow,
)
from alchemiser.logging import get_logger
from alchemiser.settings import UNALLOCATED_BOOK, BooksConfig, StrategyConfig

log = get_logger(__name__)


@dataclass(frozen=True)
class SyncResult:
    """What `sync_strategies` did: new books funded, allocations changed, books removed."""

    funded: dict[str, Decimal]
    allocation_changed: dict[str, Decimal]
    removed: list[str]


async def ensure_unallocated(conn: AsyncConnection) -> None:
    """The `unallocated` book exists (the migration creates it; this repairs a wiped row)."""
    await conn.execute(
        insert(Book)
        .values(id=UNALLOCATED_BOOK, state=BookState.SYSTEM)
        .on_conflict_do_nothing(index_elements=[Book.id])
    )


async def deposit(
    conn: AsyncConnection, amount: Decimal, memo: str = "deposit", run_id: int | None = None
) -> None:
    """Money entering the account (or leaving it, if negative) lands in `unallocated`."""
    kind = CashKind.DEPOSIT if amount >= 0 else CashKind.WITHDRAWAL
    await cash_entry(conn, UNALLOCATED_BOOK, kind, amount, run_id=run_id, memo=memo, funding=True)


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
    await conn.execute(select(Book.id).where(Book.id == UNALLOCATED_BOOK).with_for_update())
    opened = await conn.scalar(
        select(func.count()).select_from(CashEntry).where(CashEntry.strategy_id == UNALLOCATED_BOOK)
    )
    if opened:
        return False
    cost = add(*(mul(q, p) for q, p in positions.values()))
    await deposit(conn, add(cash, cost), memo="opening balance")
    for symbol, (quantity, price) in sorted(positions.items()):
        fill = Posting(
            f"opening-{symbol}", None, UNALLOCATED_BOOK, symbol, "buy", quantity, price, at
        )
        if await insert_execution(conn, fill, kind=ExecutionKind.OPENING, side="buy"):
            await post_fill(conn, fill)
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
        for row in (await conn.execute(select(Book).where(Book.state != BookState.SYSTEM))).all()
    }
    funded: dict[str, Decimal] = {}
    changed: dict[str, Decimal] = {}
    for config in sorted(strategies, key=lambda s: s.id):
        row = existing.get(config.id)
        if row is None:
            funded[config.id] = await _create_book(conn, config, equity, run_id)
            continue
        await conn.execute(
            update(Book)
            .where(Book.id == config.id)
            .values(file=str(config.file), state=config.state, capital=config.capital)
        )
        if row.state == BookState.REMOVED and await _is_retired(conn, config.id):
            # Added back after its book was liquidated and swept: funded like a new one.
            await apply_allocation(conn, config.id, config.allocation)
            funded[config.id] = await _fund(conn, config, equity, run_id)
            continue
        if config.capital is None and row.allocation != config.allocation:
            changed[config.id] = config.allocation
    configured = {s.id for s in strategies}
    removed = sorted(i for i, r in existing.items() if i not in configured)
    if removed:
        await conn.execute(update(Book).where(Book.id.in_(removed)).values(state=BookState.REMOVED))
    return SyncResult(funded, changed, removed)


async def _create_book(
    conn: AsyncConnection, config: StrategyConfig, equity: Decimal, run_id: int | None
) -> Decimal:
    await conn.execute(
        insert(Book).values(
            id=config.id,
            file=str(config.file),
            allocation=config.allocation,
            capital=config.capital,
            state=config.state,
        )
    )
    return await _fund(conn, config, equity, run_id)


async def _fund(
    conn: AsyncConnection, config: StrategyConfig, equity: Decimal, run_id: int | None
) -> Decimal:
    """Move a book's starting capital from `unallocated`: `capital`, else allocation × equity."""
    amount = config.capital if config.capital is not None else mul(config.allocation, equity)
    available = await conn.scalar(
        select(Book.cash).where(Book.id == UNALLOCATED_BOOK).with_for_update()
    )
    if available is None or available < amount:
        raise LedgerError(
            f"cannot fund {config.id} with {amount}: unallocated cash is only {available}"
        )
    await transfer_cash(
        conn, UNALLOCATED_BOOK, config.id, amount, kind=CashKind.FUNDING, run_id=run_id
    )
    log.info("book funded", strategy_id=config.id, amount=str(amount))
    return amount


async def _is_retired(conn: AsyncConnection, strategy_id: str) -> bool:
    """A book with no shares and no cash left (liquidated and swept by `retire_book`)."""
    held = await conn.scalar(
        select(func.count())
        .select_from(BookHolding)
        .where(BookHolding.strategy_id == strategy_id, BookHolding.quantity != 0)
    )
    cash = await conn.scalar(select(Book.cash).where(Book.id == strategy_id))
    return not held and cash == 0


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
    applied = dict((await conn.execute(select(Book.id, Book.allocation))).all())
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
        update(Book)
        .where(Book.id == strategy_id)
        .values(allocation=allocation, updated_at=func.now())
    )


async def transfer_cash(
    conn: AsyncConnection,
    source: str,
    destination: str,
    amount: Decimal,
    *,
    kind: CashKind = CashKind.TRANSFER,
    run_id: int | None = None,
    memo: str | None = None,
) -> None:
    """Move `amount` of cash from one book to another (two entries that sum to zero)."""
    if amount < 0:
        raise LedgerError(f"transfer of a negative amount {amount}")
    for book, signed, other in sorted(
        [(source, -amount, destination), (destination, amount, source)]
    ):
        await cash_entry(
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
    cash = await conn.scalar(select(Book.cash).where(Book.id == strategy_id))
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


async def load_books(conn: AsyncConnection) -> dict[str, PlannerBook]:
    """Every book's cash and non-zero positions, for the planner."""
    positions: dict[str, dict[str, Decimal]] = {}
    rows = await conn.execute(
        select(BookHolding.strategy_id, BookHolding.symbol, BookHolding.quantity).where(
            BookHolding.quantity != 0
        )
    )
    for strategy_id, symbol, quantity in rows:
        positions.setdefault(strategy_id, {})[symbol] = quantity
    books = await conn.execute(select(Book.id, Book.cash))
    return {i: PlannerBook(i, cash, positions.get(i, {})) for i, cash in books}
