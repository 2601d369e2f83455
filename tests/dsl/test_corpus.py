"""Every corpus strategy evaluates, on generated prices, to weights summing to 1."""

from __future__ import annotations

import json
from datetime import date

import pytest

from alchemiser.dsl import PriceHistory, Strategy, evaluate
from alchemiser.dsl.errors import StrategyError
from alchemiser.dsl.synthetic import random_walk_prices
from tests.dsl.conftest import BROKEN

AS_OF = date(2024, 6, 28)
# Windows reach 600 days and group NAVs add their own look-back on top.
HISTORY_DAYS = 2000


@pytest.fixture(scope="module")
def corpus_prices(parsed_corpus: dict[str, object]) -> PriceHistory:
    tickers = {t for s in parsed_corpus.values() if isinstance(s, Strategy) for t in s.tickers}
    return PriceHistory(random_walk_prices(tickers, AS_OF, HISTORY_DAYS, seed=1))


def test_every_corpus_strategy_evaluates(
    parsed_corpus: dict[str, object], corpus_prices: PriceHistory
) -> None:
    failures: dict[str, str] = {}
    evaluated = 0
    for name, strategy in parsed_corpus.items():
        if name == BROKEN:
            continue
        assert isinstance(strategy, Strategy), name
        try:
            result = evaluate(strategy, corpus_prices, AS_OF)
        except StrategyError as exc:
            failures[name] = str(exc)
            continue
        evaluated += 1
        assert result.weights, name
        assert all(w > 0 for w in result.weights.values()), name
        assert abs(sum(result.weights.values()) - 1) <= 1e-9, name
        assert set(result.weights) <= set(strategy.tickers), name
        assert result.warnings == [], name  # every ticker has generated data
        json.dumps(result.trace)  # JSON-serialisable
    assert failures == {}
    assert evaluated == 78
