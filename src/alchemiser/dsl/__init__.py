"""The Composer strategy language: text in, allocation and trace out. Pure: no I/O.

    strategy = parse_strategy(text, "strategies/x.clj")  # StrategySyntaxError
    prices = PriceHistory(frame)  # polars: symbol, date, close; as-of row = today
    result = evaluate(strategy, prices, as_of)  # StrategyDataError / StrategyError
    result.weights, result.trace, result.warnings

Share one `PriceHistory` between all strategies and dates of a run or backtest:
indicator series, and each strategy's last block of columns, are cached in it.
"""

from alchemiser.dsl.ast import Strategy, format_strategy
from alchemiser.dsl.errors import StrategyDataError, StrategyError, StrategySyntaxError
from alchemiser.dsl.evaluator import Evaluation, evaluate
from alchemiser.dsl.indicators import PriceHistory
from alchemiser.dsl.parser import normalize_ticker, parse_strategy

__all__ = [
    "Evaluation",
    "PriceHistory",
    "Strategy",
    "StrategyDataError",
    "StrategyError",
    "StrategySyntaxError",
    "evaluate",
    "format_strategy",
    "normalize_ticker",
    "parse_strategy",
]
