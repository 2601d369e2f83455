"""Orders: recorded before they are sent, found again by client order id."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from sqlalchemy import Boolean, func, literal_column, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.fills import book_parked
from alchemiser.books.models import BrokerOrder
from alchemiser.books.planner import Side
from alchemiser.books.runs import add_run_totals


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
        "fractionable": order.fractionable,
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
        await add_run_totals(conn, order.run_id, broker_orders=1)
        await book_parked(conn, order.client_order_id)
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
            fractionable=r.fractionable,
        )
        for r in rows
    ]
