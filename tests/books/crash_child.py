"""A process that books two fills: the first committed, the second left open until it is killed.

    python -m tests.books.crash_child DB_URL RUN_ID

Prints "committed" after the first transaction and "open" while the second one
holds its uncommitted booking (and the order's row lock); then waits to be killed.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from decimal import Decimal

from alchemiser import db
from alchemiser.books import ledger

COID = "alch-20261102-daily-SPY-buy-0"
AT = datetime(2026, 11, 2, 20, 31, tzinfo=UTC)


def fill(execution_id: str, cumulative: str) -> ledger.ExecutionReport:
    return ledger.ExecutionReport(
        execution_id, "SPY", "buy", Decimal(4), Decimal(100), AT, COID, Decimal(cumulative)
    )


async def main(url: str) -> None:
    engine = db.create_engine(url)
    async with engine.begin() as conn:
        await ledger.book_execution(conn, fill("e1", "4"))
    print("committed", flush=True)
    async with engine.begin() as conn:
        await ledger.book_execution(conn, fill("e2", "8"))
        print("open", flush=True)
        await asyncio.Event().wait()  # until SIGKILL


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
