"""The Composer strategy language: text in, allocation and trace out. Pure: no I/O."""

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
