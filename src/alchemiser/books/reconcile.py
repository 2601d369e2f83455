"""Reconciliation: Σ over books (with `unallocated`) against the broker account.

Every check is recorded with all its differences, within tolerance or not.
Differences the daemon did not cause (a manual trade in the Alpaca app) are
reported, never absorbed: nothing here writes to a book. A position difference
names the fills the ledger saw that explain it (`foreign_fills`, `parked_fills`). `ledger_problems`
checks the ledger against itself (running totals against the entries).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, replace
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.models import Book, BookHolding, Reconciliation
from alchemiser.books.money import QUANTITY_QUANTUM, ZERO, mul
from alchemiser.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class Difference:
    """Broker minus books for one ticker's quantity, or for cash (symbol None)."""

    kind: Literal["position", "cash"]
    symbol: str | None
    books: Decimal
    broker: Decimal
    beyond_tolerance: bool
    # What the ledger knows explains it: fills of orders that are not ours (manual
    # trades, reported and never absorbed), fills parked for an unrecorded own order.
    known_causes: tuple[str, ...] = ()

    @property
    def difference(self) -> Decimal:
        return self.broker - self.books


@dataclass(frozen=True)
class ReconcileResult:
    ok: bool
    books_cash: Decimal
    broker_cash: Decimal
    differences: tuple[Difference, ...]


def compare(
    books_positions: Mapping[str, Decimal],
    books_cash: Decimal,
    broker_positions: Mapping[str, Decimal],
    broker_cash: Decimal,
    tolerance: Decimal,
    *,
    prices: Mapping[str, Decimal] | None = None,
) -> ReconcileResult:
    """Every difference between books and broker; ok when none exceeds `tolerance`.

    Cash differences are compared with `tolerance` in dollars; a ticker's quantity
    difference by its value at `prices` when given, else it must match to 1e-9.
    """
    prices = prices or {}
    differences = []
    for symbol in sorted(set(books_positions) | set(broker_positions)):
        ours, theirs = books_positions.get(symbol, ZERO), broker_positions.get(symbol, ZERO)
        if ours == theirs:
            continue
        gap = abs(theirs - ours)
        beyond = (
            mul(gap, prices[symbol]) > tolerance if symbol in prices else (gap >= QUANTITY_QUANTUM)
        )
        differences.append(Difference("position", symbol, ours, theirs, beyond))
    if books_cash != broker_cash:
        beyond = abs(broker_cash - books_cash) > tolerance
        differences.append(Difference("cash", None, books_cash, broker_cash, beyond))
    ok = not any(d.beyond_tolerance for d in differences)
    return ReconcileResult(ok, books_cash, broker_cash, tuple(differences))


async def books_totals(conn: AsyncConnection) -> tuple[dict[str, Decimal], Decimal]:
    """Σ over all books of each ticker's quantity, and Σ of cash."""
    rows = await conn.execute(
        select(BookHolding.symbol, func.sum(BookHolding.quantity))
        .group_by(BookHolding.symbol)
        .having(func.sum(BookHolding.quantity) != 0)
    )
    positions: dict[str, Decimal] = {symbol: quantity for symbol, quantity in rows}
    cash: Decimal = (await conn.execute(select(func.coalesce(func.sum(Book.cash), 0)))).scalar_one()
    return positions, cash


async def reconcile(
    conn: AsyncConnection,
    broker_positions: Mapping[str, Decimal],
    broker_cash: Decimal,
    tolerance: Decimal,
    *,
    run_id: int | None = None,
    prices: Mapping[str, Decimal] | None = None,
) -> ReconcileResult:
    """Compare Σ books with the broker's positions and cash, and record the check."""
    positions, cash = await books_totals(conn)
    result = compare(positions, cash, broker_positions, broker_cash, tolerance, prices=prices)
    result = await _with_known_causes(conn, result)
    await conn.execute(
        insert(Reconciliation).values(
            run_id=run_id,
            ok=result.ok,
            tolerance=tolerance,
            books_cash=cash,
            broker_cash=broker_cash,
            differences=[_as_json(d) for d in result.differences],
        )
    )
    if not result.ok:
        log.warning(
            "books and broker disagree",
            run_id=run_id,
            differences=[_as_json(d) for d in result.differences if d.beyond_tolerance],
        )
    return result


# Per symbol: what fills the books do not hold explain, as (cause, signed shares).
_KNOWN_CAUSES = text("""
    SELECT symbol, 'foreign fills (manual trades, not booked)' AS cause,
           sum(CASE WHEN side = 'buy' THEN quantity ELSE -quantity END) AS shares
    FROM foreign_fills GROUP BY symbol
    UNION ALL
    SELECT symbol, 'fills parked for an unrecorded own order',
           sum(CASE WHEN side = 'buy' THEN 1 ELSE -1 END * cumulative_quantity)
    FROM parked_fills GROUP BY symbol""")


async def _with_known_causes(conn: AsyncConnection, result: ReconcileResult) -> ReconcileResult:
    """Each position difference, with the foreign or parked fills the ledger has seen in it."""
    causes: dict[str, list[str]] = {}
    for symbol, cause, shares in await conn.execute(_KNOWN_CAUSES):
        causes.setdefault(symbol, []).append(f"{cause}: {shares.normalize():+f} shares")
    differences = tuple(
        replace(d, known_causes=tuple(causes[d.symbol]))
        if d.kind == "position" and d.symbol in causes
        else d
        for d in result.differences
    )
    return replace(result, differences=differences)


def _as_json(difference: Difference) -> dict[str, Any]:
    data = asdict(difference)
    for key in ("books", "broker"):
        data[key] = str(data[key])
    data["difference"] = str(difference.difference)
    return data


# Each query returns rows that disagree; an empty result means the ledger is consistent.
_CONSISTENCY_CHECKS = {
    "book cash differs from its cash entries": """
        SELECT s.id FROM strategies s
        LEFT JOIN (SELECT strategy_id, sum(amount) AS total FROM cash_entries
                   GROUP BY strategy_id) c ON c.strategy_id = s.id
        WHERE s.cash <> COALESCE(c.total, 0)""",
    "holding differs from its open lots": """
        SELECT h.strategy_id, h.symbol FROM book_holdings h
        LEFT JOIN (SELECT strategy_id, symbol, sum(remaining) AS quantity,
                          sum(remaining * cost_price) AS cost
                   FROM lots GROUP BY strategy_id, symbol) l
               ON l.strategy_id = h.strategy_id AND l.symbol = h.symbol
        WHERE h.quantity <> COALESCE(l.quantity, 0) OR h.cost_basis <> COALESCE(l.cost, 0)""",
    "realised P&L differs from lot closures, fees and dividends": """
        SELECT h.strategy_id, h.symbol FROM book_holdings h
        LEFT JOIN (SELECT l.strategy_id, l.symbol, sum(c.realised_pnl) AS realised
                   FROM lot_closures c JOIN lots l ON l.id = c.lot_id
                   GROUP BY l.strategy_id, l.symbol) r
               ON r.strategy_id = h.strategy_id AND r.symbol = h.symbol
        LEFT JOIN (SELECT strategy_id, symbol, sum(amount) AS paid FROM cash_entries
                   WHERE kind IN ('fee', 'dividend') GROUP BY strategy_id, symbol) p
               ON p.strategy_id = h.strategy_id AND p.symbol = h.symbol
        WHERE h.realised_pnl <> COALESCE(r.realised, 0) + COALESCE(p.paid, 0)""",
    "execution differs from its book fills": """
        SELECT e.execution_id FROM executions e
        JOIN book_fills f ON f.execution_id = e.execution_id
        GROUP BY e.execution_id, e.quantity, e.kind
        HAVING CASE WHEN e.kind = 'cross'
                    THEN sum(f.quantity) <> 2 * e.quantity
                    ELSE sum(f.quantity) <> e.quantity END""",
    # Until its order is recorded or adopted (`record_broker_order`, `adopt_order`).
    "fill parked, its order not recorded": """
        SELECT client_order_id, key FROM parked_fills""",
    "order booked past its quantity": """
        SELECT client_order_id FROM broker_orders WHERE filled_quantity > quantity""",
    "activity differs from the books": """
        SELECT id, activity_type, symbol, quantity, books_quantity FROM account_activities
        WHERE books_quantity IS DISTINCT FROM quantity""",
    "a book is short": "SELECT strategy_id, symbol FROM book_holdings WHERE quantity < 0",
    # A fill that strayed above the reference price by more than phase 2's headroom.
    "book cash is negative": "SELECT id FROM strategies WHERE cash < 0",
    "run totals differ from the run's rows": """
        SELECT r.id FROM runs r
        LEFT JOIN run_fill_totals t ON t.run_id = r.id
        WHERE COALESCE(t.book_fills, 0) <> (SELECT count(*) FROM book_fills f WHERE f.run_id = r.id)
           OR COALESCE(t.traded_value, 0) <> (SELECT COALESCE(sum(f.quantity * f.price), 0)
                                              FROM book_fills f WHERE f.run_id = r.id)
           OR r.intents <> (SELECT count(*) FROM intents i WHERE i.run_id = r.id)
           OR r.broker_orders <> (SELECT count(*) FROM broker_orders o WHERE o.run_id = r.id)
           OR r.strategies <> (SELECT count(*) FROM signals s WHERE s.run_id = r.id)
           OR r.failed_strategies <> (SELECT count(*) FROM signals s
                                      WHERE s.run_id = r.id AND s.error IS NOT NULL)""",
}


async def ledger_problems(conn: AsyncConnection) -> list[str]:
    """The ledger checked against itself; [] when every running total matches its entries."""
    problems = []
    for problem, query in _CONSISTENCY_CHECKS.items():
        rows = (await conn.execute(text(query))).all()
        problems += [f"{problem}: {tuple(row)}" for row in rows]
    return problems
