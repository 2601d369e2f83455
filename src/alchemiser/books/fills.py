"""Fills: broker executions and internal crosses, split among the books that asked."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from decimal import Decimal

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.kinds import ExecutionKind
from alchemiser.books.models import BrokerOrder
from alchemiser.books.money import QUANTITY_QUANTUM, WHOLE_SHARE, ZERO, add, mul
from alchemiser.books.netting import Cross, Share, cross_execution_id, split_execution
from alchemiser.books.planner import Side
from alchemiser.books.postings import Posting, insert_execution, post_fill, utcnow
from alchemiser.books.runs import add_run_totals
from alchemiser.books.work import unfilled
from alchemiser.logging import get_logger
from alchemiser.settings import UNALLOCATED_BOOK

log = get_logger(__name__)


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
    booked = []
    for strategy_id, side, quantity in sorted(legs):
        fill = Posting(
            execution_id, run_id, strategy_id, cross.symbol, side, quantity, cross.price, at
        )
        await post_fill(conn, fill)
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
    whole = Posting(
        report.execution_id,
        run_id,
        "",
        report.symbol,
        report.side,
        report.quantity,
        report.price,
        report.executed_at,
    )
    if not await insert_execution(
        conn, whole, kind=ExecutionKind.BROKER, side=report.side, broker_order_id=order_id
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
        await post_fill(
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
    await add_run_totals(conn, run_id, book_fills=len(booked), traded_value=value)


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
    wants = await unfilled(conn, run_id, symbol=symbol, side=side, lock=True)
    return [Share(strategy_id, q) for (strategy_id, _, _), (q, _) in sorted(wants.items())]
