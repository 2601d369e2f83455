"""Errors raised by the strategy language.

Every error a user can cause names where it happened: a syntax error names the
file, line and column; a data error names the ticker, indicator, window and date.
"""

from __future__ import annotations

from datetime import date


class StrategyError(Exception):
    """Any failure to load or evaluate a strategy."""


class StrategySyntaxError(StrategyError):
    """The text is not a valid strategy; raised at load time."""

    def __init__(self, file: str, line: int, column: int, message: str) -> None:
        super().__init__(f"{file}:{line}:{column}: {message}")
        self.file = file
        self.line = line
        self.column = column
        self.message = message


class StrategyDataError(StrategyError):
    """Prices are missing or too short for something the evaluation needs."""

    def __init__(
        self,
        ticker: str,
        indicator: str,
        window: int | None,
        as_of: date | None,
        message: str,
    ) -> None:
        where = f"{indicator}" + (f" window {window}" if window is not None else "")
        when = f" as of {as_of.isoformat()}" if as_of is not None else ""
        super().__init__(f"{ticker}: {where}{when}: {message}")
        self.ticker = ticker
        self.indicator = indicator
        self.window = window
        self.as_of = as_of
        self.message = message
