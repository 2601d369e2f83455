"""The execution layer's one door into the ledger: record, book, catch up.

Every write is one short transaction through `retry.transact` (a deadlock victim is
run again). Orders are recorded (`pending_new`, committed) before they are sent.
Fills are booked by the order's cumulative progress, from whichever source reports
it first: a stream execution (keyed by its execution id), an order snapshot from a
REST answer, or the catch-up after every (re)connect. All are idempotent, so the
same fill reported three ways is booked once.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Collection
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.halts import EVERYTHING, halts
from alchemiser.books.kinds import FINAL_RANK, ORDER_STATUS_RANK
from alchemiser.books.ledger import BrokerOrderRecord, ExecutionReport, OrderProgress
from alchemiser.books.order_ids import OrderKey, is_own_order, parse_client_order_id
from alchemiser.books.retry import transact
from alchemiser.execution.broker import Broker, OrderSnapshot
from alchemiser.execution.errors import KillSwitch
from alchemiser.execution.stream import TradeEvent
from alchemiser.execution.walk import StepOrder
from alchemiser.logging import get_logger

log = get_logger(__name__)

FILL_EVENTS = frozenset({"fill", "partial_fill"})


class Booker:
    """Books trade updates and order snapshots, once, for the whole process.

    It remembers the (status, filled quantity) it last booked for each order and
    skips a report that says nothing new: the stream, the walk's REST answers and
    the catch-up often repeat each other, and every booking is a transaction.
    The database stays the judge: a report that does get through is idempotent.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._booked: dict[str, tuple[str, Decimal]] = {}
        # When a REST read (not the stream) last found fills: a stream that stays
        # quiet after it is silent (half-open), and is reconnected.
        self.rest_filled_at: float | None = None
        # Cleared by a stopping daemon: a walk that would send a new order waits here
        # (its intents stay open for the resumed run) until the daemon cancels it.
        self.accepting_orders = asyncio.Event()
        self.accepting_orders.set()

    async def progress(self, order: OrderSnapshot, *, from_stream: bool = False) -> bool:
        """Book an order's progress when it filled more or reached a final status.

        Passing states (pending_new, new, pending_replace, ...) are not written one
        by one: the final status says how the order ended, and a resumed run asks
        the broker about every order that has none yet. True when it filled more
        than this process had booked.
        """
        booked = self._booked.get(order.client_order_id)
        filled_before = booked[1] if booked else Decimal(0)
        if booked == (order.status, order.filled_qty) or (
            order.filled_qty == filled_before and not is_final(order.status)
        ):
            return False
        progress = _progress_of(order)

        async def write(conn: AsyncConnection) -> None:
            await ledger.book_order_progress(conn, progress)

        await transact(self.engine, write)
        self._booked[order.client_order_id] = self._seen(order)
        filled_more = order.filled_qty > filled_before
        if filled_more and not from_stream:
            self.rest_filled_at = time.monotonic()
        return filled_more

    @staticmethod
    def _seen(order: OrderSnapshot) -> tuple[str, Decimal]:
        return (order.status, order.filled_qty)

    async def event(self, event: TradeEvent) -> None:
        """A trade update: an execution by its execution id, then the order's progress."""
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

            await transact(self.engine, write)
        await self.progress(
            event.order, from_stream=True
        )  # its status, and any progress the event did not book

    async def catch_up(self, broker: Broker, since: datetime) -> int:
        """Book every order submitted since `since` by its progress at the broker.

        Run after every (re)connect of the stream and on a timer while walks are
        live: Alpaca never replays what the stream missed. Orders that are not ours
        and filled are booked too, so the ledger reports them (never into a book).
        Returns how many orders had fills this process had not booked.
        """
        orders = await broker.orders("all", since)
        missed = 0
        for order in orders:
            if is_own_order(order.client_order_id) or order.filled_qty > 0:
                missed += await self.progress(order)
        foreign = sum(not is_own_order(o.client_order_id) for o in orders)
        log.info("orders caught up", orders=len(orders), missed=missed, foreign=foreign)
        return missed


class LedgerLink:
    """The ledger as one run's walks see it (a `WalkLedger`).

    One walk per (symbol, side) works a run in this process (the run lock), so the
    next step of each is read from the ledger once and counted here afterwards.
    """

    def __init__(self, booker: Booker, run_id: int, fractionable: Collection[str]) -> None:
        self.booker = booker
        self.engine = booker.engine
        self.run_id = run_id
        self.fractionable = frozenset(fractionable)
        self._next: dict[tuple[str, str], OrderKey] = {}  # each walk's next step
        self._recorded: dict[str, BrokerOrderRecord] = {}

    async def record(self, order: StepOrder) -> str:
        await self.booker.accepting_orders.wait()

        async def write(conn: AsyncConnection) -> BrokerOrderRecord:
            if EVERYTHING in await halts(conn):  # checked before every order, at once
                raise KillSwitch("new order", "trading is halted (alchemiser halt)")
            key = await self._next_step(conn, order)
            client_order_id = ledger.client_order_id(
                key.trading_day, key.kind, order.symbol, order.side, key.step
            )
            record = BrokerOrderRecord(
                client_order_id,
                self.run_id,
                order.symbol,
                order.side,
                key.step,
                "market" if order.limit_price is None else "limit",
                order.qty,
                "pending_new",
                order.limit_price,
                fractionable=order.symbol in self.fractionable,
                replaces=order.replaces,
            )
            await ledger.record_broker_order(conn, record)
            return record

        record = await transact(self.engine, write)
        walk = (order.symbol, order.side)
        self._next[walk] = replace(self._next[walk], step=record.step + 1)
        self._recorded[record.client_order_id] = record
        return record.client_order_id

    async def _next_step(self, conn: AsyncConnection, order: StepOrder) -> OrderKey:
        walk = (order.symbol, order.side)
        if walk not in self._next:
            _, client_order_id = await ledger.next_order(
                conn, self.run_id, order.symbol, order.side
            )
            key = parse_client_order_id(client_order_id)
            assert key is not None  # next_order makes our own ids
            self._next[walk] = key
        return self._next[walk]

    async def progress(self, order: OrderSnapshot) -> None:
        await self.booker.progress(order)

    async def rejected(self, client_order_id: str, reason: str) -> None:
        async def write(conn: AsyncConnection) -> None:
            record = self._recorded.get(client_order_id)
            records = [record] if record else await ledger.find_broker_orders(conn, self.run_id)
            for found in records:
                if found.client_order_id == client_order_id:
                    await ledger.record_broker_order(conn, _with_status(found, "rejected", reason))

        await transact(self.engine, write)


def is_final(status: str) -> bool:
    return ORDER_STATUS_RANK.get(status, 1) >= FINAL_RANK


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
