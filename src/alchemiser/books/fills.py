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
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Row, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.bulk import statement
from alchemiser.books.fill_batch import BookedFill, Report, book_on_orders, plain
from alchemiser.books.kinds import ExecutionKind
from alchemiser.books.models import ForeignFill, ParkedFill
from alchemiser.books.money import ZERO, add, mul
from alchemiser.books.netting import Cross, cross_execution_id
from alchemiser.books.order_ids import is_own_order
from alchemiser.books.planner import Side
from alchemiser.books.postings import (
    Posting,
    add_fill_totals,
    insert_execution,
    post_fills,
    utcnow,
)
from alchemiser.logging import get_logger

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


# The orders of a batch, locked in id order: what they are and what is booked of them.
_LOCK_ORDERS = statement(
    """
    SELECT id, client_order_id, run_id, symbol, side, quantity, fractionable, status,
        alpaca_order_id, filled_quantity, filled_value
    FROM broker_orders WHERE client_order_id = ANY(CAST(:ids AS text[]))
    ORDER BY id FOR UPDATE
    """
)


async def book_cross(
    conn: AsyncConnection, run_id: int, cross: Cross, at: datetime | None = None
) -> list[BookedFill]:
    """Book an internal cross to every book on both sides; a replay books nothing."""
    at = at or utcnow()
    execution_id = cross_execution_id(run_id, cross.symbol)
    whole = Posting(execution_id, run_id, "", cross.symbol, "buy", cross.quantity, cross.price, at)
    if not await insert_execution(conn, whole, kind=ExecutionKind.CROSS, side=None):
        return []
    # Sells, then buys, each side by book: the order their rows are written in.
    legs: list[tuple[str, Side, Decimal]] = sorted(
        (s.strategy_id, "sell", s.quantity) for s in cross.sellers
    )
    legs += sorted((s.strategy_id, "buy", s.quantity) for s in cross.buyers)
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
    value = add(*(mul(f.quantity, f.price) for f in booked))
    await add_fill_totals(conn, run_id, len(booked), value)
    return booked


async def book_execution(conn: AsyncConnection, report: ExecutionReport) -> list[BookedFill]:
    """Book a stream execution; a replay, or one a REST read-back already booked, books []."""
    return (await book_reports(conn, [execution_report(report)]))[0]


async def book_order_progress(conn: AsyncConnection, progress: OrderProgress) -> list[BookedFill]:
    """Book an order's cumulative progress read over REST (what the stream has not booked)."""
    return (await book_reports(conn, [progress_report(progress)]))[0]


async def advance_orders(conn: AsyncConnection, reports: Sequence[OrderProgress]) -> list[None]:
    """Move many orders' statuses forward at once: reports that fill nothing new.

    An order's final status (replaced, cancelled) after every walk step is most of
    what a walk writes. A report that says more was filled than the ledger has (a
    fill whose booking failed) books it, so no order is ever final without its fills.
    """
    await book_reports(conn, [progress_report(r, fills=False) for r in reports])
    return [None] * len(reports)


def execution_report(report: ExecutionReport) -> Report:
    return Report(
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
    )


def progress_report(progress: OrderProgress, *, fills: bool = True) -> Report:
    """`fills` False: a status report (booked only if it says more was filled)."""
    return Report(
        f"{progress.client_order_id}@{plain(progress.filled_quantity)}",
        progress.client_order_id,
        progress.symbol,
        progress.side,
        progress.filled_quantity,
        progress.average_price,
        progress.at,
        status=progress.status,
        alpaca_order_id=progress.alpaca_order_id,
        fills=fills,
    )


async def book_reports(conn: AsyncConnection, reports: Sequence[Report]) -> list[list[BookedFill]]:
    """Book many reports in one go, in order (see `fill_batch`); each report's fills.

    Every client order id is locked first, then every recorded order's row (in id
    order). A report of an own order not recorded yet is parked; one of an order
    that is not ours is reported, never booked.
    """
    ids = sorted({r.client_order_id for r in reports if r.client_order_id is not None})
    await lock_client_order_ids(conn, ids)
    rows = {}
    if ids:
        rows = {row.client_order_id: row for row in await conn.execute(_LOCK_ORDERS, {"ids": ids})}
    known = [i for i, r in enumerate(reports) if r.client_order_id in rows]
    booked = await book_on_orders(conn, rows, [reports[i] for i in known])
    results: list[list[BookedFill]] = [[] for _ in reports]
    for i, fills in zip(known, booked, strict=True):
        results[i] = fills
    for report in reports:
        if report.client_order_id in rows:
            continue
        if is_own_order(report.client_order_id):
            await _park(conn, report)
        else:
            await _report_foreign(conn, report)
    return results


async def book_parked(conn: AsyncConnection, client_order_id: str) -> list[BookedFill]:
    """Book the fills parked for an order that is now recorded (oldest progress first)."""
    rows = await conn.execute(
        delete(ParkedFill)
        .where(ParkedFill.client_order_id == client_order_id)
        .returning(ParkedFill)
    )
    reports = []
    for row in sorted(rows, key=lambda r: (r.cumulative_quantity, r.key)):
        execution = None
        if row.execution_id is not None and row.quantity is not None and row.price is not None:
            execution = (row.execution_id, row.quantity, row.price)
        reports.append(
            Report(
                row.key,
                client_order_id,
                row.symbol,
                row.side,
                row.cumulative_quantity,
                row.average_price,
                row.executed_at,
                execution,
            )
        )
    return [fill for fills in await book_reports(conn, reports) for fill in fills]


async def foreign_fills(conn: AsyncConnection) -> Sequence[Row[Any]]:
    """Fills of orders that are not ours (manual trades), as reported: never in a book."""
    result = await conn.execute(select(ForeignFill).order_by(ForeignFill.executed_at))
    return result.all()


async def lock_client_order_ids(conn: AsyncConnection, client_order_ids: Sequence[str]) -> None:
    """`lock_client_order_id` of many ids, in one statement (sorted: no deadlock between two)."""
    if client_order_ids:
        await conn.execute(
            text(
                "SELECT pg_advisory_xact_lock(hashtextextended(cid, 0)) "
                "FROM unnest(CAST(:ids AS text[])) AS cid ORDER BY cid"
            ),
            {"ids": sorted(client_order_ids)},
        )


async def lock_client_order_id(conn: AsyncConnection, client_order_id: str) -> None:
    """Serialise everything done under one client order id until the transaction ends.

    Recording an order and booking its fill take this lock first, so a fill that
    races its order's (uncommitted) record waits for it instead of being parked
    after the record looked for parked fills.
    """
    await conn.execute(
        select(func.pg_advisory_xact_lock(func.hashtextextended(client_order_id, 0)))
    )


async def _park(conn: AsyncConnection, report: Report) -> None:
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


async def _report_foreign(conn: AsyncConnection, report: Report) -> None:
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
