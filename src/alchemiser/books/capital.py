"""Moving capital between books after they are funded (pure).

A book funded with `allocation × equity` compounds on its own. Cash moves only
when the configuration says so: when a strategy's allocation changes (default),
or also when a book's share of the account drifts past `drift_threshold`
(`[books] capital_policy = "drift"`). A book funded with a fixed `capital`
never takes part. Outflows are limited to the book's cash; what it still owes
becomes its `BookState.withdrawal`, so the planner keeps that much in cash and
the next run completes the transfer.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import Literal

from alchemiser.books.money import WIDE, ZERO
from alchemiser.settings import UNALLOCATED_BOOK

CapitalPolicy = Literal["allocation_change", "drift"]


@dataclass(frozen=True)
class BookCapital:
    """A book as capital sees it: its value now and its configured allocation."""

    strategy_id: str
    value: Decimal
    cash: Decimal
    allocation: Decimal
    fixed_capital: bool = False
    allocation_changed: bool = False


@dataclass(frozen=True)
class Transfer:
    source: str
    destination: str
    amount: Decimal


@dataclass(frozen=True)
class CapitalPlan:
    """Transfers to make now; cash still owed by books; books now at their allocation."""

    transfers: list[Transfer] = field(default_factory=list)
    withdrawals: dict[str, Decimal] = field(default_factory=dict)
    settled: list[str] = field(default_factory=list)


def capital_transfers(
    books: Sequence[BookCapital],
    unallocated_cash: Decimal,
    equity: Decimal,
    policy: CapitalPolicy,
    drift_threshold: Decimal,
) -> CapitalPlan:
    """Transfers that bring each due book to `allocation × equity` (outflows first)."""
    plan = CapitalPlan()
    with localcontext(WIDE):
        due = [b for b in books if _is_due(b, equity, policy, drift_threshold)]
        deltas = {b.strategy_id: b.allocation * equity - b.value for b in due}
        available = max(unallocated_cash, ZERO)
        for book in sorted(due, key=lambda b: (deltas[b.strategy_id] > 0, b.strategy_id)):
            delta = deltas[book.strategy_id]
            if delta < 0:
                amount = min(-delta, max(book.cash, ZERO))
                available += amount
                _add(plan, book.strategy_id, UNALLOCATED_BOOK, amount)
                owed = -delta - amount
            else:
                amount = min(delta, available)
                available -= amount
                _add(plan, UNALLOCATED_BOOK, book.strategy_id, amount)
                owed = delta - amount
            if owed > 0 and delta < 0:
                plan.withdrawals[book.strategy_id] = owed
            elif owed == 0:
                plan.settled.append(book.strategy_id)
    return plan


def _is_due(book: BookCapital, equity: Decimal, policy: CapitalPolicy, threshold: Decimal) -> bool:
    if book.fixed_capital or equity <= 0:
        return False
    if book.allocation_changed:
        return True
    return policy == "drift" and abs(book.value / equity - book.allocation) > threshold


def _add(plan: CapitalPlan, source: str, destination: str, amount: Decimal) -> None:
    if amount > 0:
        plan.transfers.append(Transfer(source, destination, amount))
