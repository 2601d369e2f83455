"""Postings: the only code that writes lots, lot closures, holdings and cash.

Every movement of a book is a posting in the caller's transaction: a fill (its
book_fills row, FIFO lots, holding and cash) or a cash entry. Running totals
(`strategies.cash`, `book_holdings`) are kept in the same statement sequence as
the entries they sum, so `reconcile.ledger_problems` can check one against the other.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.kinds import CashKind, ExecutionKind
from alchemiser.books.models import (
    Book,
    BookFill,
    BookHolding,
    CashEntry,
    Execution,
    Lot,
    LotClosure,
    RunFillTotals,
)
from alchemiser.books.money import ZERO, add, mul
from alchemiser.books.planner import Side
from alchemiser.settings import UNALLOCATED_BOOK


class LedgerError(RuntimeError):
    """A booking that would break the ledger's invariants (nothing is written)."""


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Posting:
    """One book's piece of an execution, as booked."""

    execution_id: str
    run_id: int | None
    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    at: datetime


async def insert_execution(
    conn: AsyncConnection,
    whole: Posting,
    *,
    kind: ExecutionKind,
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


async def post_fill(conn: AsyncConnection, fill: Posting) -> None:
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
        await open_lot(conn, fill_id, fill)
        await add_to_holding(conn, book, symbol, quantity=fill.quantity, cost=amount)
        await cash_entry(
            conn, book, CashKind.FILL, -amount, book_fill_id=fill_id, run_id=fill.run_id
        )
    else:
        cost, realised = await _close_lots_fifo(conn, fill_id, fill)
        await add_to_holding(
            conn, book, symbol, quantity=-fill.quantity, cost=-cost, realised=realised
        )
        await cash_entry(
            conn, book, CashKind.FILL, amount, book_fill_id=fill_id, run_id=fill.run_id
        )


async def open_lot(conn: AsyncConnection, fill_id: int | None, fill: Posting) -> None:
    """A new FIFO lot of `fill` (a buy, or shares moved in by a split)."""
    await conn.execute(
        insert(Lot).values(
            strategy_id=fill.strategy_id,
            symbol=fill.symbol,
            book_fill_id=fill_id,
            opened_at=fill.at,
            quantity=fill.quantity,
            remaining=fill.quantity,
            cost_price=fill.price,
        )
    )


async def _close_lots_fifo(
    conn: AsyncConnection, fill_id: int, fill: Posting
) -> tuple[Decimal, Decimal]:
    """Close the oldest open lots first; returns (cost of what was sold, realised P&L)."""
    strategy_id, symbol, quantity, price = fill.strategy_id, fill.symbol, fill.quantity, fill.price
    lots = await conn.execute(
        select(Lot.id, Lot.remaining, Lot.cost_price)
        .where(Lot.strategy_id == strategy_id, Lot.symbol == symbol, Lot.remaining > 0)
        .order_by(Lot.opened_at, Lot.id)
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
    if left > 0 and strategy_id != UNALLOCATED_BOOK:
        raise LedgerError(f"book {strategy_id} would sell {left} {symbol} more than it holds")
    # A broker sale beyond what the books asked for really happened: `unallocated` goes
    # short (no lot; `ledger_problems` reports it) rather than the booking being refused.
    cost = add(cost, mul(left, price))
    if not closures:
        return cost, realised
    await conn.execute(
        update(Lot)
        .where(Lot.id == bindparam("lot"))
        .values(remaining=bindparam("left", type_=Lot.remaining.type)),
        lowered,
    )
    await conn.execute(insert(LotClosure), closures)
    return cost, realised


async def add_to_holding(
    conn: AsyncConnection,
    strategy_id: str,
    symbol: str,
    *,
    quantity: Decimal,
    cost: Decimal,
    realised: Decimal = ZERO,
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


async def cash_entry(
    conn: AsyncConnection,
    strategy_id: str,
    kind: CashKind,
    amount: Decimal,
    *,
    book_fill_id: int | None = None,
    run_id: int | None = None,
    counterparty: str | None = None,
    memo: str | None = None,
    funding: bool = False,
    symbol: str | None = None,
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
            symbol=symbol,
        )
    )
    values: dict[str, Any] = {"cash": Book.cash + amount, "updated_at": func.now()}
    if funding:
        values["net_funding"] = Book.net_funding + amount
    result = await conn.execute(update(Book).where(Book.id == strategy_id).values(**values))
    if result.rowcount != 1:
        raise LedgerError(f"no book {strategy_id!r}")


async def add_fill_totals(
    conn: AsyncConnection, run_id: int | None, fills: int, value: Decimal
) -> None:
    """Add to a run's fill totals: the last lock a booking takes (never the `runs` row)."""
    if run_id is None or not fills:
        return
    statement = insert(RunFillTotals).values(run_id=run_id, book_fills=fills, traded_value=value)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[RunFillTotals.run_id],
            set_={
                "book_fills": RunFillTotals.book_fills + fills,
                "traded_value": RunFillTotals.traded_value + value,
            },
        )
    )
