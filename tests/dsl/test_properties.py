"""Property-based tests on random well-formed strategies."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from alchemiser.dsl import PriceHistory, evaluate, parse_strategy
from alchemiser.dsl._deep import run_deep
from alchemiser.dsl.ast import (
    And,
    Asset,
    Compare,
    Condition,
    Filter,
    Group,
    If,
    Indicator,
    Node,
    Not,
    Number,
    Or,
    Select,
    Strategy,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
    format_node,
)
from alchemiser.dsl.errors import StrategyError
from alchemiser.dsl.synthetic import random_walk_prices

TICKERS = ("SPY", "QQQ", "TLT", "GLD", "BIL")
AS_OF = date(2024, 6, 28)
# Two levels of group NAV with RSI need about 2 x 260 days.
PRICES = random_walk_prices(TICKERS, AS_OF, 600, seed=5)
SETTINGS = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

WINDOWED = (
    "moving-average-price",
    "exponential-moving-average-price",
    "moving-average-return",
    "cumulative-return",
    "stdev-return",
    "stdev-price",
    "max-drawdown",
    "rsi",
)


def params_for(name: str) -> st.SearchStrategy[tuple[tuple[str, int], ...]]:
    if name == "current-price":
        return st.just(())
    if name == "percentage-price-oscillator":
        return st.just((("short-window", 2), ("long-window", 4)))
    if name == "percentage-price-oscillator-signal":
        return st.just((("short-window", 2), ("long-window", 4), ("smooth-window", 3)))
    return st.integers(2, 6).map(lambda w: (("window", w),))


names = st.sampled_from(
    (
        *WINDOWED,
        "current-price",
        "percentage-price-oscillator",
        "percentage-price-oscillator-signal",
    )
)


@st.composite
def indicators(draw: st.DrawFn, with_ticker: bool) -> Indicator:
    name = draw(names)
    ticker = draw(st.sampled_from(TICKERS)) if with_ticker else None
    return Indicator(name, ticker, ticker, draw(params_for(name)))


numbers = st.floats(-50, 150, allow_nan=False).map(lambda v: Number(round(v, 3)))
compares = st.builds(
    Compare,
    st.sampled_from((">", "<", ">=", "<=", "=")),
    indicators(with_ticker=True),
    st.one_of(numbers, indicators(with_ticker=True)),
)
conditions: st.SearchStrategy[Condition] = st.recursive(
    compares,
    lambda inner: st.one_of(
        st.builds(And, st.lists(inner, min_size=1, max_size=2).map(tuple)),
        st.builds(Or, st.lists(inner, min_size=1, max_size=2).map(tuple)),
        st.builds(Not, inner),
    ),
    max_leaves=3,
)
assets = st.sampled_from(TICKERS).map(lambda t: Asset(t, t, None))
labels = st.text(st.characters(blacklist_categories=("Cs",)), max_size=6)


@st.composite
def specified(draw: st.DrawFn, children: st.SearchStrategy[Node]) -> WeightSpecified:
    kids = tuple(draw(st.lists(children, min_size=1, max_size=3)))
    cuts = sorted(
        draw(st.lists(st.integers(0, 100), min_size=len(kids) - 1, max_size=len(kids) - 1))
    )
    percents = [b - a for a, b in zip([0, *cuts], [*cuts, 100], strict=True)]
    return WeightSpecified(
        tuple(float(p) for p in percents), tuple(p / 100 for p in percents), kids
    )


def extend(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    kids = st.lists(children, min_size=1, max_size=3).map(tuple)
    return st.one_of(
        st.builds(Group, labels, kids),
        st.builds(WeightEqual, kids),
        specified(children),
        st.builds(WeightInverseVolatility, st.integers(2, 5), kids),
        st.builds(
            Filter,
            indicators(with_ticker=False),
            st.builds(Select, st.booleans(), st.integers(1, 3)),
            kids,
        ),
        st.builds(If, conditions, kids, st.one_of(st.none(), kids)),
    )


nodes: st.SearchStrategy[Node] = st.recursive(assets, extend, max_leaves=6)


def strategy_of(body: Node) -> Strategy:
    return parse_strategy(run_deep(lambda: format_node(body)), "random.clj")


@pytest.fixture(scope="module")
def history() -> PriceHistory:
    return PriceHistory(PRICES)


@SETTINGS
@given(body=nodes)
def test_print_then_parse_gives_the_same_ast(body: Node) -> None:
    assert strategy_of(body).body == body


@SETTINGS
@given(body=nodes)
def test_weights_are_positive_sum_to_one_and_deterministic(body: Node) -> None:
    strategy = strategy_of(body)
    try:
        first = evaluate(strategy, PriceHistory(PRICES), AS_OF)
    except StrategyError:
        assume(False)  # e.g. a strategy that selects nothing today
        return
    assert all(w > 0 for w in first.weights.values())
    assert abs(sum(first.weights.values()) - 1) <= 1e-9
    assert set(first.weights) <= set(TICKERS)
    again = evaluate(strategy, PriceHistory(PRICES), AS_OF)
    assert again.weights == first.weights
    assert again.trace == first.trace


@SETTINGS
@given(kids=st.lists(nodes, min_size=2, max_size=4), data=st.data())
def test_reordering_weight_equal_children_keeps_the_result(
    kids: list[Node], data: st.DataObject, history: PriceHistory
) -> None:
    shuffled = data.draw(st.permutations(kids))
    try:
        first = evaluate(strategy_of(WeightEqual(tuple(kids))), history, AS_OF).weights
    except StrategyError:
        assume(False)
        return
    second = evaluate(strategy_of(WeightEqual(tuple(shuffled))), history, AS_OF).weights
    assert second.keys() == first.keys()
    for ticker, weight in first.items():
        assert second[ticker] == pytest.approx(weight, abs=1e-12)


def test_prices_cover_every_ticker() -> None:
    assert set(PRICES["symbol"].unique()) == set(TICKERS)
    assert PRICES.schema["date"] == pl.Date
