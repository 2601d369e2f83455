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


SIDES = ("buy", "sell")


def values(kind: type[StrEnum]) -> tuple[str, ...]:
    return tuple(member.value for member in kind)
