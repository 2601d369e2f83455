"""A run's record: the run row (one per trading day and kind), signals, its plan, prices."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import JSONB, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.kinds import RunStatus
from alchemiser.books.models import Intent as IntentRow
from alchemiser.books.models import Mark, Run, Signal
from alchemiser.books.planner import Intent
from alchemiser.books.postings import utcnow
from alchemiser.logging import get_logger

log = get_logger(__name__)


@dataclass(frozen=True)
class RunRecord:
    id: int
    trading_day: date
    kind: str
    status: str
    resumed: bool


async def start_run(
    conn: AsyncConnection,
    trading_day: date,
    kind: str,
    price_mode: str | None = None,
    input_hash: str | None = None,
    *,
    broker_started_at: datetime | None = None,
) -> RunRecord:
    """The run for (trading_day, kind): created, or found again (`resumed`) after a restart."""
    created = await conn.scalar(
        insert(Run)
        .values(
            trading_day=trading_day,
            kind=kind,
            status=RunStatus.STARTED,
            price_mode=price_mode,
            input_hash=input_hash,
            broker_started_at=broker_started_at,
        )
        .on_conflict_do_nothing(index_elements=[Run.trading_day, Run.kind])
        .returning(Run.id)
    )
    row = (
        await conn.execute(
            select(Run.id, Run.status).where(Run.trading_day == trading_day, Run.kind == kind)
        )
    ).one()
    return RunRecord(row.id, trading_day, kind, row.status, resumed=created is None)


async def set_run_status(
    conn: AsyncConnection,
    run_id: int,
    status: str,
    *,
    error: str | None = None,
    timings: Mapping[str, float] | None = None,
    finished: bool = False,
) -> None:
    values: dict[str, Any] = {"status": status}
    if error is not None:
        values["error"] = error
    elif status == RunStatus.COMPLETED:
        values["error"] = None  # an interrupted or refused attempt's reason is history now
    if timings is not None:
        values["timings"] = Run.timings.op("||")(bindparam("timings", dict(timings), JSONB))
    if finished:
        values["finished_at"] = func.now()
    await conn.execute(update(Run).where(Run.id == run_id).values(**values))


async def record_signal(
    conn: AsyncConnection,
    run_id: int,
    strategy_id: str,
    *,
    allocation: Mapping[str, float] | None,
    trace: Any = None,
    error: str | None = None,
) -> None:
    """A strategy's evaluation (allocation + trace, or its error). The first record wins."""
    inserted = await conn.scalar(
        insert(Signal)
        .values(
            run_id=run_id,
            strategy_id=strategy_id,
            allocation=dict(allocation) if allocation is not None else None,
            trace=trace,
            error=error,
        )
        .on_conflict_do_nothing(index_elements=[Signal.run_id, Signal.strategy_id])
        .returning(Signal.id)
    )
    if inserted is not None:
        await add_run_totals(conn, run_id, strategies=1, failed_strategies=int(error is not None))


async def record_plan(
    conn: AsyncConnection, run_id: int, intents: Iterable[Intent], input_hash: str
) -> list[Intent]:
    """Write the run's plan once, before any order; returns the plan that stands.

    A resumed run that plans again gets the saved plan back and writes nothing:
    prices and books have moved since, and two plans would trade twice.
    `input_hash` (see `input_hash`) is kept with the plan, so a resume planned
    from other inputs is logged.
    """
    saved = (
        await conn.execute(
            select(Run.planned_at, Run.input_hash).where(Run.id == run_id).with_for_update()
        )
    ).one()
    if saved.planned_at is not None:
        if saved.input_hash != input_hash:
            log.warning("run planned again from other inputs; the saved plan stands", run_id=run_id)
        return await load_intents(conn, run_id)
    plan = list(intents)
    rows = [
        {
            "run_id": run_id,
            "strategy_id": i.strategy_id,
            "symbol": i.symbol,
            "side": i.side,
            "quantity": i.quantity,
            "reference_price": i.reference_price,
            "reason": i.reason,
        }
        for i in plan
    ]
    if rows:
        await conn.execute(insert(IntentRow), rows)
    await conn.execute(
        update(Run)
        .where(Run.id == run_id)
        .values(planned_at=func.now(), input_hash=input_hash, intents=Run.intents + len(rows))
    )
    return sorted(plan, key=lambda i: (i.strategy_id, i.symbol, i.side))


def input_hash(*inputs: object) -> str:
    """A stable hash of a run's inputs (anything JSON can show; Decimals as strings)."""
    canonical = json.dumps(inputs, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


async def add_run_totals(conn: AsyncConnection, run_id: int | None, **counts: Any) -> None:
    """Add to a run's running totals (strategies, intents, book_fills, traded_value, ...)."""
    if run_id is None or not any(counts.values()):
        return
    values = {name: getattr(Run, name) + amount for name, amount in counts.items()}
    await conn.execute(update(Run).where(Run.id == run_id).values(**values))


async def load_intents(conn: AsyncConnection, run_id: int) -> list[Intent]:
    rows = await conn.execute(
        select(IntentRow)
        .where(IntentRow.run_id == run_id)
        .order_by(IntentRow.strategy_id, IntentRow.symbol, IntentRow.side)
    )
    return [
        Intent(r.strategy_id, r.symbol, r.side, r.quantity, r.reference_price, r.reason)
        for r in rows
    ]


async def record_prices(
    conn: AsyncConnection,
    prices: Mapping[str, Decimal],
    as_of: datetime | None = None,
    run_id: int | None = None,
) -> None:
    """Reference prices (marks) that value the books in the views."""
    as_of = as_of or utcnow()
    rows = [{"symbol": s, "as_of": as_of, "price": p, "run_id": run_id} for s, p in prices.items()]
    if rows:
        statement = insert(Mark).on_conflict_do_update(
            index_elements=[Mark.symbol, Mark.as_of], set_={"price": insert(Mark).excluded.price}
        )
        await conn.execute(statement, rows)
