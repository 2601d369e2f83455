"""The ledger's kinds and states, in one place (the migrations' CHECK constraints read them)."""

from __future__ import annotations

from enum import StrEnum


class BookState(StrEnum):
    ACTIVE = "active"
    HALTED = "halted"
    REMOVED = "removed"
    SYSTEM = "system"  # the `unallocated` book


class RunStatus(StrEnum):
    STARTED = "started"
    PLANNED = "planned"
    EXECUTING = "executing"
    COMPLETED = "completed"
    FAILED = "failed"


class ExecutionKind(StrEnum):
    BROKER = "broker"
    CROSS = "cross"
    OPENING = "opening"


class CashKind(StrEnum):
    DEPOSIT = "deposit"
    WITHDRAWAL = "withdrawal"
    FUNDING = "funding"
    TRANSFER = "transfer"
    FILL = "fill"
    DIVIDEND = "dividend"
    FEE = "fee"


class IntentClosure(StrEnum):
    """Why an intent was closed for the day (a resumed run does not bring it back)."""

    REJECTED = "rejected"
    EXPIRED = "expired"  # at the close
    ABANDONED = "abandoned"


SIDES = ("buy", "sell")

# An order's status only moves forward along these ranks (Alpaca's order statuses): a
# stale REST snapshot never turns `filled` back into `partially_filled`. Final statuses
# share the last rank and never change.
ORDER_STATUS_RANK = {
    "pending_new": 0,
    "accepted": 1,
    "new": 1,
    "pending_replace": 2,
    "pending_cancel": 2,
    "partially_filled": 3,
    "filled": 4,
    "canceled": 4,
    "expired": 4,
    "rejected": 4,
    "replaced": 4,
    "done_for_day": 4,
}
FINAL_RANK = 4


def status_moves_forward(old: str, new: str) -> bool:
    """True when `new` may replace `old` (unknown statuses rank with `new`)."""
    before, after = ORDER_STATUS_RANK.get(old, 1), ORDER_STATUS_RANK.get(new, 1)
    return before < FINAL_RANK and after > before


def values(kind: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in kind)
