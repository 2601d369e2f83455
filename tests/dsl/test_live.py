"""`evaluate` (the columns read on one date) gives what the per-date walk gives.

The walk survives here as the oracle (`tests/dsl/oracle.py`). Weights are
compared to within 1e-12 and so are the trace's floats: a node's daily return
adds the tickers it holds in the walk's dict order and in the table's order in
the columns, so a NAV and a score on it may differ in the last bit. Everything
else (errors and their messages, trace entries and their order, rankings,
warnings) must be identical.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import polars as pl
import pytest
from hypothesis import given
from hypothesis import strategies as st

from alchemiser.dsl import PriceHistory, Strategy, evaluate, evaluator, parse_strategy
from alchemiser.dsl.ast import Node
from alchemiser.dsl.errors import StrategyError
from alchemiser.dsl.synthetic import random_walk_prices
from tests.dsl import oracle
from tests.dsl.conftest import day, frame
from tests.dsl.test_properties import SETTINGS, TICKERS, nodes, strategy_of

AS_OF = date(2024, 6, 28)
HISTORY_DAYS = 2000
TOLERANCE = 1e-12


def outcome(run: Any, strategy: Strategy, prices: PriceHistory, when: date) -> Any:
    try:
        return run(strategy, prices, when)
    except StrategyError as exc:
        return exc


def same_floats(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return a == b or abs(a - b) <= TOLERANCE * max(1.0, abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return list(a) == list(b) and all(same_floats(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same_floats(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and a == b


def assert_same(strategy: Strategy, prices: PriceHistory, walked: PriceHistory, when: date) -> None:
    """`evaluate` on `prices` and the oracle on `walked` (its own memo) agree."""
    mine = outcome(evaluate, strategy, prices, when)
    theirs = outcome(oracle.evaluate, strategy, walked, when)
    where = (strategy.name, when)
    if isinstance(theirs, StrategyError):
        assert type(mine) is type(theirs), (where, mine, theirs)
        assert str(mine) == str(theirs), where
        return
    assert not isinstance(mine, StrategyError), (where, mine)
    assert list(mine.weights) == list(theirs.weights), where
    assert same_floats(mine.weights, theirs.weights), where
    assert [e["node"] for e in mine.trace] == [e["node"] for e in theirs.trace], where
    assert same_floats(mine.trace, theirs.trace), where
    assert mine.warnings == theirs.warnings, where


@pytest.mark.slow
def test_whole_corpus_on_three_dates(parsed_corpus: dict[str, object]) -> None:
    strategies = [s for s in parsed_corpus.values() if isinstance(s, Strategy)]
    tickers = {t for s in strategies for t in s.tickers}
    data = random_walk_prices(tickers, AS_OF, HISTORY_DAYS, seed=1)
    prices, walked = PriceHistory(data), PriceHistory(data)
    last = len(prices.calendar) - 1
    for strategy in strategies:
        for i in (last - 500, last - 137, last):
            assert_same(strategy, prices, walked, prices.calendar[i])


def gapped(data: pl.DataFrame, ticker: str, k: int) -> pl.DataFrame:
    """`data` without `ticker`'s row on calendar day k."""
    dates = sorted(data["date"].unique().to_list())
    return data.filter(~((pl.col("symbol") == ticker) & (pl.col("date") == dates[k])))


# Every form, an `if` inside a filter (spread or not), an empty child, a flat
# ticker (zero volatility) and NAVs over gaps.
GAPS = """(defsymphony "gaps" {}
  (weight-equal
    [(if (> (rsi "AAA" {:window 3}) 50)
         [(filter (max-drawdown {:window 3}) (select-bottom 2)
                  [(asset "AAA") (group "g" [(asset "BBB") (asset "CCC")])
                   (if (< (current-price "BBB") 21) [(asset "DDD") (asset "BBB")])
                   (if (> (current-price "EEE") 1) [(asset "AAA")])])]
         [(weight-inverse-volatility 2
            [(asset "CCC") (group "h" [(asset "AAA")]) (asset "DDD")])])
     (weight-specified 0.5 (asset "BBB") 0.3 (asset "AAA")
                       0.2 (if (> (current-price "AAA") 12) [(asset "CCC")]))]))"""


CHOICES = (
    "BRANCH_VECTOR_IS_UNIT",
    "SPECIFIED_EMPTY_SHARE_PROPORTIONAL",
    "FILTER_RANKS_EMPTY_CHILDREN",
    "ZERO_VOLATILITY_TAKES_ALL",
)


@pytest.mark.parametrize("flipped", [None, *CHOICES])
def test_errors_traces_and_weights_on_every_day_with_missing_and_short_data(
    flipped: str | None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if flipped is not None:  # the open choice flipped in both
        monkeypatch.setattr(evaluator, flipped, False)
        monkeypatch.setattr(oracle, flipped, False)
    closes = {
        "AAA": [10, 11, 10.5, 12, 11, 11.5, 13, 12, 12.5, 14, 13, 12, 12.2, 13.1, 12.7, 12.9],
        "BBB": [20, 21, 22, 21, 20, 19, 21, 22, 23, 22, 21, 20, 20.5, 21.5, 22.5, 21],
        "CCC": [5, 5, 5, 5, 5.1, 5, 4.9, 5, 5.2, 5.1, 5, 5.3, 5.2, 5.4, 5.1, 5.0],
        "DDD": [7.0] * 16,
        "EEE": [3.0] * 16,  # read only today: missing days fail only what reads it
    }
    strategy = parse_strategy(GAPS, "gaps.clj")
    data = gapped(gapped(frame(closes), "CCC", 6), "BBB", 11)
    for k in (5, 12):
        data = gapped(data, "EEE", k)
    prices, walked = PriceHistory(data), PriceHistory(data)
    failing = 0
    for i, when in enumerate(prices.calendar):
        assert_same(strategy, prices, walked, when)
        failing += isinstance(outcome(evaluate, strategy, prices, when), StrategyError)
        assert day(i) == when
    assert 0 < failing < len(prices.calendar)


# QQQ misses a day and TLT starts late: group NAVs and filters meet both.
SHORT = gapped(random_walk_prices(TICKERS, AS_OF, 300, seed=11), "QQQ", 280).filter(
    (pl.col("symbol") != "TLT") | (pl.col("date") > date(2024, 1, 1))
)


@SETTINGS
@given(body=nodes, flipped=st.sampled_from([None, *CHOICES]))
def test_random_strategies_fail_and_trace_as_the_walk(body: Node, flipped: str | None) -> None:
    strategy = strategy_of(body)
    prices, walked = PriceHistory(SHORT), PriceHistory(SHORT)
    with pytest.MonkeyPatch.context() as patch:
        if flipped is not None:
            patch.setattr(evaluator, flipped, False)
            patch.setattr(oracle, flipped, False)
        for i in (5, 150, 260, 279, 281, 299):
            assert_same(strategy, prices, walked, prices.calendar[i])


def test_a_date_read_from_a_block_is_the_date_evaluated_alone() -> None:
    # Dates evaluated in a row share blocks of columns computed ahead; each must
    # be exactly what a fresh history gives for that date alone.
    strategy = parse_strategy(GAPS.replace('"EEE"', '"AAA"'), "gaps.clj")
    data = random_walk_prices(["AAA", "BBB", "CCC", "DDD"], AS_OF, 40, seed=4)
    shared = PriceHistory(data)
    forth = shared.calendar[10:]
    for when in [*forth, *reversed(forth)]:
        mine = outcome(evaluate, strategy, shared, when)
        alone = outcome(evaluate, strategy, PriceHistory(data), when)
        assert type(mine) is type(alone) and str(mine) == str(alone), when
        if not isinstance(mine, StrategyError):
            assert (mine.weights, mine.trace) == (alone.weights, alone.trace), when
