"""Postings: the only code that writes lots, lot closures, holdings and cash.

Every movement of a book is a posting in the caller's transaction: a fill (its
book_fills row, FIFO lots, holding and cash) or a cash entry. Running totals
(`strategies.cash`, `book_holdings`) are kept in the same statement sequence as
the entries they sum, so `reconcile.ledger_problems` can check one against the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, tuple_, update
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
    await post_fills(conn, [fill])


async def post_fills(conn: AsyncConnection, fills: Sequence[Posting]) -> None:
    """Books' fills of one or many executions, in the order given, a few statements in all.

    A book appears at most once per execution. The books' rows are locked first, in
    id order, as everywhere else. A sell of a (book, symbol) bought earlier in the
    same call is written after that buy (its lot must exist to be closed).
    """
    chunk: list[Posting] = []
    bought: set[tuple[str, str]] = set()
    for fill in fills:
        if fill.side == "sell" and (fill.strategy_id, fill.symbol) in bought:
            await _post_chunk(conn, chunk)
            chunk, bought = [], set()
        chunk.append(fill)
        if fill.side == "buy":
            bought.add((fill.strategy_id, fill.symbol))
    await _post_chunk(conn, chunk)


async def _lock_books(conn: AsyncConnection, books: Sequence[str]) -> None:
    await conn.execute(
        select(Book.id).where(Book.id.in_(books)).order_by(Book.id).with_for_update()
    )


async def _post_chunk(conn: AsyncConnection, fills: Sequence[Posting]) -> None:
    if not fills:
        return
    await _lock_books(conn, sorted({f.strategy_id for f in fills}))
    # Statements without their values, parameters as a list (executemany): compiled
    # once and cached. A multi-row `.values([...])` is compiled again every time.
    rows = await conn.execute(
        insert(BookFill).returning(BookFill.id, sort_by_parameter_order=True),
        [
            {
                "execution_id": f.execution_id,
                "strategy_id": f.strategy_id,
                "run_id": f.run_id,
                "symbol": f.symbol,
                "side": f.side,
                "quantity": f.quantity,
                "price": f.price,
                "filled_at": f.at,
            }
            for f in fills
        ],
    )
    fill_ids = list(rows.scalars())
    buys = [(f, i) for f, i in zip(fills, fill_ids, strict=True) if f.side == "buy"]
    sells = [(f, i) for f, i in zip(fills, fill_ids, strict=True) if f.side == "sell"]
    holdings: list[tuple[str, str, Decimal, Decimal, Decimal]] = []
    cash: list[tuple[Posting, int, Decimal]] = []
    if buys:
        await conn.execute(
            insert(Lot),
            [
                {
                    "strategy_id": f.strategy_id,
                    "symbol": f.symbol,
                    "book_fill_id": fill_id,
                    "opened_at": f.at,
                    "quantity": f.quantity,
                    "remaining": f.quantity,
                    "cost_price": f.price,
                }
                for f, fill_id in buys
            ],
        )
    closed = await _close_lots_fifo(conn, sells) if sells else []
    for f, fill_id in zip(fills, fill_ids, strict=True):
        if f.side == "buy":
            amount = mul(f.quantity, f.price)
            holdings.append((f.strategy_id, f.symbol, f.quantity, amount, ZERO))
            cash.append((f, fill_id, -amount))
    for (f, fill_id), (cost, realised) in zip(sells, closed, strict=True):
        holdings.append((f.strategy_id, f.symbol, -f.quantity, -cost, realised))
        cash.append((f, fill_id, mul(f.quantity, f.price)))
    await _add_to_holdings(conn, holdings)
    await _cash_entries(
        conn,
        [
            {
                "strategy_id": f.strategy_id,
                "kind": CashKind.FILL,
                "amount": amount,
                "book_fill_id": fill_id,
                "run_id": f.run_id,
            }
            for f, fill_id, amount in sorted(cash, key=lambda c: c[1])
        ],
    )


async def _close_lots_fifo(
    conn: AsyncConnection, sells: Sequence[tuple[Posting, int]]
) -> list[tuple[Decimal, Decimal]]:
    """Close each book's oldest open lots first (by execution time), sell by sell.

    Returns each sell's (cost of what it sold, realised P&L).
    """
    pairs = sorted({(f.strategy_id, f.symbol) for f, _ in sells})
    lots = (
        await conn.execute(
            select(Lot.id, Lot.strategy_id, Lot.symbol, Lot.remaining, Lot.cost_price)
            .where(tuple_(Lot.strategy_id, Lot.symbol).in_(pairs), Lot.remaining > 0)
            .order_by(Lot.strategy_id, Lot.symbol, Lot.opened_at, Lot.id)
            .with_for_update()
        )
    ).all()
    remaining = {lot.id: lot.remaining for lot in lots}
    closures: list[dict[str, Any]] = []
    result = []
    for fill, fill_id in sells:
        left, cost, realised = fill.quantity, ZERO, ZERO
        for lot in lots:
            if left == 0:
                break
            if (lot.strategy_id, lot.symbol) != (fill.strategy_id, fill.symbol):
                continue
            take = min(left, remaining[lot.id])
            if take == 0:
                continue
            pnl = mul(take, fill.price - lot.cost_price)
            closures.append(
                {
                    "lot_id": lot.id,
                    "book_fill_id": fill_id,
                    "quantity": take,
                    "cost_price": lot.cost_price,
                    "sale_price": fill.price,
                    "realised_pnl": pnl,
                }
            )
            remaining[lot.id] -= take
            left -= take
            cost = add(cost, mul(take, lot.cost_price))
            realised = add(realised, pnl)
        if left > 0 and fill.strategy_id != UNALLOCATED_BOOK:
            raise LedgerError(
                f"book {fill.strategy_id} would sell {left} {fill.symbol} more than it holds"
            )
        # A broker sale beyond what the books asked for really happened: `unallocated`
        # goes short (no lot; `ledger_problems` reports it) rather than being refused.
        result.append((add(cost, mul(left, fill.price)), realised))
    if closures:
        lowered = sorted({c["lot_id"] for c in closures})
        await conn.execute(
            update(Lot)
            .where(Lot.id == bindparam("lot"))
            .values(remaining=bindparam("left", type_=Lot.remaining.type)),
            [{"lot": lot_id, "left": remaining[lot_id]} for lot_id in lowered],
        )
        await conn.execute(insert(LotClosure), closures)
    return result


async def _add_to_holdings(
    conn: AsyncConnection, changes: Sequence[tuple[str, str, Decimal, Decimal, Decimal]]
) -> None:
    """(book, symbol, quantity, cost, realised) added to each holding, one statement.

    Summed per holding first: one statement may not update a row twice.
    """
    sums: dict[tuple[str, str], tuple[Decimal, Decimal, Decimal]] = {}
    for book, symbol, quantity, cost, realised in changes:
        q, c, r = sums.get((book, symbol), (ZERO, ZERO, ZERO))
        sums[book, symbol] = (add(q, quantity), add(c, cost), add(r, realised))
    statement = insert(BookHolding)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=[BookHolding.strategy_id, BookHolding.symbol],
            set_={
                "quantity": BookHolding.quantity + statement.excluded.quantity,
                "cost_basis": BookHolding.cost_basis + statement.excluded.cost_basis,
                "realised_pnl": BookHolding.realised_pnl + statement.excluded.realised_pnl,
                "updated_at": func.now(),
            },
        ),
        [
            {
                "strategy_id": book,
                "symbol": symbol,
                "quantity": quantity,
                "cost_basis": cost,
                "realised_pnl": realised,
            }
            for (book, symbol), (quantity, cost, realised) in sorted(sums.items())
        ],
    )


async def _cash_entries(conn: AsyncConnection, entries: Sequence[dict[str, Any]]) -> None:
    """Fill cash entries, and each book's running cash (rows already locked, in id order)."""
    await conn.execute(insert(CashEntry), list(entries))
    sums: dict[str, Decimal] = {}
    for entry in entries:
        sums[entry["strategy_id"]] = add(sums.get(entry["strategy_id"], ZERO), entry["amount"])
    await conn.execute(
        update(Book)
        .where(Book.id == bindparam("book"))
        .values(cash=Book.cash + bindparam("amount", type_=Book.cash.type), updated_at=func.now()),
        [{"book": book, "amount": amount} for book, amount in sorted(sums.items())],
    )


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
