"""Booking many reports of recorded orders at once: a few statements for a whole batch.

The same rules as one report at a time (`fills`), applied in order to the batch:
each order's row is locked, and what it has booked (quantity, value, status) is
carried forward in memory from report to report, so the second report of an order
in a batch sees what the first booked. Execution ids already booked are read once,
each (run, symbol, side)'s remaining asks are locked and read once and lowered in
memory as fills are split, and everything is written at the end in one statement
per table.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.bulk import arrays, insert_rows, statement
from alchemiser.books.kinds import ExecutionKind, status_moves_forward
from alchemiser.books.money import (
    EXACT,
    PRICE_QUANTUM,
    QUANTITY_QUANTUM,
    WIDE,
    ZERO,
    add,
    floor_to,
    mul,
    quantum_for,
)
from alchemiser.books.netting import Share, split_execution
from alchemiser.books.planner import Side
from alchemiser.books.postings import LedgerError, Posting, add_fill_totals, post_fills
from alchemiser.books.work import unfilled_groups
from alchemiser.logging import get_logger
from alchemiser.settings import UNALLOCATED_BOOK

log = get_logger(__name__)

Group = tuple[int, str, str]  # (run, symbol, side): one net order's intents


_BOOKED_IDS = statement(
    "SELECT execution_id FROM executions WHERE execution_id = ANY(CAST(:ids AS text[]))"
)
_EXECUTION_COLUMNS = [
    ("execution_id", "text"),
    ("kind", "text"),
    ("run_id", "bigint"),
    ("broker_order_id", "bigint"),
    ("symbol", "text"),
    ("side", "text"),
    ("quantity", "numeric"),
    ("price", "numeric"),
    ("executed_at", "timestamptz"),
]
_INSERT_EXECUTIONS = statement(
    f"""
    {insert_rows("executions", _EXECUTION_COLUMNS)}
    ON CONFLICT (execution_id) DO NOTHING RETURNING execution_id
    """
)
# What each order has booked, its status and Alpaca id (the rows are locked).
_UPDATE_ORDERS = statement(
    """
    UPDATE broker_orders AS o SET status = v.status,
        alpaca_order_id = v.alpaca_order_id, filled_quantity = v.quantity,
        filled_value = v.value, updated_at = now()
    FROM unnest(CAST(:ids AS bigint[]), CAST(:statuses AS text[]),
        CAST(:alpaca_ids AS text[]), CAST(:quantities AS numeric[]), CAST(:values AS numeric[]))
        AS v(id, status, alpaca_order_id, quantity, value)
    WHERE o.id = v.id
    """
)


@dataclass(frozen=True)
class BookedFill:
    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    price: Decimal


@dataclass(frozen=True)
class Report:
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
    # False: a status report; it is checked and books only if it says more was filled.
    fills: bool = True


@dataclass
class _Order:
    """A locked order row, as the batch has booked it so far."""

    row: Any
    filled_quantity: Decimal
    filled_value: Decimal
    status: str
    alpaca_order_id: str | None
    changed: bool = False

    @property
    def group(self) -> Group | None:
        row = self.row
        return None if row.run_id is None else (row.run_id, row.symbol, row.side)


@dataclass
class _Batch:
    """What the batch will write, gathered report by report."""

    asks: dict[Group, dict[str, Decimal]]
    booked_ids: set[str]
    executions: list[dict[str, Any]] = field(default_factory=list)
    postings: list[Posting] = field(default_factory=list)
    totals: dict[int, tuple[int, Decimal]] = field(default_factory=dict)


async def book_on_orders(
    conn: AsyncConnection, rows: Mapping[str, Any], reports: Sequence[Report]
) -> list[list[BookedFill]]:
    """Book reports of orders whose rows are locked (`rows`: client order id → row).

    Fill reports first, then status reports, each in the order given (a status
    report is written after the fills, as a late echo). Returns each report's fills.
    """
    orders = {
        cid: _Order(row, row.filled_quantity, row.filled_value, row.status, row.alpaca_order_id)
        for cid, row in rows.items()
    }
    batch = await _prepare(conn, orders, reports)
    results: list[list[BookedFill]] = [[] for _ in reports]
    for i in sorted(range(len(reports)), key=lambda i: not reports[i].fills):
        report = reports[i]
        results[i] = _book_one(orders[str(report.client_order_id)], report, batch)
    await _write(conn, orders, batch)
    return results


async def _prepare(
    conn: AsyncConnection, orders: Mapping[str, _Order], reports: Sequence[Report]
) -> _Batch:
    """Execution ids already booked, and the asks of every order that may fill (locked)."""
    filling = [
        (orders[str(r.client_order_id)], r)
        for r in reports
        if r.cumulative > orders[str(r.client_order_id)].filled_quantity
    ]
    if not filling:
        return _Batch({}, set())
    ids = sorted({_execution_id(order, report) for order, report in filling})
    booked = await conn.scalars(_BOOKED_IDS, {"ids": ids})
    groups = sorted({g for order, _ in filling if (g := order.group) is not None})
    return _Batch(await unfilled_groups(conn, groups), set(booked))


def _execution_id(order: _Order, report: Report) -> str:
    if report.execution is not None:
        return report.execution[0]
    return f"progress-{order.row.id}-{plain(report.cumulative)}"


def _book_one(order: _Order, report: Report, batch: _Batch) -> list[BookedFill]:
    """One report, as `fills` books it: check, status forward, then what it adds."""
    row = order.row
    delta = report.cumulative - order.filled_quantity
    if report.fills or delta > 0:
        check(row, report)
    _advance(order, report)
    if delta <= 0:
        return []
    price = _price_of(order, report, delta)
    execution_id = _execution_id(order, report)
    if execution_id in batch.booked_ids:
        return []  # a replay, or booked under another report's id
    batch.booked_ids.add(execution_id)
    batch.executions.append(
        {
            "execution_id": execution_id,
            "kind": ExecutionKind.BROKER.value,
            "run_id": row.run_id,
            "broker_order_id": row.id,
            "symbol": row.symbol,
            "side": row.side,
            "quantity": delta,
            "price": price,
            "executed_at": report.at,
        }
    )
    pieces = _split(order, delta, batch)
    run_id, symbol, side, at = row.run_id, row.symbol, row.side, report.at
    batch.postings += [
        Posting(execution_id, run_id, p.strategy_id, symbol, side, p.quantity, price, at)
        for p in pieces
    ]
    order.filled_quantity += delta
    order.filled_value = add(order.filled_value, mul(delta, price))
    order.changed = True
    booked = [BookedFill(p.strategy_id, row.symbol, row.side, p.quantity, price) for p in pieces]
    if row.run_id is not None:
        count, value = batch.totals.get(row.run_id, (0, ZERO))
        value = add(value, *(mul(f.quantity, f.price) for f in booked))
        batch.totals[row.run_id] = (count + len(booked), value)
    return booked


def _split(order: _Order, delta: Decimal, batch: _Batch) -> list[Share]:
    """Pro rata to what each book still asks (largest remainder); beyond it, `unallocated`.

    Never booked past the order's quantity: what the broker reports beyond it is real,
    so it is booked, to `unallocated`, and `ledger_problems` flags the order.
    """
    row = order.row
    within = min(delta, max(row.quantity - order.filled_quantity, ZERO))
    group = order.group
    asks = batch.asks.get(group, {}) if group is not None else {}
    remaining = [Share(book, quantity) for book, quantity in sorted(asks.items())]
    pieces, excess = split_execution(within, remaining, quantum_for(row.fractionable))
    excess += delta - within
    if excess > 0:
        log.warning(
            "fill beyond what books asked for, booked to unallocated",
            client_order_id=row.client_order_id,
            symbol=row.symbol,
            quantity=str(excess),
        )
        pieces = merge(pieces, Share(UNALLOCATED_BOOK, excess))
    pieces = sorted(pieces, key=lambda s: s.strategy_id)
    for piece in pieces:  # what the next fill of this net order sees as asked
        if piece.strategy_id in asks:
            left = EXACT.subtract(asks[piece.strategy_id], piece.quantity)
            if left > 0:
                asks[piece.strategy_id] = left
            else:
                del asks[piece.strategy_id]
    return pieces


def _advance(order: _Order, report: Report) -> None:
    """Move the order's status forward (never back) and learn its Alpaca id."""
    if report.status is not None and status_moves_forward(order.status, report.status):
        order.status = report.status
        order.changed = True
    if report.alpaca_order_id is not None and order.alpaca_order_id is None:
        order.alpaca_order_id = report.alpaca_order_id
        order.changed = True


async def _write(conn: AsyncConnection, orders: Mapping[str, _Order], batch: _Batch) -> None:
    """Everything the batch booked: executions, postings, orders, run totals."""
    if batch.executions:
        inserted = await conn.execute(
            _INSERT_EXECUTIONS, arrays(_EXECUTION_COLUMNS, batch.executions)
        )
        if len(inserted.all()) != len(batch.executions):  # booked meanwhile: fail closed
            raise LedgerError("an execution of the batch was booked by another transaction")
    await post_fills(conn, batch.postings)
    changed = sorted((o for o in orders.values() if o.changed), key=lambda o: o.row.id)
    if changed:
        await conn.execute(
            _UPDATE_ORDERS,
            {
                "ids": [o.row.id for o in changed],
                "statuses": [o.status for o in changed],
                "alpaca_ids": [o.alpaca_order_id for o in changed],
                "quantities": [o.filled_quantity for o in changed],
                "values": [o.filled_value for o in changed],
            },
        )
    for run_id, (count, value) in sorted(batch.totals.items()):
        await add_fill_totals(conn, run_id, count, value)


def check(order: Any, report: Report) -> None:
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


def _price_of(order: _Order, report: Report, delta: Decimal) -> Decimal:
    """An in-order execution's own price, else the one making the booked average the broker's."""
    if report.execution is not None:
        _, quantity, price = report.execution
        if report.cumulative - quantity == order.filled_quantity:
            return price
    if report.average is None:
        if report.execution is None:
            raise LedgerError(f"progress of {order.row.client_order_id} has no average price")
        return report.execution[2]
    owed = mul(report.cumulative, report.average) - order.filled_value
    price = WIDE.divide(owed, delta).quantize(PRICE_QUANTUM, context=WIDE)
    # A broker average rounded coarsely against a tiny delta can make no sense: use it as is.
    return price if price > 0 else report.average


def plain(value: Decimal) -> str:
    """A decimal without exponent or trailing zeros (10, 2.5)."""
    return f"{value.normalize():f}"


def merge(pieces: list[Share], extra: Share) -> list[Share]:
    others = [p for p in pieces if p.strategy_id != extra.strategy_id]
    mine = sum((p.quantity for p in pieces if p.strategy_id == extra.strategy_id), ZERO)
    return [*others, Share(extra.strategy_id, mine + extra.quantity)]
