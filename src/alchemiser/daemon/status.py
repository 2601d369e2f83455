"""What /status and /metrics show, read from the ledger (so it survives a restart).

One short read-only transaction: the latest daily run with each strategy's outcome
(its error, with file:line:column, for one that failed), the books with their
value and drift (share of the account minus allocation), the halts, the last
run's orders by status and each symbol's fill slippage against the plan's price.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books.halts import halts
from alchemiser.books.kinds import RunStatus
from alchemiser.run.daily import DAILY

BASIS_POINTS = Decimal(10000)

_LAST_RUN = """
    SELECT id, trading_day, status, error, started_at, finished_at, timings
    FROM runs WHERE kind = :kind ORDER BY trading_day DESC LIMIT 1"""
_SIGNALS = """
    SELECT strategy_id, error, allocation FROM signals WHERE run_id = :run ORDER BY strategy_id"""
_BOOKS = """
    SELECT strategy_id, state, allocation, cash, total_value, pnl, account_share
    FROM book_value ORDER BY strategy_id"""
_LAST_SUCCESS = """
    SELECT max(finished_at) FROM runs WHERE kind = :kind AND status = :completed"""
_ORDERS = """
    SELECT status, count(*) FROM broker_orders WHERE run_id = :run GROUP BY status"""
# Per symbol and side: the average fill of the run's orders against the plan's price.
_SLIPPAGE = """
    SELECT o.symbol, o.side, sum(o.filled_value) / sum(o.filled_quantity) AS average,
           (SELECT max(i.reference_price) FROM intents i
            WHERE i.run_id = o.run_id AND i.symbol = o.symbol AND i.side = o.side) AS reference
    FROM broker_orders o
    WHERE o.run_id = :run AND o.filled_quantity > 0
    GROUP BY o.run_id, o.symbol, o.side"""


@dataclass(frozen=True)
class Book:
    strategy_id: str
    state: str
    allocation: Decimal
    cash: Decimal
    value: Decimal
    pnl: Decimal
    share: Decimal | None

    @property
    def drift(self) -> Decimal | None:
        """How far the book's share of the account is from its allocation (absolute);
        None for a book funded with a fixed amount and for `unallocated`."""
        if self.share is None or self.allocation <= 0:
            return None
        return self.share - self.allocation


@dataclass
class Snapshot:
    last_run: dict[str, Any] | None = None
    strategies: list[dict[str, Any]] = field(default_factory=list)
    books: list[Book] = field(default_factory=list)
    halted: dict[str, str | None] = field(default_factory=dict)
    last_success: datetime | None = None
    orders: dict[str, int] = field(default_factory=dict)
    slippage_bps: dict[tuple[str, str], Decimal] = field(default_factory=dict)


async def read_snapshot(engine: AsyncEngine) -> Snapshot:
    async with engine.connect() as conn:
        snapshot = Snapshot(halted=await halts(conn))
        await _read_runs(conn, snapshot)
        rows = await conn.execute(text(_BOOKS))
        snapshot.books = [Book(*row) for row in rows]
    return snapshot


async def _read_runs(conn: AsyncConnection, snapshot: Snapshot) -> None:
    kind = {"kind": DAILY}
    snapshot.last_success = await conn.scalar(
        text(_LAST_SUCCESS), kind | {"completed": RunStatus.COMPLETED.value}
    )
    run = (await conn.execute(text(_LAST_RUN), kind)).mappings().first()
    if run is None:
        return
    snapshot.last_run = dict(run)
    ids = {"run": run["id"]}
    snapshot.strategies = [
        {"id": sid, "ok": error is None, "error": error, "allocation": allocation}
        for sid, error, allocation in await conn.execute(text(_SIGNALS), ids)
    ]
    snapshot.orders = {status: count for status, count in await conn.execute(text(_ORDERS), ids)}
    for symbol, side, average, reference in await conn.execute(text(_SLIPPAGE), ids):
        if reference:
            worse = average - reference if side == "buy" else reference - average
            snapshot.slippage_bps[(symbol, side)] = worse / reference * BASIS_POINTS
