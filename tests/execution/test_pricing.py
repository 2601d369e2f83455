"""Limit prices in the spread and on the tick; which quotes a walk refuses."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alchemiser.execution.pricing import (
    Quote,
    floor_to_tick,
    limit_price,
    quote_problem,
    usable_quote,
)

NOW = datetime(2026, 11, 18, 20, 30, tzinfo=UTC)
FRESH = timedelta(seconds=10)


def q(bid: str, ask: str, age_s: float = 0) -> Quote:
    return Quote(Decimal(bid), Decimal(ask), NOW - timedelta(seconds=age_s))


@pytest.mark.parametrize(
    ("side", "bid", "ask", "fraction", "expected"),
    [
        ("buy", "100.00", "100.10", "0.75", "100.07"),  # 100.075: a tie goes to the bid
        ("sell", "100.00", "100.10", "0.75", "100.03"),  # 100.025: a tie goes to the ask
        ("buy", "100.00", "100.10", "0.85", "100.08"),  # 100.085: a tie, to the bid
        ("buy", "100.00", "100.10", "0.72", "100.07"),  # 100.072: the nearest tick
        ("buy", "100.00", "100.01", "0.75", "100.01"),  # one cent wide: nearer the ask
        ("sell", "100.00", "100.01", "0.75", "100.00"),  # and nearer the bid
        ("buy", "0.5000", "0.5100", "0.85", "0.5085"),  # sub-dollar: 0.0001 tick
        ("buy", "50.00", "50.00", "0.75", "50.00"),  # locked
    ],
)
def test_limit_price_is_the_fraction_of_the_spread_on_the_tick(
    side: str, bid: str, ask: str, fraction: str, expected: str
) -> None:
    price = limit_price(side, q(bid, ask), Decimal(fraction))  # type: ignore[arg-type]
    assert price == Decimal(expected)
    assert Decimal(bid) <= price <= Decimal(ask)


@pytest.mark.parametrize(
    ("quote", "problem"),
    [
        (q("0", "100.10"), "one-sided"),
        (q("100.00", "0"), "one-sided"),
        (q("100.20", "100.10"), "crossed"),
        (q("100.00", "100.10", age_s=60), "stale"),
    ],
)
def test_unusable_quotes_are_named(quote: Quote, problem: str) -> None:
    found = quote_problem(quote, NOW, FRESH)
    assert found is not None and found.startswith(problem)


def test_a_fresh_two_sided_quote_is_usable() -> None:
    assert quote_problem(q("100.00", "100.01", age_s=1), NOW, FRESH) is None


def test_a_cap_is_floored_to_the_tick() -> None:
    assert floor_to_tick(Decimal("118.28850")) == Decimal("118.28")
    assert floor_to_tick(Decimal("0.512345")) == Decimal("0.5123")


def traded(bid: str, ask: str, last: str, trade_age_s: float, quote_age_s: float = 0) -> Quote:
    return replace(
        q(bid, ask, quote_age_s), last=Decimal(last), last_at=NOW - timedelta(seconds=trade_age_s)
    )


def test_an_unusable_quote_falls_back_to_a_fresh_last_trade_within_the_band() -> None:
    quote, problem = usable_quote(traded("0", "101.00", "100.00", 1), NOW, FRESH, Decimal("0.001"))
    assert problem is not None and problem.startswith("one-sided")
    assert quote is not None and (quote.bid, quote.ask) == (Decimal("99.90"), Decimal("100.10"))
    stale, _ = usable_quote(
        traded("100.00", "100.10", "100.05", 1, quote_age_s=60), NOW, FRESH, Decimal("0.0005")
    )
    assert stale is not None  # 100.05 ± 0.05, rounded outward to the tick
    assert (stale.bid, stale.ask) == (Decimal("99.99"), Decimal("100.11"))


@pytest.mark.parametrize(
    ("quote", "band"),
    [
        (traded("0", "101.00", "100.00", 1), Decimal(0)),  # no band: wait
        (traded("0", "101.00", "100.00", 60), Decimal("0.001")),  # the trade is stale too
        (q("0", "101.00"), Decimal("0.001")),  # no trade at all
    ],
)
def test_without_a_fresh_trade_and_a_band_an_unusable_quote_means_wait(
    quote: Quote, band: Decimal
) -> None:
    usable, problem = usable_quote(quote, NOW, FRESH, band)
    assert usable is None and problem is not None


def test_a_usable_quote_is_used_as_it_is() -> None:
    quote = traded("100.00", "100.02", "90.00", 1)
    assert usable_quote(quote, NOW, FRESH, Decimal("0.01")) == (quote, None)
