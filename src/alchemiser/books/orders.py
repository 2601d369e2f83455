"""Orders: recorded before they are sent, adopted by client order id, status only forward.

The execution layer records each order (`pending_new`, committed) before sending
it, under the id `next_order` gives the walk's next step. An order found at the
broker after a crash is adopted under its run, found from its client order id's
natural key (`adopt_order`). Recording an order books what was parked for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.bulk import arrays, insert_rows, statement
from alchemiser.books.fills import book_parked, lock_client_order_id, lock_client_order_ids
from alchemiser.books.kinds import FINAL_RANK, ORDER_STATUS_RANK, status_moves_forward
from alchemiser.books.models import BrokerOrder, Run
from alchemiser.books.order_ids import client_order_id, parse_client_order_id
from alchemiser.books.planner import Side
from alchemiser.books.postings import LedgerError
from alchemiser.books.runs import add_run_totals
from alchemiser.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class OrderQuote:
    """The quote an order was priced from: its slippage and spread are measured from it."""

    bid: Decimal
    ask: Decimal
    at: datetime


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
    # Non-fractionable assets are split between books in whole shares.
    fractionable: bool = field(kw_only=True)
    # The client order id of the order this one replaced (a walk's earlier step).
    replaces: str | None = field(default=None, kw_only=True)
    reject_reason: str | None = field(default=None, kw_only=True)
    # The quote the order was priced from (walk-the-book records it with every step).
    quote: OrderQuote | None = field(default=None, kw_only=True)
    sent_at: datetime | None = field(default=None, kw_only=True)  # broker time


def _row(order: BrokerOrderRecord) -> dict[str, Any]:
    quote = order.quote
    return {
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
        "fractionable": order.fractionable,
        "replaces": order.replaces,
        "reject_reason": order.reject_reason,
        "quote_bid": quote.bid if quote else None,
        "quote_ask": quote.ask if quote else None,
        "quote_at": quote.at if quote else None,
        "sent_at": order.sent_at,
    }


_ORDER_COLUMNS = [
    ("client_order_id", "text"),
    ("run_id", "bigint"),
    ("symbol", "text"),
    ("side", "text"),
    ("step", "integer"),
    ("order_type", "text"),
    ("quantity", "numeric"),
    ("limit_price", "numeric"),
    ("status", "text"),
    ("alpaca_order_id", "text"),
    ("fractionable", "boolean"),
    ("replaces", "text"),
    ("reject_reason", "text"),
    ("quote_bid", "numeric"),
    ("quote_ask", "numeric"),
    ("quote_at", "timestamptz"),
    ("sent_at", "timestamptz"),
]
# New orders, their runs' counts and whether a fill was parked for them: one statement.
_INSERT_NEW_ORDERS = statement(
    f"""
    WITH new AS (
        {insert_rows("broker_orders", _ORDER_COLUMNS)}
        ON CONFLICT (client_order_id) DO NOTHING
        RETURNING client_order_id, id, run_id
    ), counted AS (
        UPDATE runs SET broker_orders = runs.broker_orders + n.orders
        FROM (SELECT run_id, count(*) AS orders FROM new GROUP BY run_id) AS n
        WHERE runs.id = n.run_id
    )
    SELECT new.client_order_id, new.id,
        EXISTS (SELECT FROM parked_fills p WHERE p.client_order_id = new.client_order_id)
    FROM new ORDER BY new.id
    """
)


async def record_new_orders(
    conn: AsyncConnection, orders: Sequence[BrokerOrderRecord]
) -> Sequence[int]:
    """Record many orders at once (walks stepping together); their row ids, in order.

    The fast path of `record_broker_order` for orders about to be sent: two
    statements for the whole batch. An id that exists already takes the slow path.
    """
    await lock_client_order_ids(conn, [o.client_order_id for o in orders])
    # After the locks (a new snapshot): a fill parked before them is seen here.
    inserted = await conn.execute(_INSERT_NEW_ORDERS, arrays(_ORDER_COLUMNS, map(_row, orders)))
    row_ids: dict[str, int] = {}
    for cid, row_id, parked in inserted:
        row_ids[cid] = row_id
        if parked:
            await book_parked(conn, cid)
    for order in orders:
        if order.client_order_id not in row_ids:
            row_ids[order.client_order_id] = await record_broker_order(conn, order)
    return [row_ids[o.client_order_id] for o in orders]


async def record_broker_order(conn: AsyncConnection, order: BrokerOrderRecord) -> int:
    """Insert an order, or update what the broker says of it (status only forward); its row id.

    A new order's parked fills (reported before it was recorded) are booked now.
    """
    await lock_client_order_id(conn, order.client_order_id)
    inserted: int | None = await conn.scalar(
        insert(BrokerOrder)
        .values(**_row(order))
        .on_conflict_do_nothing(index_elements=[BrokerOrder.client_order_id])
        .returning(BrokerOrder.id)
    )
    if inserted is not None:
        await add_run_totals(conn, order.run_id, broker_orders=1)
        await book_parked(conn, order.client_order_id)
        return inserted
    row = (
        await conn.execute(
            select(BrokerOrder.id, BrokerOrder.status, BrokerOrder.alpaca_order_id)
            .where(BrokerOrder.client_order_id == order.client_order_id)
            .with_for_update()
        )
    ).one()
    values: dict[str, Any] = {}
    if status_moves_forward(row.status, order.status):
        values["status"] = order.status
    if row.alpaca_order_id is None and order.alpaca_order_id is not None:
        values["alpaca_order_id"] = order.alpaca_order_id
    if order.reject_reason is not None:
        values["reject_reason"] = order.reject_reason
    if values:
        await conn.execute(
            update(BrokerOrder)
            .where(BrokerOrder.id == row.id)
            .values(**values, updated_at=func.now())
        )
    order_id: int = row.id
    return order_id


async def reject_orders(conn: AsyncConnection, rejections: Sequence[tuple[str, str]]) -> None:
    """Mark recorded orders rejected, (client order id, reason), unless already final.

    One statement for the batch; an order named twice keeps its first reason.
    """
    reasons: dict[str, str] = {}
    for cid, reason in rejections:
        reasons.setdefault(cid, reason)
    final = [status for status, rank in ORDER_STATUS_RANK.items() if rank >= FINAL_RANK]
    await conn.execute(
        text(
            "UPDATE broker_orders AS o SET status = 'rejected', reject_reason = r.reason,"
            " updated_at = now()"
            " FROM unnest(CAST(:ids AS text[]), CAST(:reasons AS text[])) AS r(cid, reason)"
            " WHERE o.client_order_id = r.cid AND o.status <> ALL(CAST(:final AS text[]))"
        ),
        {"ids": list(reasons), "reasons": list(reasons.values()), "final": final},
    )


async def next_order(
    conn: AsyncConnection, run_id: int, symbol: str, side: Side
) -> tuple[int, str]:
    """The walk's next step for (run, symbol, side), and that step's client order id."""
    run = (await conn.execute(select(Run.trading_day, Run.kind).where(Run.id == run_id))).one()
    last = await conn.scalar(
        select(func.max(BrokerOrder.step)).where(
            BrokerOrder.run_id == run_id, BrokerOrder.symbol == symbol, BrokerOrder.side == side
        )
    )
    step = 0 if last is None else last + 1
    return step, client_order_id(run.trading_day, run.kind, symbol, side, step)


async def next_steps(
    conn: AsyncConnection, run_id: int
) -> tuple[date, str, dict[tuple[str, str], int]]:
    """A run's trading day and kind, and each walk's next step: (symbol, side) → step.

    A walk not listed starts at `FIRST_STEP`. One query for all the run's walks.
    """
    run = (await conn.execute(select(Run.trading_day, Run.kind).where(Run.id == run_id))).one()
    rows = await conn.execute(
        select(BrokerOrder.symbol, BrokerOrder.side, func.max(BrokerOrder.step))
        .where(BrokerOrder.run_id == run_id)
        .group_by(BrokerOrder.symbol, BrokerOrder.side)
    )
    return run.trading_day, run.kind, {(sym, side): last + 1 for sym, side, last in rows}


async def adopt_order(conn: AsyncConnection, found: BrokerOrderRecord) -> int | None:
    """Record an order found at the broker under the run its client order id names.

    None when the id is not ours, or names a run this ledger does not have (a
    restored database): such an order is never attached to another run.
    """
    key = parse_client_order_id(found.client_order_id)
    if key is None:
        return None
    run_id = await conn.scalar(
        select(Run.id).where(Run.trading_day == key.trading_day, Run.kind == key.kind)
    )
    if run_id is None:
        log.warning("order at the broker names no run here", client_order_id=found.client_order_id)
        return None
    if (key.symbol, key.side) != (found.symbol, found.side):
        raise LedgerError(
            f"order {found.client_order_id} at the broker is {found.side} {found.symbol}"
        )
    return await record_broker_order(conn, replace(found, run_id=run_id, step=key.step))


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
            fractionable=r.fractionable,
            replaces=r.replaces,
            reject_reason=r.reject_reason,
        )
        for r in rows
    ]
