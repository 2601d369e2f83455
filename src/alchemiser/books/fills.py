"""Fills: broker executions and internal crosses, split among the books that asked.

A broker order is booked by its cumulative progress: under a row lock on the
order, `cumulative − already booked`, whichever of the trade-update stream
(`book_execution`) or a REST read-back (`book_order_progress`) reports it first.
An in-order stream execution is booked at its own price; a jump (missed
executions) at the price that makes the order's booked average the broker's. A
fill of one of our client order ids whose order row is missing is parked until
the order is recorded; a fill of an order that is not ours is reported
(`foreign_fills`), never absorbed into a book.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, String, bindparam, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.kinds import ExecutionKind, status_moves_forward
from alchemiser.books.models import BrokerOrder, ForeignFill, ParkedFill
from alchemiser.books.money import (
    PRICE_QUANTUM,
    QUANTITY_QUANTUM,
    WIDE,
    ZERO,
    add,
    floor_to,
    mul,
    quantum_for,
)
from alchemiser.books.netting import Cross, Share, cross_execution_id, split_execution
from alchemiser.books.order_ids import is_own_order
from alchemiser.books.planner import Side
from alchemiser.books.postings import (
    LedgerError,
    Posting,
    add_fill_totals,
    insert_execution,
    post_fills,
    utcnow,
)
from alchemiser.books.work import unfilled
from alchemiser.logging import get_logger
from alchemiser.settings import UNALLOCATED_BOOK

log = get_logger(__name__)


@dataclass(frozen=True)
class ExecutionReport:
    """One execution from the trade-update stream (event `fill` or `partial_fill`).

    `quantity`, `price`: this execution; `order_filled_quantity`,
    `order_average_price`: the order's cumulative `filled_qty` and
    `filled_avg_price` after it, as the same event reports them.
    """

    execution_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal
    executed_at: datetime
    client_order_id: str | None
    order_filled_quantity: Decimal
    order_average_price: Decimal | None = None
    # The order's status and Alpaca id after this execution (one write, not two).
    order_status: str | None = None
    alpaca_order_id: str | None = None


@dataclass(frozen=True)
class OrderProgress:
    """An order as read back over REST (`GET /v2/orders`): its cumulative progress."""

    client_order_id: str
    symbol: str
    side: Side
    filled_quantity: Decimal
    average_price: Decimal | None
    at: datetime
    status: str | None = None
    alpaca_order_id: str | None = None


@dataclass(frozen=True)
class BookedFill:
    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class _Report:
    """What both sources say, in one shape: cumulative progress, and the execution if known."""

    key: str
    client_order_id: str | None
    symbol: str
    side: Side
    cumulative: Decimal
    average: Decimal | None
    at: datetime
    execution: tuple[str, Decimal, Decimal] | None = None  # (id, quantity, price)
    status: str | None = None
    alpaca_order_id: str | None = None


async def book_cross(
    conn: AsyncConnection, run_id: int, cross: Cross, at: datetime | None = None
) -> list[BookedFill]:
    """Book an internal cross to every book on both sides; a replay books nothing."""
    at = at or utcnow()
    execution_id = cross_execution_id(run_id, cross.symbol)
    whole = Posting(execution_id, run_id, "", cross.symbol, "buy", cross.quantity, cross.price, at)
    if not await insert_execution(conn, whole, kind=ExecutionKind.CROSS, side=None):
        return []
    legs: list[tuple[str, Side, Decimal]] = [
        (s.strategy_id, "buy", s.quantity) for s in cross.buyers
    ]
    legs += [(s.strategy_id, "sell", s.quantity) for s in cross.sellers]
    await post_fills(
        conn,
        [
            Posting(execution_id, run_id, book, cross.symbol, side, quantity, cross.price, at)
            for book, side, quantity in legs
        ],
    )
    booked = [
        BookedFill(book, cross.symbol, side, quantity, cross.price)
        for book, side, quantity in sorted(legs)
    ]
    await _add_totals(conn, run_id, booked)
    return booked


async def book_execution(conn: AsyncConnection, report: ExecutionReport) -> list[BookedFill]:
    """Book a stream execution; a replay, or one a REST read-back already booked, books []."""
    return await _book(
        conn,
        _Report(
            report.execution_id,
            report.client_order_id,
            report.symbol,
            report.side,
            report.order_filled_quantity,
            report.order_average_price,
            report.executed_at,
            (report.execution_id, report.quantity, report.price),
            status=report.order_status,
            alpaca_order_id=report.alpaca_order_id,
        ),
    )


async def book_order_progress(conn: AsyncConnection, progress: OrderProgress) -> list[BookedFill]:
    """Book an order's cumulative progress read over REST (what the stream has not booked)."""
    return await _book(
        conn,
        _Report(
            f"{progress.client_order_id}@{_plain(progress.filled_quantity)}",
            progress.client_order_id,
            progress.symbol,
            progress.side,
            progress.filled_quantity,
            progress.average_price,
            progress.at,
            status=progress.status,
            alpaca_order_id=progress.alpaca_order_id,
        ),
    )


async def advance_orders(conn: AsyncConnection, reports: Sequence[OrderProgress]) -> list[None]:
    """Move many orders' statuses forward at once: reports that fill nothing new.

    An order's final status (replaced, cancelled) after every walk step is most of
    what a walk writes; one statement locks the batch's rows (in id order), one
    updates them. A report of an order not recorded here takes the full path.
    """
    ids = sorted({r.client_order_id for r in reports})
    rows = await conn.execute(
        select(
            BrokerOrder.id,
            BrokerOrder.client_order_id,
            BrokerOrder.status,
            BrokerOrder.filled_quantity,
        )
        .where(BrokerOrder.client_order_id.in_(ids))
        .order_by(BrokerOrder.id)
        .with_for_update()
    )
    rows_by_id = {r.client_order_id: r for r in rows}
    known = {cid: (r.id, r.status) for cid, r in rows_by_id.items()}
    changed: dict[int, dict[str, Any]] = {}
    for report in reports:
        row = rows_by_id.get(report.client_order_id)
        # Not recorded, or the ledger has less filled than the report says (a fill whose
        # booking failed): the full path, so no order is ever final without its fills.
        if row is None or report.filled_quantity > row.filled_quantity:
            await book_order_progress(conn, report)
            continue
        row_id, status = known[report.client_order_id]
        if report.status is not None and status_moves_forward(status, report.status):
            status = report.status
        elif report.alpaca_order_id is None:
            continue  # nothing new
        known[report.client_order_id] = (row_id, status)
        change = changed.setdefault(row_id, {"row_id": row_id, "alpaca_id": None})
        change["new_status"] = status
        change["alpaca_id"] = change["alpaca_id"] or report.alpaca_order_id
    if changed:
        await conn.execute(
            update(BrokerOrder)
            .where(BrokerOrder.id == bindparam("row_id"))
            .values(
                status=bindparam("new_status"),
                alpaca_order_id=func.coalesce(
                    BrokerOrder.alpaca_order_id, bindparam("alpaca_id", type_=String)
                ),
                updated_at=func.now(),
            ),
            list(changed.values()),
        )
    return [None] * len(reports)


async def book_parked(conn: AsyncConnection, client_order_id: str) -> list[BookedFill]:
    """Book the fills parked for an order that is now recorded (oldest progress first)."""
    rows = await conn.execute(
        delete(ParkedFill)
        .where(ParkedFill.client_order_id == client_order_id)
        .returning(ParkedFill)
    )
    booked = []
    for row in sorted(rows, key=lambda r: (r.cumulative_quantity, r.key)):
        execution = None
        if row.execution_id is not None and row.quantity is not None and row.price is not None:
            execution = (row.execution_id, row.quantity, row.price)
        report = _Report(
            row.key,
            client_order_id,
            row.symbol,
            row.side,
            row.cumulative_quantity,
            row.average_price,
            row.executed_at,
            execution,
        )
        booked += await _book(conn, report)
    return booked


async def foreign_fills(conn: AsyncConnection) -> Sequence[Row[Any]]:
    """Fills of orders that are not ours (manual trades), as reported: never in a book."""
    result = await conn.execute(select(ForeignFill).order_by(ForeignFill.executed_at))
    return result.all()


async def lock_client_order_id(conn: AsyncConnection, client_order_id: str) -> None:
    """Serialise everything done under one client order id until the transaction ends.

    Recording an order and booking its fill take this lock first, so a fill that
    races its order's (uncommitted) record waits for it instead of being parked
    after the record looked for parked fills.
    """
    await conn.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(client_order_id, 0)))
    )


async def _book(conn: AsyncConnection, report: _Report) -> list[BookedFill]:
    if report.client_order_id is not None:
        await lock_client_order_id(conn, report.client_order_id)
    order = await _lock_order(conn, report.client_order_id)
    if order is not None:
        return await _book_progress(conn, order, report)
    if is_own_order(report.client_order_id):
        await _park(conn, report)
    else:
        await _report_foreign(conn, report)
    return []


async def _lock_order(conn: AsyncConnection, client_order_id: str | None) -> Row[Any] | None:
    """The order's row, locked: concurrent bookings of one order run one after the other."""
    if client_order_id is None:
        return None
    result = await conn.execute(
        select(BrokerOrder).where(BrokerOrder.client_order_id == client_order_id).with_for_update()
    )
    return result.one_or_none()


async def _book_progress(
    conn: AsyncConnection, order: Row[Any], report: _Report
) -> list[BookedFill]:
    _check(order, report)
    await _advance(conn, order, report)
    delta = report.cumulative - order.filled_quantity
    if delta <= 0:
        return []
    price = _price_of(order, report, delta)
    execution_id = (
        report.execution[0]
        if report.execution
        else f"progress-{order.id}-{_plain(report.cumulative)}"
    )
    whole = Posting(
        execution_id, order.run_id, "", order.symbol, order.side, delta, price, report.at
    )
    if not await insert_execution(
        conn, whole, kind=ExecutionKind.BROKER, side=order.side, broker_order_id=order.id
    ):
        return []
    # Never booked past the order's quantity: what the broker reports beyond it is real,
    # so it is booked, to `unallocated`, and `ledger_problems` flags the order.
    within = min(delta, max(order.quantity - order.filled_quantity, ZERO))
    asks = await _remaining_asks(conn, order.run_id, order.symbol, order.side)
    pieces, excess = split_execution(within, asks, quantum_for(order.fractionable))
    excess += delta - within
    if excess > 0:
        log.warning(
            "fill beyond what books asked for, booked to unallocated",
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            quantity=str(excess),
        )
        pieces = _merge(pieces, Share(UNALLOCATED_BOOK, excess))
    pieces = sorted(pieces, key=lambda s: s.strategy_id)
    await post_fills(
        conn, [replace(whole, strategy_id=p.strategy_id, quantity=p.quantity) for p in pieces]
    )
    booked = [
        BookedFill(p.strategy_id, order.symbol, order.side, p.quantity, price) for p in pieces
    ]
    await conn.execute(
        update(BrokerOrder)
        .where(BrokerOrder.id == order.id)
        .values(
            filled_quantity=BrokerOrder.filled_quantity + delta,
            filled_value=BrokerOrder.filled_value + mul(delta, price),
            updated_at=func.now(),
        )
    )
    await _add_totals(conn, order.run_id, booked)
    return booked


async def _add_totals(conn: AsyncConnection, run_id: int | None, booked: list[BookedFill]) -> None:
    value = add(*(mul(f.quantity, f.price) for f in booked))
    await add_fill_totals(conn, run_id, len(booked), value)


async def _advance(conn: AsyncConnection, order: Row[Any], report: _Report) -> None:
    """Move the order's status forward (never back) and learn its Alpaca id."""
    values: dict[str, Any] = {}
    if report.status is not None and status_moves_forward(order.status, report.status):
        values["status"] = report.status
    if report.alpaca_order_id is not None and order.alpaca_order_id is None:
        values["alpaca_order_id"] = report.alpaca_order_id
    if values:
        await conn.execute(
            update(BrokerOrder)
            .where(BrokerOrder.id == order.id)
            .values(**values, updated_at=func.now())
        )


def _check(order: Row[Any], report: _Report) -> None:
    """A report must be of its order, on the 9-decimal step, at a positive price (fail closed)."""
    problems = []
    if (report.symbol, report.side) != (order.symbol, order.side):
        problems.append(f"is {report.side} {report.symbol}, the order {order.side} {order.symbol}")
    quantities = [report.cumulative] + ([report.execution[1]] if report.execution else [])
    if any(q < 0 or floor_to(q, QUANTITY_QUANTUM) != q for q in quantities):
        problems.append(f"has a quantity off the 1e-9 step: {quantities}")
    prices = [
        p
        for p in (report.average, report.execution[2] if report.execution else None)
        if p is not None
    ]
    if any(p <= 0 for p in prices):
        problems.append(f"has a price that is not positive: {prices}")
    if problems:
        raise LedgerError(
            f"fill {report.key} of order {order.client_order_id} " + "; ".join(problems)
        )


def _price_of(order: Row[Any], report: _Report, delta: Decimal) -> Decimal:
    """An in-order execution's own price, else the one making the booked average the broker's."""
    if report.execution is not None:
        _, quantity, price = report.execution
        if report.cumulative - quantity == order.filled_quantity:
            return price
    if report.average is None:
        if report.execution is None:
            raise LedgerError(f"progress of {order.client_order_id} has no average price")
        return report.execution[2]
    owed = mul(report.cumulative, report.average) - order.filled_value
    price = WIDE.divide(owed, delta).quantize(PRICE_QUANTUM, context=WIDE)
    # A broker average rounded coarsely against a tiny delta can make no sense: use it as is.
    return price if price > 0 else report.average


async def _park(conn: AsyncConnection, report: _Report) -> None:
    execution_id, quantity, price = report.execution or (None, None, None)
    await conn.execute(
        insert(ParkedFill)
        .values(
            key=report.key,
            client_order_id=report.client_order_id,
            execution_id=execution_id,
            symbol=report.symbol,
            side=report.side,
            quantity=quantity,
            price=price,
            cumulative_quantity=report.cumulative,
            average_price=report.average,
            executed_at=report.at,
        )
        .on_conflict_do_nothing(index_elements=[ParkedFill.key])
    )
    log.warning(
        "fill of an unrecorded own order parked until the order is known",
        client_order_id=report.client_order_id,
        symbol=report.symbol,
    )


async def _report_foreign(conn: AsyncConnection, report: _Report) -> None:
    """A fill that is not ours: kept for reconciliation to report, never booked."""
    if report.execution is not None:
        _, quantity, price = report.execution
    else:
        quantity, price = report.cumulative, report.average or ZERO
    inserted = await conn.scalar(
        insert(ForeignFill)
        .values(
            key=report.key,
            client_order_id=report.client_order_id,
            symbol=report.symbol,
            side=report.side,
            quantity=quantity,
            price=price,
            executed_at=report.at,
        )
        .on_conflict_do_nothing(index_elements=[ForeignFill.key])
        .returning(ForeignFill.key)
    )
    if inserted is not None:
        log.warning(
            "fill of an order that is not ours: reported, not booked",
            client_order_id=report.client_order_id,
            symbol=report.symbol,
            side=report.side,
            quantity=str(quantity),
        )


def _plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (10, 2.5)."""
    return f"{value.normalize():f}"


def _merge(pieces: list[Share], extra: Share) -> list[Share]:
    others = [p for p in pieces if p.strategy_id != extra.strategy_id]
    mine = sum((p.quantity for p in pieces if p.strategy_id == extra.strategy_id), ZERO)
    return [*others, Share(extra.strategy_id, mine + extra.quantity)]


async def _remaining_asks(
    conn: AsyncConnection, run_id: int | None, symbol: str, side: Side
) -> list[Share]:
    """Each book's intent in (run, symbol, side) minus what it has been filled so far."""
    if run_id is None:
        return []
    wants = await unfilled(conn, run_id, symbol=symbol, side=side, lock=True)
    return [Share(strategy_id, q) for (strategy_id, _, _), (q, _) in sorted(wants.items())]
