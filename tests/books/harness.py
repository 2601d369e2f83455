"""A tiny broker and a run driver for ledger tests: plan → net → cross → sells → buys."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books import ledger
from alchemiser.books.ledger import BrokerOrderRecord, ExecutionReport, OrderProgress
from alchemiser.books.money import floor_to, quantum_for
from alchemiser.books.netting import NetOrder
from alchemiser.books.planner import Intent, Side
from alchemiser.settings import StrategyConfig

D = Decimal
_ids = itertools.count(1)


def strategy(id_: str, capital: str | None = None, allocation: str = "0") -> StrategyConfig:
    return StrategyConfig(
        id=id_,
        file=Path(f"/strategies/{id_}.clj"),
        allocation=D(allocation),
        capital=D(capital) if capital else None,
    )


@dataclass
class Broker:
    """The account as the broker sees it: cash and positions, changed only by its fills."""

    cash: Decimal
    positions: dict[str, Decimal] = field(default_factory=dict)
    # Each order's cumulative (filled quantity, filled value), as Alpaca reports progress.
    orders: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    # Each symbol's (shares, proceeds) sold since `sold_today` was last called.
    sells: dict[str, tuple[Decimal, Decimal]] = field(default_factory=dict)
    sold_all_day: dict[str, Decimal] = field(default_factory=dict)

    def fill(
        self, order: NetOrder, quantity: Decimal, price: Decimal, coid: str
    ) -> ExecutionReport:
        sign = 1 if order.side == "buy" else -1
        self.positions[order.symbol] = self.positions.get(order.symbol, D(0)) + sign * quantity
        self.cash -= sign * quantity * price
        if order.side == "sell":
            shares, proceeds = self.sells.get(order.symbol, (D(0), D(0)))
            self.sells[order.symbol] = (shares + quantity, proceeds + quantity * price)
            self.sold_all_day[order.symbol] = self.sold_all_day.get(order.symbol, D(0)) + quantity
        filled, value = self.orders.get(coid, (D(0), D(0)))
        self.orders[coid] = (filled + quantity, value + quantity * price)
        return ExecutionReport(
            execution_id=f"exec-{next(_ids)}",
            symbol=order.symbol,
            side=order.side,
            quantity=quantity,
            price=price,
            executed_at=datetime.now(UTC),
            client_order_id=coid,
            order_filled_quantity=filled + quantity,
            order_average_price=self.average(coid),
        )

    def sold_today(self) -> dict[str, tuple[Decimal, Decimal]]:
        """Symbols sold since the last call: (shares sold all day, proceeds since the call).

        The tests' simulated days all fall on today's date, so a fee's shares (the
        ledger compares them with the books' sells that day) add up over them.
        """
        sold = {s: (self.sold_all_day[s], p) for s, (_, p) in self.sells.items()}
        self.sells = {}
        return sold

    def progress(self, coid: str, symbol: str, side: Side) -> OrderProgress:
        """The order as `GET /v2/orders` reads it back: cumulative quantity and average."""
        filled, _ = self.orders[coid]
        return OrderProgress(
            coid, symbol, side, filled, self.average(coid), datetime.now(UTC), "partially_filled"
        )

    def average(self, coid: str) -> Decimal:
        """The order's average fill price, as the broker rounds it (to 1e-6)."""
        filled, value = self.orders[coid]
        return (value / filled).quantize(D("0.000001"))


class Crash(Exception):
    """The process dies here; what was booked so far stays booked."""


# Called after each step of a run: "crosses" once they are booked, then the side of
# each booked execution. A test's checkpoint raises `Crash` to stop the run there.
Checkpoint = Callable[[str], None]


def no_crash(step: str) -> None:
    return None


def crash_at(step: str, nth: int = 1) -> Checkpoint:
    """A checkpoint that crashes the run at the `nth` time it reaches `step`."""
    seen = itertools.count(1)

    def checkpoint(reached: str) -> None:
        if reached == step and next(seen) == nth:
            raise Crash(f"crashed at {step} #{nth}")

    return checkpoint


# How much of a net order fills, as fractions of it, one per execution.
FillPlan = Callable[[NetOrder], Sequence[Decimal]]


def fill_all(order: NetOrder) -> Sequence[Decimal]:
    return [D(1)]


# The price each execution of a net order fills at.
PricePlan = Callable[[NetOrder], Decimal]


def at_reference(order: NetOrder) -> Decimal:
    return order.reference_price


# A report of a fill as the ledger receives it: from the stream, or read back over REST.
Event = ExecutionReport | OrderProgress
# How an order's fills reach the ledger: given each execution as (stream event, REST
# snapshot after it), the events delivered, in delivery order.
Deliver = Callable[[Sequence[tuple[ExecutionReport, OrderProgress]]], Sequence[Event]]


def in_order(fills: Sequence[tuple[ExecutionReport, OrderProgress]]) -> Sequence[Event]:
    return [stream for stream, _ in fills]


async def book(conn: AsyncConnection, event: Event) -> list[ledger.BookedFill]:
    if isinstance(event, OrderProgress):
        return await ledger.book_order_progress(conn, event)
    return await ledger.book_execution(conn, event)


async def catch_up(conn: AsyncConnection, run_id: int, broker: Broker) -> None:
    """What a resumed run does first: read back each of its orders' progress and book it."""
    for order in await ledger.find_broker_orders(conn, run_id):
        if order.client_order_id in broker.orders:
            await ledger.book_order_progress(
                conn, broker.progress(order.client_order_id, order.symbol, order.side)
            )


async def send(
    conn: AsyncConnection,
    run_id: int,
    order: NetOrder,
    broker: Broker,
    fractions: Sequence[Decimal],
    fractionable: Collection[str] | None,
    price: Decimal | None = None,
    checkpoint: Checkpoint = no_crash,
    deliver: Deliver = in_order,
) -> list[ExecutionReport]:
    """Record the order, fill it in pieces at `price` (default: reference), deliver the fills."""
    # A resumed run sends what is left as the walk's next step: a new client order id.
    step, coid = await ledger.next_order(conn, run_id, order.symbol, order.side)
    is_fractionable = fractionable is None or order.symbol in fractionable
    await ledger.record_broker_order(
        conn,
        BrokerOrderRecord(
            coid,
            run_id,
            order.symbol,
            order.side,
            step,
            "limit",
            order.quantity,
            "pending_new",
            fractionable=is_fractionable,
        ),
    )
    quantum = quantum_for(is_fractionable)
    left = order.quantity
    fills = []
    for fraction in fractions:
        quantity = min(left, floor_to(order.quantity * fraction, quantum))
        if quantity <= 0:
            continue
        left -= quantity
        report = broker.fill(order, quantity, price or order.reference_price, coid)
        fills.append((report, broker.progress(coid, order.symbol, order.side)))
    for event in deliver(fills):
        await book(conn, event)
        checkpoint(order.side)
    return [report for report, _ in fills]


async def execute_run(
    conn: AsyncConnection,
    run_id: int,
    intents: Sequence[Intent],
    broker: Broker,
    fills: FillPlan = fill_all,
    fractionable: Collection[str] | None = None,
    prices: PricePlan = at_reference,
    headroom: Decimal = ledger.DEFAULT_BUY_HEADROOM,
    checkpoint: Checkpoint = no_crash,
    deliver: Deliver = in_order,
) -> list[ExecutionReport]:
    """The daily run's trading half, as the execution issue will drive it.

    Calling it again for the same run (a restart after a `Crash`) does what is left:
    it first books what its orders did meanwhile, read back from the broker.
    """
    await catch_up(conn, run_id, broker)
    plan = await ledger.record_plan(conn, run_id, intents, "inputs")
    if fractionable is None:  # every symbol of the plan
        fractionable = {i.symbol for i in plan}
    work = await ledger.net_run(conn, run_id, fractionable=fractionable)
    for cross in work.crosses:
        await ledger.book_cross(conn, run_id, cross)
    checkpoint("crosses")
    reports = []
    for order in work.orders:
        if order.side == "sell":
            reports += await send(
                conn,
                run_id,
                order,
                broker,
                fills(order),
                fractionable,
                prices(order),
                checkpoint,
                deliver,
            )
    for order in await ledger.affordable_buy_orders(
        conn, run_id, fractionable=fractionable, headroom=headroom
    ):
        reports += await send(
            conn,
            run_id,
            order,
            broker,
            fills(order),
            fractionable,
            prices(order),
            checkpoint,
            deliver,
        )
    return reports
