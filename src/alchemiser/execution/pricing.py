"""Where in the spread a walk's limit sits, on the tick, and which quotes can be used."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_DOWN, ROUND_HALF_UP, Decimal
from typing import Literal

Side = Literal["buy", "sell"]

CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")  # Alpaca's price increment below $1
ONE_DOLLAR = Decimal(1)


@dataclass(frozen=True, slots=True)
class Quote:
    bid: Decimal
    ask: Decimal
    at: datetime
    # The last trade, where the data API has one: a fallback for an unusable quote.
    last: Decimal | None = None
    last_at: datetime | None = None


def tick_for(price: Decimal) -> Decimal:
    return CENT if price >= ONE_DOLLAR else SUB_DOLLAR_TICK


def floor_to_tick(price: Decimal) -> Decimal:
    """The highest price on the tick at or below `price` (a buy's cap)."""
    return price.quantize(tick_for(price), rounding=ROUND_FLOOR)


def quote_problem(quote: Quote, now: datetime, max_age: timedelta) -> str | None:
    """Why a quote cannot price a limit (one-sided, crossed, stale), or None when it can."""
    if quote.bid <= 0 or quote.ask <= 0:
        return f"one-sided quote (bid {quote.bid}, ask {quote.ask})"
    if quote.bid > quote.ask:
        return f"crossed quote (bid {quote.bid} > ask {quote.ask})"
    if now - quote.at > max_age:
        return f"stale quote ({quote.at.isoformat()})"
    return None


def usable_quote(
    quote: Quote, now: datetime, max_age: timedelta, band: Decimal
) -> tuple[Quote | None, str | None]:
    """The quote to price from, and what was wrong with the one given (None: nothing).

    A one-sided, crossed or stale quote is replaced by the last trade ± `band` (a
    fraction of its price) when that trade is fresh and `band` is positive; else
    there is nothing to price from and the walk waits.
    """
    problem = quote_problem(quote, now, max_age)
    if problem is None:
        return quote, None
    last, last_at = quote.last, quote.last_at
    if band <= 0 or last is None or last <= 0 or last_at is None or now - last_at > max_age:
        return None, problem
    width = last * band
    banded = Quote(floor_to_tick(last - width), _ceil_to_tick(last + width), last_at, last, last_at)
    return banded, problem


def _ceil_to_tick(price: Decimal) -> Decimal:
    return price.quantize(tick_for(price), rounding=ROUND_CEILING)


def limit_price(side: Side, quote: Quote, fraction: Decimal) -> Decimal:
    """`fraction` of the way from the near side to the far side, on the nearest tick.

    Ties go to the near side. On a one-tick spread, 75 % is nearer the far side, so
    the first step is already marketable there, as the fraction says it should be.
    """
    spread = quote.ask - quote.bid
    if side == "buy":
        raw = quote.bid + fraction * spread
        return raw.quantize(tick_for(raw), rounding=ROUND_HALF_DOWN)
    raw = quote.ask - fraction * spread
    return raw.quantize(tick_for(raw), rounding=ROUND_HALF_UP)
