"""What `alchemiser backtest` does with its arguments: files, bars, capital, costs."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import polars as pl

from alchemiser.backtest.command import run_backtest
from alchemiser.backtest.engine import Costs
from alchemiser.dsl import PriceHistory
from alchemiser.errors import UserError
from alchemiser.settings import Settings


def parse_capital(text: str) -> Decimal:
    try:
        capital = Decimal(text)
    except InvalidOperation:
        raise UserError(f"--capital {text!r} is not a number") from None
    if not capital.is_finite() or capital <= 0:
        raise UserError(f"--capital {text} must be a positive amount")
    return capital


def parse_date(option: str, text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise UserError(f"{option} {text!r} is not a date (YYYY-MM-DD)") from None


def check_paths(paths: Sequence[Path]) -> None:
    """Every path given exists (one line naming the first that does not)."""
    for path in paths:
        if not path.exists():
            raise UserError(f"{path}: no such file or folder")


def bars_from_file(path: Path, end: date) -> PriceHistory:
    from alchemiser.evaluate_command import read_bars_file

    try:
        frame = read_bars_file(path)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        raise UserError(f"cannot read bars: {exc}") from exc
    return PriceHistory(frame.filter(pl.col("date") <= end))


def backtest_main(
    settings: Settings,
    paths: Sequence[Path],
    start_text: str,
    end_text: str,
    *,
    bars: Path | None,
    capital: str,
    as_json: bool,
    out: Path | None,
    echo: Callable[[str], None],
) -> int:
    from alchemiser.tickers import strategy_files

    start, end = parse_date("--start", start_text), parse_date("--end", end_text)
    amount = parse_capital(capital)
    check_paths([*paths, *([bars] if bars else [])])
    if start >= end:
        raise UserError(f"--start {start} must be before --end {end}")
    configured = settings.strategies
    files = strategy_files(paths) if paths else [c.file for c in configured]
    if not files:
        raise UserError("no strategy files given, and none configured in [[strategies]]")
    if bars is not None:
        prices = bars_from_file(bars, end)
    else:
        from alchemiser.evaluate_command import store_prices

        prices = store_prices(settings, files, end)
    costs = Costs(settings.backtest.slippage_bps, settings.backtest.fee_per_trade)
    return run_backtest(
        files,
        prices,
        start,
        end,
        capital=amount,
        costs=costs,
        configured=configured,
        as_json=as_json,
        out=out,
        echo=echo,
    )
