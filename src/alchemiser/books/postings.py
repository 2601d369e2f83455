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

from sqlalchemy import func, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.bulk import arrays, insert_rows, rows_of, statement
from alchemiser.books.kinds import CashKind, ExecutionKind
from alchemiser.books.models import (
    Book,
    BookHolding,
    CashEntry,
    Execution,
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
    id order, as everywhere else. A chunk writes its buys' lots before closing its
    sells' lots, so a (book, symbol) that changes side starts a new chunk: a sell
    after a buy closes that buy's lot; a buy after a sell never feeds that sell.
    """
    chunk: list[Posting] = []
    sides: dict[tuple[str, str], str] = {}
    for fill in fills:
        if sides.get((fill.strategy_id, fill.symbol), fill.side) != fill.side:
            await _post_chunk(conn, chunk)
            chunk, sides = [], {}
        chunk.append(fill)
        sides[fill.strategy_id, fill.symbol] = fill.side
    await _post_chunk(conn, chunk)


_FILL_COLUMNS = [
    ("execution_id", "text"),
    ("strategy_id", "text"),
    ("run_id", "bigint"),
    ("symbol", "text"),
    ("side", "text"),
    ("quantity", "numeric"),
    ("price", "numeric"),
    ("filled_at", "timestamptz"),
]
_INSERT_FILLS = statement(
    f"""
    {insert_rows("book_fills", _FILL_COLUMNS)}
    RETURNING execution_id, strategy_id, id
    """
)
_LOT_COLUMNS = [
    ("strategy_id", "text"),
    ("symbol", "text"),
    ("book_fill_id", "bigint"),
    ("opened_at", "timestamptz"),
    ("quantity", "numeric"),
    ("cost_price", "numeric"),
]
_INSERT_LOTS = statement(
    f"""
    INSERT INTO lots (strategy_id, symbol, book_fill_id, opened_at, quantity, remaining, cost_price)
    SELECT strategy_id, symbol, book_fill_id, opened_at, quantity, quantity, cost_price
    FROM ({rows_of(_LOT_COLUMNS)}) AS lot ORDER BY book_fill_id
    """
)
_LOCK_BOOKS = statement(
    "SELECT id FROM strategies WHERE id = ANY(CAST(:books AS text[])) ORDER BY id FOR UPDATE"
)


async def _lock_books(conn: AsyncConnection, books: Sequence[str]) -> None:
    await conn.execute(_LOCK_BOOKS, {"books": list(books)})


async def _post_chunk(conn: AsyncConnection, fills: Sequence[Posting]) -> None:
    if not fills:
        return
    await _lock_books(conn, sorted({f.strategy_id for f in fills}))
    rows = await conn.execute(
        _INSERT_FILLS,
        {
            "execution_id": [f.execution_id for f in fills],
            "strategy_id": [f.strategy_id for f in fills],
            "run_id": [f.run_id for f in fills],
            "symbol": [f.symbol for f in fills],
            "side": [f.side for f in fills],
            "quantity": [f.quantity for f in fills],
            "price": [f.price for f in fills],
            "filled_at": [f.at for f in fills],
        },
    )
    ids = {(execution_id, book): fill_id for execution_id, book, fill_id in rows}
    fill_ids = [ids[f.execution_id, f.strategy_id] for f in fills]
    buys = [(f, i) for f, i in zip(fills, fill_ids, strict=True) if f.side == "buy"]
    sells = [(f, i) for f, i in zip(fills, fill_ids, strict=True) if f.side == "sell"]
    holdings: list[tuple[str, str, Decimal, Decimal, Decimal]] = []
    cash: list[tuple[Posting, int, Decimal]] = []
    if buys:
        await conn.execute(
            _INSERT_LOTS,
            {
                "strategy_id": [f.strategy_id for f, _ in buys],
                "symbol": [f.symbol for f, _ in buys],
                "book_fill_id": [fill_id for _, fill_id in buys],
                "opened_at": [f.at for f, _ in buys],
                "quantity": [f.quantity for f, _ in buys],
                "cost_price": [f.price for f, _ in buys],
            },
        )
    closed = await _close_lots_fifo(conn, sells) if sells else []
    for f, fill_id in buys:
        amount = mul(f.quantity, f.price)
        holdings.append((f.strategy_id, f.symbol, f.quantity, amount, ZERO))
        cash.append((f, fill_id, -amount))
    for (f, fill_id), (cost, realised) in zip(sells, closed, strict=True):
        holdings.append((f.strategy_id, f.symbol, -f.quantity, -cost, realised))
        cash.append((f, fill_id, mul(f.quantity, f.price)))
    await _add_to_holdings(conn, holdings)
    await _fill_cash(conn, sorted(cash, key=lambda c: c[1]))


# Each book's open lots in the sold symbols, oldest first (FIFO), locked.
_OPEN_LOTS = statement(
    """
    SELECT l.id, l.strategy_id, l.symbol, l.remaining, l.cost_price
    FROM lots AS l JOIN unnest(CAST(:books AS text[]), CAST(:symbols AS text[]))
        AS s(strategy_id, symbol) USING (strategy_id, symbol)
    WHERE l.remaining > 0
    ORDER BY l.strategy_id, l.symbol, l.opened_at, l.id
    FOR UPDATE OF l
    """
)
_CLOSURE_COLUMNS = [
    ("lot_id", "bigint"),
    ("book_fill_id", "bigint"),
    ("quantity", "numeric"),
    ("cost_price", "numeric"),
    ("sale_price", "numeric"),
    ("realised_pnl", "numeric"),
]
# The lots' new remaining quantities and what closed them, in one statement.
_CLOSE_LOTS = statement(
    f"""
    WITH closures AS (
        {insert_rows("lot_closures", _CLOSURE_COLUMNS)}
    )
    UPDATE lots SET remaining = v.remaining
    FROM unnest(CAST(:lots AS bigint[]), CAST(:remaining AS numeric[])) AS v(id, remaining)
    WHERE lots.id = v.id
    """
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
            _OPEN_LOTS,
            {"books": [book for book, _ in pairs], "symbols": [symbol for _, symbol in pairs]},
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
            _CLOSE_LOTS,
            {
                "lots": lowered,
                "remaining": [remaining[lot_id] for lot_id in lowered],
                **arrays(_CLOSURE_COLUMNS, closures),
            },
        )
    return result


_ADD_TO_HOLDINGS = statement(
    """
    INSERT INTO book_holdings (strategy_id, symbol, quantity, cost_basis, realised_pnl)
    SELECT * FROM unnest(CAST(:books AS text[]), CAST(:symbols AS text[]),
        CAST(:quantities AS numeric[]), CAST(:costs AS numeric[]), CAST(:realised AS numeric[]))
    ON CONFLICT (strategy_id, symbol) DO UPDATE SET
        quantity = book_holdings.quantity + excluded.quantity,
        cost_basis = book_holdings.cost_basis + excluded.cost_basis,
        realised_pnl = book_holdings.realised_pnl + excluded.realised_pnl,
        updated_at = now()
    """
)
_FILL_CASH = statement(
    f"""
    WITH entries AS (
        INSERT INTO cash_entries (strategy_id, kind, amount, book_fill_id, run_id)
        SELECT strategy_id, '{CashKind.FILL.value}', amount, book_fill_id, run_id
        FROM unnest(CAST(:books AS text[]), CAST(:amounts AS numeric[]),
            CAST(:fills AS bigint[]), CAST(:runs AS bigint[]))
            AS v(strategy_id, amount, book_fill_id, run_id)
        ORDER BY book_fill_id
    )
    UPDATE strategies SET cash = strategies.cash + t.amount, updated_at = now()
    FROM unnest(CAST(:total_books AS text[]), CAST(:totals AS numeric[])) AS t(id, amount)
    WHERE strategies.id = t.id
    """
)


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
    rows = sorted(sums.items())
    await conn.execute(
        _ADD_TO_HOLDINGS,
        {
            "books": [book for (book, _), _ in rows],
            "symbols": [symbol for (_, symbol), _ in rows],
            "quantities": [q for _, (q, _, _) in rows],
            "costs": [c for _, (_, c, _) in rows],
            "realised": [r for _, (_, _, r) in rows],
        },
    )


async def _fill_cash(conn: AsyncConnection, cash: Sequence[tuple[Posting, int, Decimal]]) -> None:
    """Fills' cash entries, and each book's running cash, in one statement (rows locked)."""
    sums: dict[str, Decimal] = {}
    for fill, _, amount in cash:
        sums[fill.strategy_id] = add(sums.get(fill.strategy_id, ZERO), amount)
    totals = sorted(sums.items())
    await conn.execute(
        _FILL_CASH,
        {
            "books": [f.strategy_id for f, _, _ in cash],
            "amounts": [amount for _, _, amount in cash],
            "fills": [fill_id for _, fill_id, _ in cash],
            "runs": [f.run_id for f, _, _ in cash],
            "total_books": [book for book, _ in totals],
            "totals": [amount for _, amount in totals],
        },
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


_ADD_FILL_TOTALS = statement(
    """
    INSERT INTO run_fill_totals (run_id, book_fills, traded_value)
    VALUES (:run, :fills, CAST(:value AS numeric))
    ON CONFLICT (run_id) DO UPDATE SET
        book_fills = run_fill_totals.book_fills + excluded.book_fills,
        traded_value = run_fill_totals.traded_value + excluded.traded_value
    """
)


async def add_fill_totals(
    conn: AsyncConnection, run_id: int | None, fills: int, value: Decimal
) -> None:
    """Add to a run's fill totals: the last lock a booking takes (never the `runs` row)."""
    if run_id is None or not fills:
        return
    await conn.execute(_ADD_FILL_TOTALS, {"run": run_id, "fills": fills, "value": value})
