"""The run's plan: fund new books, record each signal, plan each book, save the plan once.

Everything here happens in one transaction the caller owns, before any order.
`record_plan` writes the plan once: a resumed run gets the saved plan back.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from datetime import date
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser import market_calendar
from alchemiser.books import ledger
from alchemiser.books.planner import (
    Intent,
    PlanningError,
    RebalanceOptions,
    is_rebalance_day,
    plan_book,
    plan_liquidation,
)
from alchemiser.logging import get_logger
from alchemiser.run.evaluation import Outcome, Summary
from alchemiser.settings import Settings

log = get_logger(__name__)


async def plan_run(
    conn: AsyncConnection,
    run_id: int,
    settings: Settings,
    strategies: Mapping[str, Summary],
    outcomes: Mapping[str, Outcome],
    *,
    prices: Mapping[str, Decimal],
    fractionable: Collection[str],
    as_of: date,
    equity: Decimal,
) -> list[Intent]:
    sync = await ledger.sync_strategies(conn, settings.strategies, equity, run_id)
    books = await ledger.load_books(conn)
    previous = market_calendar.previous_trading_day(as_of)
    intents: list[Intent] = []
    for sid, outcome in sorted(outcomes.items()):
        await ledger.record_signal(
            conn,
            run_id,
            sid,
            allocation=outcome.weights or None,
            trace=outcome.trace,
            error=outcome.error,
        )
        if outcome.error is not None or sid not in strategies:
            continue
        options = strategies[sid].options
        threshold = options.rebalance_threshold
        try:
            intents += plan_book(
                books[sid],
                targets=outcome.weights,
                prices=prices,
                fractionable=fractionable,
                options=RebalanceOptions(
                    options.rebalance_frequency,
                    None if threshold is None else Decimal(str(threshold)),
                ),
                rebalance_day=is_rebalance_day(options.rebalance_frequency, as_of, previous),
                risk=settings.risk,
            )
        except PlanningError as exc:
            log.error("book not planned", strategy=sid, error=str(exc))
    for sid in sync.removed:
        if sid in books:
            intents += plan_liquidation(books[sid], prices)
    inputs = ledger.input_hash(prices, {s: o.weights for s, o in outcomes.items()})
    return await ledger.record_plan(conn, run_id, intents, inputs)
