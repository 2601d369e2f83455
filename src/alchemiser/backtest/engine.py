"""One book through history, as Composer backtests: decide at each close, hold to the next.

Each session's weights (from the columnar evaluation) are decided on that
session's close; what is bought then earns from that close to the next. Whether
the book trades on a session is the live planner's `should_trade` (frequency,
threshold; a book holding nothing always invests). A trade goes all the way to
the target, in fractional shares, paying `slippage_bps` of the value traded and
`fee_per_trade` per symbol traded. Money is Decimal; weights arrive as floats and
are converted as the planner converts them (`to_weights`). Arithmetic is in the
default 28-digit context: ample for values, and far faster than the planner's 60.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from alchemiser.books.money import ZERO
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
    """Decimal closes by (ticker, calendar index), each converted once when first asked
    for (via its shortest repr, as the planner converts floats)."""

    def __init__(self, prices: PriceHistory) -> None:
        self.prices = prices
        self.floats: dict[str, list[float]] = {}
        self.cache: dict[tuple[str, int], Decimal | None] = {}

    def on(self, ticker: str, day: int) -> Decimal | None:
        key = (ticker, day)
        if key in self.cache:
            return self.cache[key]
        floats = self.floats.get(ticker)
        if floats is None:
            floats = self.prices.column("current-price", ticker, ()).tolist()
            self.floats[ticker] = floats
        close = None if math.isnan(floats[day]) else Decimal(repr(floats[day]))
        self.cache[key] = close
        return close


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
    book = _Book(cash=capital)
    previous: date | None = None
    decided: dict[str, float] = {}
    wanted: dict[str, Decimal] = {}
    same = cols.unchanged(days)
    for k, i in enumerate(days):
        today = prices.calendar[i]
        if cols.bad[i]:
            run.error = _why(strategy, prices, today)
            break
        if not same[k] or not decided:  # most sessions repeat the last decision
            decided = cols.on(i)
            wanted = to_weights(decided)
        priced: dict[str, Decimal] = {}
        for t in {*book.shares, *wanted}:
            close = closes.on(t, i)
            if close is None:
                run.error = f"{today.isoformat()}: {t}: no close to value or trade it"
                return run
            priced[t] = close
        value = book.value(priced)
        state = BookState("backtest", book.cash, book.shares)
        rebalance_day = is_rebalance_day(options.frequency, today, previous)
        if should_trade(state, wanted, priced, options, rebalance_day):
            value = book.trade(run, today, value, wanted, priced, costs)
        run.dates.append(today)
        run.values.append(value)
        run.decisions.append(decided)
        previous = today
    return run


@dataclass
class _Book:
    cash: Decimal
    shares: dict[str, Decimal] = field(default_factory=dict)

    def value(self, prices: Mapping[str, Decimal]) -> Decimal:
        total = self.cash
        for t, q in self.shares.items():
            total += q * prices[t]
        return total

    def trade(  # noqa: PLR0917 (today, the book's value, the target, prices, costs)
        self,
        run: BookRun,
        today: date,
        value: Decimal,
        wanted: Mapping[str, Decimal],
        prices: Mapping[str, Decimal],
        costs: Costs,
    ) -> Decimal:
        """Go all the way to `wanted` at today's closes, paying the costs out of the
        book; returns the book's value after the trade."""
        dust = value * DUST
        traded, count = ZERO, 0
        for t in {*self.shares, *wanted}:
            move = abs(wanted.get(t, ZERO) * value - self.shares.get(t, ZERO) * prices[t])
            if move > dust:
                traded += move
                count += 1
        if not count:
            return value
        cost = traded * costs.slippage_bps / BPS + costs.fee_per_trade * count
        after = value - cost
        self.shares = {t: w * after / prices[t] for t, w in wanted.items() if w > 0}
        self.cash = after - sum((q * prices[t] for t, q in self.shares.items()), ZERO)
        run.trades += count
        run.traded_on.append(today)
        run.costs += cost
        if value > 0:
            run.traded_share += float(traded / value)
        return after


def _why(strategy: Strategy, prices: PriceHistory, day: date) -> str:
    """The per-day evaluation's own error for a session the columns marked as failing."""
    try:
        evaluate(strategy, prices, day)
    except StrategyError as exc:
        return f"{day.isoformat()}: {exc}"
    return f"{day.isoformat()}: cannot be evaluated"
