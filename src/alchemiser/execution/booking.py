"""The execution layer's one door into the ledger: record, book, catch up.

Every write is one short transaction through `retry.transact` (a deadlock victim is
run again). Orders are recorded (`pending_new`, committed) before they are sent.
Fills are booked by the order's cumulative progress, from whichever source reports
it first: a stream execution (keyed by its execution id), an order snapshot from a
REST answer, or the catch-up after every (re)connect. All are idempotent, so the
same fill reported three ways is booked once.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.ledger import BrokerOrderRecord, ExecutionReport, OrderProgress
from alchemiser.books.order_ids import is_own_order
from alchemiser.books.retry import transact
from alchemiser.execution.broker import Broker, OrderSnapshot
from alchemiser.execution.stream import TradeEvent
from alchemiser.execution.walk import StepOrder
from alchemiser.logging import get_logger

log = get_logger(__name__)

FILL_EVENTS = frozenset({"fill", "partial_fill"})


class LedgerLink:
    """The ledger as one run's walks and its trade stream see it (a `WalkLedger`)."""

    def __init__(self, engine: AsyncEngine, run_id: int, fractionable: Collection[str]) -> None:
        self.engine = engine
        self.run_id = run_id
        self.fractionable = frozenset(fractionable)

    async def record(self, order: StepOrder) -> str:
        async def write(conn: AsyncConnection) -> str:
            step, client_order_id = await ledger.next_order(
                conn, self.run_id, order.symbol, order.side
            )
            await ledger.record_broker_order(
                conn,
                BrokerOrderRecord(
                    client_order_id,
                    self.run_id,
                    order.symbol,
                    order.side,
                    step,
                    "market" if order.limit_price is None else "limit",
                    order.qty,
                    "pending_new",
                    order.limit_price,
                    fractionable=order.symbol in self.fractionable,
                    replaces=order.replaces,
                ),
            )
            return client_order_id

        return await transact(self.engine, write)

    async def progress(self, order: OrderSnapshot) -> None:
        await _book_progress(self.engine, _progress_of(order))

    async def rejected(self, client_order_id: str, reason: str) -> None:
        async def write(conn: AsyncConnection) -> None:
            for order in await ledger.find_broker_orders(conn, self.run_id):
                if order.client_order_id == client_order_id:
                    await ledger.record_broker_order(conn, _with_status(order, "rejected", reason))

        await transact(self.engine, write)


async def book_event(engine: AsyncEngine, event: TradeEvent) -> None:
    """Book a trade update: an execution by its id, anything else by order progress."""
    if event.event in FILL_EVENTS and event.execution_id and event.qty and event.price:
        report = ExecutionReport(
            execution_id=event.execution_id,
            symbol=event.order.symbol,
            side=event.order.side,
            quantity=event.qty,
            price=event.price,
            executed_at=event.at,
            client_order_id=event.order.client_order_id,
            order_filled_quantity=event.order.filled_qty,
            order_average_price=event.order.filled_avg_price,
        )

        async def write(conn: AsyncConnection) -> None:
            await ledger.book_execution(conn, report)

        await transact(engine, write)
    await _book_progress(engine, _progress_of(event.order))  # its status, and any progress


async def catch_up(engine: AsyncEngine, broker: Broker, since: datetime) -> int:
    """Book every order submitted since `since` by its progress at the broker.

    Run after every (re)connect of the stream and on a timer while walks are live:
    Alpaca never replays what the stream missed. Orders that are not ours are
    booked too, so the ledger reports them (never into a book). Returns how many
    orders were read.
    """
    orders = await broker.orders("all", since)
    for order in orders:
        if is_own_order(order.client_order_id) or order.filled_qty > 0:
            await _book_progress(engine, _progress_of(order))
    foreign = sum(not is_own_order(o.client_order_id) for o in orders)
    log.info("orders caught up", orders=len(orders), foreign=foreign)
    return len(orders)


async def _book_progress(engine: AsyncEngine, progress: OrderProgress) -> None:
    async def write(conn: AsyncConnection) -> None:
        await ledger.book_order_progress(conn, progress)

    await transact(engine, write)


def _progress_of(order: OrderSnapshot) -> OrderProgress:
    return OrderProgress(
        client_order_id=order.client_order_id,
        symbol=order.symbol,
        side=order.side,
        filled_quantity=order.filled_qty,
        average_price=order.filled_avg_price,
        at=order.updated_at or datetime.now(UTC),
        status=order.status,
        alpaca_order_id=order.id,
    )


def _with_status(order: BrokerOrderRecord, status: str, reason: str) -> BrokerOrderRecord:
    return replace(order, status=status, reject_reason=reason)
