"""One book through history, as Composer backtests: decide at each close, hold to the next.

Each session's weights (from the columnar evaluation) are decided on that
session's close; what is bought then earns from that close to the next. Whether
the book trades on a session is the live planner's `should_trade` (frequency,
threshold; a book holding nothing always invests). A trade goes all the way to
the target, in fractional shares, paying `slippage_bps` of the value traded and
`fee_per_trade` per symbol traded. Money is Decimal; weights arrive as floats and
are converted as the planner converts them (`to_weights`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext

from alchemiser.books.money import WIDE, ZERO
from alchemiser.books.planner import (
    BookState,
    RebalanceOptions,
    is_rebalance_day,
    should_trade,
    to_weights,
)
from alchemiser.dsl import PriceHistory, Strategy, StrategyError, evaluate
from alchemiser.dsl.columns import Allocations

BPS = Decimal(10_000)
# A move smaller than this share of the book is arithmetic dust (a weight that is
# already on target, recomputed), not a trade: it is neither counted nor charged.
DUST = Decimal("1e-12")


@dataclass(frozen=True)
class Costs:
    slippage_bps: Decimal = ZERO
    fee_per_trade: Decimal = ZERO


@dataclass
class BookRun:
    """A book's values at each close of the range, what it decided, and what it traded."""

    dates: list[date] = field(default_factory=list)
    values: list[Decimal] = field(default_factory=list)
    decisions: list[dict[str, float]] = field(default_factory=list)
    trades: int = 0
    traded_on: list[date] = field(default_factory=list)  # the sessions it traded on
    traded_share: float = 0.0  # sum over trades of value traded / book value (both sides)
    costs: Decimal = ZERO
    error: str | None = None


class Closes:
    """Decimal closes by (ticker, calendar index), converted once (via str, as the planner)."""

    def __init__(self, prices: PriceHistory) -> None:
        self.prices = prices
        self.cache: dict[str, list[Decimal | None]] = {}

    def on(self, ticker: str, day: int) -> Decimal | None:
        closes = self.cache.get(ticker)
        if closes is None:
            column = self.prices.column("current-price", ticker, ())
            closes = [None if math.isnan(c) else Decimal(repr(c)) for c in column.tolist()]
            self.cache[ticker] = closes
        return closes[day]


def options_of(strategy: Strategy) -> RebalanceOptions:
    threshold = strategy.options.rebalance_threshold
    return RebalanceOptions(
        strategy.options.rebalance_frequency,
        None if threshold is None else Decimal(str(threshold)),
    )


def run_book(
    strategy: Strategy,
    prices: PriceHistory,
    cols: Allocations,
    days: range,
    *,
    capital: Decimal,
    costs: Costs,
    closes: Closes | None = None,
) -> BookRun:
    """Simulate the book over calendar indices `days`; stops at the first failing session."""
    closes = closes or Closes(prices)
    options = options_of(strategy)
    run = BookRun()
    shares: dict[str, Decimal] = {}
    cash = capital
    previous: date | None = None
    for i in days:
        today = prices.calendar[i]
        if cols.bad[i]:
            run.error = _why(strategy, prices, today)
            break
        target = cols.on(i)
        wanted = to_weights(target)
        quotes = {t: closes.on(t, i) for t in {*shares, *wanted}}
        missing = sorted(t for t, q in quotes.items() if q is None)
        if missing:
            run.error = f"{today.isoformat()}: {missing[0]}: no close to value or trade it"
            break
        priced: dict[str, Decimal] = {t: q for t, q in quotes.items() if q is not None}
        book = BookState("backtest", cash, shares)
        traded_before = run.trades
        if should_trade(
            book, wanted, priced, options, is_rebalance_day(options.frequency, today, previous)
        ):
            cash, shares = _trade(
                run, cash=cash, shares=shares, wanted=wanted, prices=priced, costs=costs
            )
            if run.trades > traded_before:
                run.traded_on.append(today)
        run.dates.append(today)
        run.values.append(_value(cash, shares, priced))
        run.decisions.append(target)
        previous = today
    return run


def _trade(
    run: BookRun,
    *,
    cash: Decimal,
    shares: Mapping[str, Decimal],
    wanted: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    costs: Costs,
) -> tuple[Decimal, dict[str, Decimal]]:
    """Go all the way to `wanted` at today's closes, paying the costs out of the book."""
    with localcontext(WIDE):
        value = _value(cash, shares, prices)
        moves = {
            t: abs(wanted.get(t, ZERO) * value - shares.get(t, ZERO) * prices[t])
            for t in {*shares, *wanted}
        }
        moves = {t: m for t, m in moves.items() if m > value * DUST}
        if not moves:
            return cash, dict(shares)
        traded = list(moves)
        cost = sum(moves.values(), ZERO) * costs.slippage_bps / BPS
        cost += costs.fee_per_trade * len(traded)
        after = value - cost
        new = {t: w * after / prices[t] for t, w in wanted.items() if w > 0}
        invested = sum((q * prices[t] for t, q in new.items()), ZERO)
    run.trades += len(traded)
    run.costs += cost
    if value > 0:
        run.traded_share += float(sum(moves.values(), ZERO) / value)
    return after - invested, new


def _value(cash: Decimal, shares: Mapping[str, Decimal], prices: Mapping[str, Decimal]) -> Decimal:
    with localcontext(WIDE):
        return cash + sum((q * prices[t] for t, q in shares.items()), ZERO)


def _why(strategy: Strategy, prices: PriceHistory, day: date) -> str:
    """The per-day evaluation's own error for a session the columns marked as failing."""
    try:
        evaluate(strategy, prices, day)
    except StrategyError as exc:
        return f"{day.isoformat()}: {exc}"
    return f"{day.isoformat()}: cannot be evaluated"
