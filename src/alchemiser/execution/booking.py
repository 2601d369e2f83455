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
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.fills import execution_report, progress_report
from alchemiser.books.group_commit import GroupCommit
from alchemiser.books.halts import EVERYTHING, halts
from alchemiser.books.kinds import FINAL_RANK, ORDER_STATUS_RANK
from alchemiser.books.ledger import BrokerOrderRecord, ExecutionReport, OrderProgress, OrderQuote
from alchemiser.books.order_ids import FIRST_STEP, is_own_order
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
    the catch-up often repeat each other. The database stays the judge: a report
    that does get through is idempotent.

    One writer books everything, in the background: neither the stream nor a walk
    waits on the ledger (a walk reads fills from the broker's snapshots, not the
    books), and whatever arrives while a transaction is in flight is booked in the
    next one. `flush` waits for it all; the run flushes before it reads the books
    (after each phase, before reconciling). A report lost with the process is
    harmless: a resumed run reads every order back from the broker.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._booked: dict[str, tuple[str, Decimal]] = {}
        self._writer: GroupCommit[_Booking, None] = GroupCommit(
            engine, _book_many, "bookings", on_failure=self._forget
        )
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
        filled_more = order.filled_qty > filled_before
        self._writer.post(_Booking(_progress_of(order), fills=filled_more))
        self._booked[order.client_order_id] = self._seen(order)
        if filled_more and not from_stream:
            self.rest_filled_at = time.monotonic()
        return filled_more

    @staticmethod
    def _seen(order: OrderSnapshot) -> tuple[str, Decimal]:
        return (order.status, order.filled_qty)

    def _forget(self, booking: _Booking, _: BaseException) -> None:
        """A booking failed (and was logged): the next report of that order tries again."""
        self._booked.pop(str(booking.report.client_order_id), None)

    def rejected(self, client_order_id: str, reason: str) -> None:
        """An order recorded but refused by the broker, or never sent: final, with why."""
        self._writer.post(_Booking(_Rejection(client_order_id, reason), fills=False))

    async def flush(self) -> None:
        """Wait until everything reported so far is booked.

        Raises `PostedWriteFailed` if a booking failed since the last flush: the books
        would be read incomplete. The run stops there; the next run re-reads every
        order from the broker and books what is missing.
        """
        await self._writer.flush()

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
                order_status=event.order.status,
                alpaca_order_id=event.order.id,
            )
            self._writer.post(_Booking(report, fills=True))  # with the order's status
            self._booked[event.order.client_order_id] = self._seen(event.order)
            log.info(
                "fill received", symbol=report.symbol, qty=str(event.qty), price=str(event.price)
            )
        await self.progress(event.order, from_stream=True)  # what the event did not book

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
        await self.flush()
        foreign = sum(not is_own_order(o.client_order_id) for o in orders)
        log.info("orders caught up", orders=len(orders), missed=missed, foreign=foreign)
        return missed


class LedgerLink:
    """The ledger as one run's walks see it (a `WalkLedger`).

    One walk per (symbol, side) works a run in this process (the run lock), so the
    walks' next steps are read from the ledger once and counted here afterwards.
    Walks stepping together record their orders in one transaction (group commit);
    each still waits for its own record before sending.
    """

    def __init__(self, booker: Booker, run_id: int, fractionable: Collection[str]) -> None:
        self.booker = booker
        self.engine = booker.engine
        self.run_id = run_id
        self.fractionable = frozenset(fractionable)
        self._run_key: tuple[date, str] | None = None
        self._next: dict[tuple[str, str], int] = {}  # each walk's next step
        self._records: GroupCommit[StepOrder, BrokerOrderRecord] = GroupCommit(
            self.engine, self._record_many, f"orders-run-{run_id}"
        )

    async def record(self, order: StepOrder) -> str:
        await self.booker.accepting_orders.wait()
        record = await self._records.submit(order)
        self._next[(order.symbol, order.side)] = record.step + 1
        return record.client_order_id

    async def _record_many(
        self, conn: AsyncConnection, orders: Sequence[StepOrder]
    ) -> list[BrokerOrderRecord]:
        if EVERYTHING in await halts(conn):  # checked before every order, at once
            raise KillSwitch("new order", "trading is halted (alchemiser halt)")
        if self._run_key is None:
            day, kind, self._next = await ledger.next_steps(conn, self.run_id)
            self._run_key = (day, kind)
        records = [self._record_of(order, *self._run_key) for order in orders]
        await ledger.record_new_orders(conn, records)
        return records

    def _record_of(self, order: StepOrder, day: date, kind: str) -> BrokerOrderRecord:
        step = self._next.get((order.symbol, order.side), FIRST_STEP)
        quote = order.quote
        return BrokerOrderRecord(
            ledger.client_order_id(day, kind, order.symbol, order.side, step),
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
            quote=OrderQuote(quote.bid, quote.ask, quote.at) if quote else None,
            sent_at=order.at,
        )

    async def progress(self, order: OrderSnapshot) -> None:
        await self.booker.progress(order)

    async def rejected(self, client_order_id: str, reason: str) -> None:
        self.booker.rejected(client_order_id, reason)


@dataclass(frozen=True, slots=True)
class _Rejection:
    client_order_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class _Booking:
    report: ExecutionReport | OrderProgress | _Rejection
    fills: bool  # False: only the order's status moves


async def _book_many(conn: AsyncConnection, bookings: Sequence[_Booking]) -> list[None]:
    """Fills and statuses in one batch (cumulative progress: in any order, once), then refusals."""
    reports, refused = [], []
    for booking in bookings:
        report = booking.report
        if isinstance(report, ExecutionReport):
            reports.append(execution_report(report))
        elif isinstance(report, _Rejection):
            refused.append((report.client_order_id, report.reason))
        else:
            reports.append(progress_report(report, fills=booking.fills))
    if reports:
        await ledger.book_reports(conn, reports)
    if refused:
        await ledger.reject_orders(conn, refused)
    return [None] * len(bookings)


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
