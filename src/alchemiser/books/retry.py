"""Run a ledger transaction again when Postgres picked it as a deadlock or serialization victim.

Lock order everywhere: the client order id (an advisory lock), the order's row,
the run's intents, then books in id order, then holdings and lots; bookings
never lock `runs`. That order makes a
deadlock unlikely, not impossible (a transaction that books several executions
can meet the books in another order), so every ledger transaction that books is
run through `transact`: the victim is rolled back by Postgres and run again
from the start, a bounded number of times.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.logging import get_logger

log = get_logger(__name__)

T = TypeVar("T")
# SQLSTATEs of a transaction Postgres rolled back so that another could go on.
RETRYABLE = frozenset({"40P01", "40001"})  # deadlock_detected, serialization_failure
ATTEMPTS = 5
BACKOFF_SECONDS = 0.05


def is_retryable(error: BaseException) -> bool:
    if not isinstance(error, DBAPIError):
        return False
    code = getattr(error.orig, "pgcode", None) or getattr(error.orig, "sqlstate", None)
    return code in RETRYABLE


async def transact(
    engine: AsyncEngine,
    work: Callable[[AsyncConnection], Awaitable[T]],
    attempts: int = ATTEMPTS,
) -> T:
    """`work(conn)` in one transaction, run again (up to `attempts` times) if it was a victim."""
    for attempt in range(1, attempts + 1):
        try:
            async with engine.begin() as conn:
                return await work(conn)
        except DBAPIError as error:
            if not is_retryable(error) or attempt == attempts:
                raise
            log.warning("ledger transaction retried", attempt=attempt, reason=str(error.orig))
            await asyncio.sleep(BACKOFF_SECONDS * attempt)
    raise AssertionError("unreachable")
