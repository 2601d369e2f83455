"""The rebalance planner: a book, its targets and today's prices → intents.

Pure: plain dataclasses in, plain dataclasses out, no I/O. Weights arrive from
the evaluator as floats and are converted once here (`Decimal(str(w))`); all
else is Decimal. Rules (issue 6, composer-dsl.md §6):

- a book trades only on a rebalance day of its `:rebalance-frequency` (a book
  holding nothing is always eligible: that is its first investment);
- with `:rebalance-threshold X` it trades only if the tickers differ or some
  weight is off target by more than X, and then goes all the way to target;
- target quantity = weight × value × (1 − cash buffer) / price, floored to 1e-9
  shares (fractionable) or whole shares;
- a book never sells more than it holds; a full exit sells exactly what it holds
  (whatever its value: dust must not linger); other trades under the minimum
  trade value are skipped;
- buys never cost more than cash + this book's own sells − the cash buffer; if
  they would, they are scaled down pro rata.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, localcontext
from typing import Literal

from alchemiser.books.money import WIDE, ZERO, floor_to, quantum_for, scale_to_budget
from alchemiser.dsl.ast import RebalanceFrequency
from alchemiser.settings import RiskConfig

Side = Literal["buy", "sell"]
# The strategy language owns the list of frequencies (a symphony's :rebalance-frequency).
Frequency = RebalanceFrequency

REASON_EXIT = "exit"
REASON_REBALANCE = "rebalance"
REASON_SCALED = "rebalance-scaled"
REASON_LIQUIDATE = "liquidate"


class PlanningError(ValueError):
    """The plan cannot be made safely (e.g. a price is missing): the book fails closed."""


@dataclass(frozen=True)
class BookState:
    """What a book holds now. `withdrawal`: cash it owes other books (a pending transfer)."""

    strategy_id: str
    cash: Decimal
    positions: Mapping[str, Decimal] = field(default_factory=dict)
    withdrawal: Decimal = ZERO


@dataclass(frozen=True)
class RebalanceOptions:
    """A symphony's `:rebalance-frequency` and `:rebalance-threshold` (None: no corridor)."""

    frequency: Frequency = "daily"
    threshold: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Intent:
    """One book's wish to trade `quantity` (> 0) of `symbol`, valued at `reference_price`."""

    strategy_id: str
    symbol: str
    side: Side
    quantity: Decimal
    reference_price: Decimal
    reason: str


def is_rebalance_day(frequency: Frequency, today: date, previous_trading_day: date | None) -> bool:
    """True on the first trading day of a new period (every day for daily, never for none)."""
    if frequency == "daily":
        return True
    if frequency == "none":
        return False
    if previous_trading_day is None:
        return True
    return _period(frequency, today) != _period(frequency, previous_trading_day)


def _period(frequency: Frequency, day: date) -> tuple[int, int]:
    if frequency == "weekly":
        iso = day.isocalendar()
        return iso.year, iso.week
    if frequency == "monthly":
        return day.year, day.month
    if frequency == "quarterly":
        return day.year, (day.month - 1) // 3
    return day.year, 0


def to_weights(targets: Mapping[str, float]) -> dict[str, Decimal]:
    """The evaluator's float weights as Decimals (via str: 0.1 stays 0.1); zeros dropped."""
    return {symbol: Decimal(str(w)) for symbol, w in targets.items() if w > 0}


def holdings_value(positions: Mapping[str, Decimal], prices: Mapping[str, Decimal]) -> Decimal:
    with localcontext(WIDE):
        return sum((q * prices[s] for s, q in positions.items() if q > 0), ZERO)


def corridor_tripped(
    book: BookState,
    weights: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    threshold: Decimal,
) -> bool:
    """Composer's corridor: the tickers differ, or a weight is off by more than `threshold`."""
    held = {s: q for s, q in book.positions.items() if q > 0}
    if set(held) != set(weights):
        return True
    with localcontext(WIDE):
        value = book.cash + holdings_value(held, prices)
        if value <= 0:
            return False
        return any(abs(held[s] * prices[s] / value - w) > threshold for s, w in weights.items())


def should_trade(
    book: BookState,
    weights: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    options: RebalanceOptions,
    rebalance_day: bool,
) -> bool:
    """Whether the book trades today (the planner's and the backtest's rule): always
    when it holds nothing; otherwise only on a rebalance day, and with a threshold
    only if the corridor is crossed."""
    if not any(q > 0 for q in book.positions.values()):
        return True
    if not rebalance_day:
        return False
    return options.threshold is None or corridor_tripped(book, weights, prices, options.threshold)


def plan_book(
    book: BookState,
    *,
    targets: Mapping[str, float],
    prices: Mapping[str, Decimal],
    fractionable: Collection[str],
    options: RebalanceOptions,
    rebalance_day: bool,
    risk: RiskConfig,
) -> list[Intent]:
    """Intents (sells first, then buys, each by symbol) that bring `book` to `targets`.

    `targets`: the evaluator's weights (floats summing to 1; an empty mapping means
    all cash). `prices`: today's reference price of every target and held symbol
    (a missing one raises PlanningError). `fractionable`: symbols tradable in
    fractions. `rebalance_day`: from `is_rebalance_day` for this book's frequency.
    """
    weights = to_weights(targets)
    held = {s: q for s, q in book.positions.items() if q > 0}
    _check_prices(set(weights) | set(held), prices)
    if not should_trade(book, weights, prices, options, rebalance_day):
        return []
    with localcontext(WIDE):
        value = book.cash + holdings_value(held, prices) - book.withdrawal
        investable = max(value * (1 - risk.cash_buffer), ZERO)
        sells, buys = _trades_to_target(
            book,
            weights=weights,
            held=held,
            prices=prices,
            fractionable=fractionable,
            investable=investable,
            risk=risk,
        )
        budget = book.cash - book.withdrawal - max(value, ZERO) * risk.cash_buffer
        budget += sum((i.quantity * i.reference_price for i in sells), ZERO)
        buys = _fit_budget(buys, max(budget, ZERO), fractionable, risk)
    return sells + buys


def plan_liquidation(book: BookState, prices: Mapping[str, Decimal]) -> list[Intent]:
    """Sell everything the book holds, exactly (a removed strategy)."""
    held = {s: q for s, q in book.positions.items() if q > 0}
    _check_prices(set(held), prices)
    return [
        Intent(book.strategy_id, s, "sell", held[s], prices[s], REASON_LIQUIDATE)
        for s in sorted(held)
    ]


def _check_prices(symbols: set[str], prices: Mapping[str, Decimal]) -> None:
    missing = sorted(s for s in symbols if s not in prices or prices[s] <= 0)
    if missing:
        raise PlanningError(f"no usable price for {', '.join(missing)}")


def _trades_to_target(
    book: BookState,
    *,
    weights: Mapping[str, Decimal],
    held: Mapping[str, Decimal],
    prices: Mapping[str, Decimal],
    fractionable: Collection[str],
    investable: Decimal,
    risk: RiskConfig,
) -> tuple[list[Intent], list[Intent]]:
    sells: list[Intent] = []
    buys: list[Intent] = []
    for symbol in sorted(set(weights) | set(held)):
        price = prices[symbol]
        quantum = quantum_for(symbol in fractionable)
        have = held.get(symbol, ZERO)
        target = floor_to(weights.get(symbol, ZERO) * investable / price, quantum)
        if target == 0 and have > 0:
            sells.append(Intent(book.strategy_id, symbol, "sell", have, price, REASON_EXIT))
            continue
        # Whole-share sells of a non-fractionable asset: sell a little less, never more.
        qty = floor_to(abs(target - have), quantum)
        if qty == 0 or qty * price < risk.min_trade_value:
            continue
        side: Side = "sell" if target < have else "buy"
        intent = Intent(book.strategy_id, symbol, side, qty, price, REASON_REBALANCE)
        (sells if side == "sell" else buys).append(intent)
    return sells, buys


def _fit_budget(
    buys: list[Intent], budget: Decimal, fractionable: Collection[str], risk: RiskConfig
) -> list[Intent]:
    """Scale buys down pro rata (then floor each) so they cost no more than `budget`."""
    wants = [(i.quantity, i.reference_price, quantum_for(i.symbol in fractionable)) for i in buys]
    quantities = scale_to_budget(wants, budget)
    if quantities == [i.quantity for i in buys]:
        return buys
    scaled: list[Intent] = []
    for intent, qty in zip(buys, quantities, strict=True):
        if qty > 0 and qty * intent.reference_price >= risk.min_trade_value:
            scaled.append(
                Intent(
                    intent.strategy_id,
                    intent.symbol,
                    "buy",
                    qty,
                    intent.reference_price,
                    REASON_SCALED,
                )
            )
    return scaled
