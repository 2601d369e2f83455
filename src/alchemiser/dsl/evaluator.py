"""AST + prices + date -> allocation and decision trace (spec §3, §5, §8).

The strategy's columns (`columns`) are computed over the days the date needs
and read on that date (`live`): the weights, the trace of the traced path and,
on failure, the first error in the evaluation order. Evaluating more dates of
one strategy on one `PriceHistory` computes the columns over growing blocks of
days ahead, kept in the history: a loop over dates costs a few columnar passes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from alchemiser.dsl._deep import run_deep
from alchemiser.dsl.ast import Strategy
from alchemiser.dsl.choices import (
    BRANCH_VECTOR_IS_UNIT,
    FILTER_RANKS_EMPTY_CHILDREN,
    SPECIFIED_EMPTY_SHARE_PROPORTIONAL,
    WEIGHT_SUM_TOLERANCE,
    ZERO_VOLATILITY_TAKES_ALL,
    Choices,
)
from alchemiser.dsl.choices import weighted as _weighted
from alchemiser.dsl.columns import normalised, row_totals
from alchemiser.dsl.errors import StrategyDataError, StrategyError
from alchemiser.dsl.indicators import PriceHistory
from alchemiser.dsl.live import Block, Reader, block

# Consecutive dates of one strategy are computed in blocks of days ahead: one
# day first (a live run), then 8, then 64 (memory: a block keeps each node's
# decisions on each of its days).
BLOCK_DAYS_GROWTH = 8
BLOCK_DAYS_MAX = 64


@dataclass(frozen=True)
class Evaluation:
    weights: dict[str, float]
    trace: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _choices() -> Choices:
    """The open choices as this module holds them when called (a test may flip one)."""
    return Choices(
        BRANCH_VECTOR_IS_UNIT,
        SPECIFIED_EMPTY_SHARE_PROPORTIONAL,
        FILTER_RANKS_EMPTY_CHILDREN,
        ZERO_VOLATILITY_TAKES_ALL,
        _weighted,
    )


@dataclass
class _Memo:
    """The last block computed for a strategy, kept in its `PriceHistory`. The
    strategy is held here so that its nodes, and so their ids, outlive the memo."""

    strategy: Strategy
    choices: Choices
    found: Block | None = None
    size: int = 0


def _block(strategy: Strategy, prices: PriceHistory, i: int, choices: Choices) -> Block:
    memo = prices.memos.get(id(strategy))
    if not isinstance(memo, _Memo) or memo.strategy is not strategy or memo.choices != choices:
        memo = _Memo(strategy, choices)
        prices.memos[id(strategy)] = memo
    if memo.found is None or i not in memo.found.days:
        # A day's columns do not depend on the other days computed with it, so a
        # block serves the next dates asked for (earlier ones, going back in time).
        back = memo.found is not None and i < memo.found.days.start
        memo.size = min(BLOCK_DAYS_MAX, BLOCK_DAYS_GROWTH * memo.size) or 1
        if back:
            days = range(max(0, i - memo.size + 1), i + 1)
        else:
            days = range(i, min(i + memo.size, len(prices.calendar)))
        memo.found = block(prices, strategy.body, days, choices)
    return memo.found


def _evaluate(strategy: Strategy, prices: PriceHistory, i: int) -> Evaluation:
    choices = _choices()
    found = _block(strategy, prices, i, choices)
    reader = Reader(prices, found, i)
    as_of = prices.calendar[i].isoformat()
    if found.table.bad[reader.row]:
        reader.fail(strategy.body)
    if not found.table.held()[reader.row]:
        raise StrategyError(f"the strategy selected nothing as of {as_of}")
    total = float(row_totals(found.table)[reader.row])
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:  # a weighting node is wrong, not the strategy
        name = strategy.name if strategy.name is not None else "(unnamed)"
        raise StrategyError(
            f"internal error evaluating strategy {name!r} as of {as_of}: "
            f"weights sum to {total!r}, expected 1"
        )
    trace: list[dict[str, Any]] = []
    reader.visit(strategy.body, trace)
    weights = normalised(found.table).on(reader.row)
    missing = [t for t in strategy.tickers if t not in prices or prices.row(t, i) < 0]
    warnings = [f"{t}: no price data as of {as_of} (not needed today)" for t in missing]
    return Evaluation(weights, trace, warnings)


def evaluate(strategy: Strategy, prices: PriceHistory | pl.DataFrame, as_of: date) -> Evaluation:
    """Evaluate `strategy` as of `as_of` (whose row in `prices` is "today")."""
    history = prices if isinstance(prices, PriceHistory) else PriceHistory(prices)
    i = history.index_of(as_of)
    if i < 0:
        raise StrategyDataError("*", "prices", None, as_of, "no prices on the as-of date")
    return run_deep(lambda: _evaluate(strategy, history, i))
