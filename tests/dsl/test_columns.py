"""The columnar evaluation gives, day by day, the allocation the per-day walk gives.

Weights are compared to within 1e-12: a ticker that several children hold on
the same day is summed in the walk in the order its dict met them, and in the
columns in a fixed order, so the last bit may differ. Everything else (which
days fail, which tickers are held) must be identical.
"""

from __future__ import annotations

import random
from datetime import date

import pytest

from alchemiser.dsl import PriceHistory, Strategy, parse_strategy
from alchemiser.dsl.columns import Allocations, allocations
from alchemiser.dsl.errors import StrategyError
from alchemiser.dsl.synthetic import random_walk_prices
from tests.dsl.conftest import REPO, day, frame
from tests.dsl.oracle import evaluate

AS_OF = date(2024, 6, 28)
HISTORY_DAYS = 2000
YEAR = 252
SAMPLE = 4  # corpus strategies checked on every day of a year
WEIGHT_TOLERANCE = 1e-12
EXAMPLES = sorted((REPO / "strategies").glob("*.clj"))


def assert_same_day(strategy: Strategy, prices: PriceHistory, cols: Allocations, i: int) -> None:
    when = prices.calendar[i]
    try:
        walked = evaluate(strategy, prices, when).weights
    except StrategyError:
        assert cols.bad[i], f"{strategy.name}: the walk fails on {when}, the columns do not"
        return
    assert not cols.bad[i], f"{strategy.name}: the columns fail on {when}, the walk does not"
    columnar = cols.on(i)
    assert list(columnar) == list(walked), (strategy.name, when)
    for ticker, weight in walked.items():
        assert abs(columnar[ticker] - weight) <= WEIGHT_TOLERANCE, (strategy.name, when, ticker)


@pytest.fixture(scope="module")
def corpus_strategies(parsed_corpus: dict[str, object]) -> dict[str, Strategy]:
    return {n: s for n, s in parsed_corpus.items() if isinstance(s, Strategy)}


@pytest.fixture(scope="module")
def corpus_history(corpus_strategies: dict[str, Strategy]) -> PriceHistory:
    tickers = {t for s in corpus_strategies.values() for t in s.tickers}
    return PriceHistory(random_walk_prices(tickers, AS_OF, HISTORY_DAYS, seed=1))


def test_whole_corpus_on_three_dates(
    corpus_strategies: dict[str, Strategy], corpus_history: PriceHistory
) -> None:
    last = len(corpus_history.calendar) - 1
    days = [last - 500, last - 137, last]
    for strategy in corpus_strategies.values():
        cols = allocations(strategy, corpus_history)
        for i in days:
            assert_same_day(strategy, corpus_history, cols, i)


def test_examples_and_a_corpus_sample_on_every_day_of_a_year(
    corpus_strategies: dict[str, Strategy],
) -> None:
    sample = random.Random(14).sample(sorted(corpus_strategies), SAMPLE)
    strategies = [parse_strategy(p.read_text(encoding="utf-8"), p.name) for p in EXAMPLES]
    strategies += [corpus_strategies[name] for name in sample]
    tickers = {t for s in strategies for t in s.tickers}
    # Short history: the first months fail for want of data, on the same days both ways.
    history = PriceHistory(random_walk_prices(tickers, AS_OF, 700, seed=3))
    last = len(history.calendar) - 1
    for strategy in strategies:
        cols = allocations(strategy, history)
        for i in range(last - YEAR + 1, last + 1):
            assert_same_day(strategy, history, cols, i)


def test_missing_and_short_data_fail_on_the_same_days() -> None:
    text = """(defsymphony "gaps" {}
      (if (> (rsi "AAA" {:window 3}) 50)
          [(filter (max-drawdown {:window 3}) (select-bottom 1)
                   [(asset "AAA") (group "g" [(asset "BBB") (asset "CCC")])])]
          [(weight-inverse-volatility 2 [(asset "CCC") (asset "AAA")])]))"""
    strategy = parse_strategy(text, "gaps.clj")
    closes = {
        "AAA": [10, 11, 10.5, 12, 11, 11.5, 13, 12, 12.5, 14, 13, 12, 12.2, 13.1, 12.7, 12.9],
        "BBB": [20, 21, 22, 21, 20, 19, 21, 22, 23, 22, 21, 20, 20.5, 21.5, 22.5, 21],
        "CCC": [5, 5, 5, 5, 5.1, 5, 4.9, 5, 5.2, 5.1, 5, 5.3, 5.2, 5.4, 5.1, 5.0],
    }
    prices = frame(closes)
    # CCC has no price on day 6: days reading it there (or its return into day 7) fail.
    prices = prices.filter(~((prices["symbol"] == "CCC") & (prices["date"] == day(6))))
    history = PriceHistory(prices)
    cols = allocations(strategy, history)
    failing = 0
    for i in range(len(history.calendar)):
        assert_same_day(strategy, history, cols, i)
        failing += bool(cols.bad[i])
    assert 0 < failing < len(history.calendar)
