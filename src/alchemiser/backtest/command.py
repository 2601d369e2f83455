"""`alchemiser backtest`: strategies over a range of sessions, each book and the account.

Each strategy is evaluated on every session in one columnar pass, then its book
is simulated (`engine`). A strategy that fails (does not parse, or cannot be
evaluated on some session) is reported with its error and the others run. The
account is the configured strategies together: each book starts at its
allocation of the capital and compounds on its own; the unallocated rest is cash.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from pathlib import Path

from rich.console import Console
from rich.progress import Progress
from rich.table import Table

from alchemiser.backtest.engine import BookRun, Closes, Costs, run_book
from alchemiser.backtest.stats import Stats, statistics
from alchemiser.dsl import PriceHistory, Strategy, StrategyError, parse_strategy
from alchemiser.dsl.columns import Allocations, allocations
from alchemiser.errors import UserError
from alchemiser.settings import StrategyConfig

ACCOUNT = "account"
CENT = Decimal("0.01")
WIDE_TABLE = 200


@dataclass
class Result:
    """One strategy's (or the account's) backtest: its book, or why it has none."""

    file: Path | None
    name: str
    run: BookRun
    stats: Stats | None

    @property
    def error(self) -> str | None:
        return self.run.error


def session_range(prices: PriceHistory, start: date, end: date) -> range:
    """Calendar indices of the sessions from `start` to `end`; UserError if none."""
    if start >= end:
        raise UserError(f"--start {start} must be before --end {end}")
    calendar = prices.calendar
    if not calendar or calendar[-1] < start or calendar[0] > end:
        first, last = (calendar[0], calendar[-1]) if calendar else ("-", "-")
        raise UserError(f"no bars between {start} and {end} (the bars run {first} to {last})")
    if calendar[-1] < end:
        raise UserError(f"--end {end} is after the last bar ({calendar[-1]})")
    first_i = next(i for i, d in enumerate(calendar) if d >= start)
    last_i = max(i for i, d in enumerate(calendar) if d <= end)
    return range(first_i, last_i + 1)


def parse_files(files: Sequence[Path]) -> tuple[dict[Path, Strategy], dict[Path, str]]:
    strategies: dict[Path, Strategy] = {}
    errors: dict[Path, str] = {}
    for path in files:
        try:
            strategies[path] = parse_strategy(path.read_text(encoding="utf-8"), str(path))
        except (StrategyError, OSError, UnicodeDecodeError) as exc:
            errors[path] = str(exc)
    return strategies, errors


def backtest(
    files: Sequence[Path],
    prices: PriceHistory,
    days: range,
    *,
    capital: Decimal,
    costs: Costs,
    configured: Sequence[StrategyConfig] = (),
    progress: Callable[[str], None] = lambda _: None,
) -> list[Result]:
    """One result per file (in order), then the account's when every configured
    strategy is among the files."""
    strategies, errors = parse_files(files)
    closes = Closes(prices)
    results: list[Result] = []
    books: dict[Path, Allocations] = {}
    for path in files:
        progress(path.stem)
        if path in errors:
            results.append(Result(path, path.stem, BookRun(error=errors[path]), None))
            continue
        try:
            cols = allocations(strategies[path], prices)
        except StrategyError as exc:
            results.append(Result(path, path.stem, BookRun(error=str(exc)), None))
            continue
        books[path] = cols
        run = run_book(
            strategies[path], prices, cols, days, capital=capital, costs=costs, closes=closes
        )
        results.append(Result(path, path.stem, run, _stats(run)))
    if configured and all(c.file.resolve() in {p.resolve() for p in files} for c in configured):
        by_file = {p.resolve(): p for p in files}
        given = _Inputs(strategies, books, prices, days, capital, costs)
        results.append(_account(configured, by_file, given))
    return results


def _stats(run: BookRun) -> Stats | None:
    if run.error is not None or not run.values:
        return None
    return statistics(run.dates, run.values, run.trades, run.traded_share)


@dataclass(frozen=True)
class _Inputs:
    strategies: dict[Path, Strategy]
    columns: dict[Path, Allocations]
    prices: PriceHistory
    days: range
    capital: Decimal
    costs: Costs


def _account(
    configured: Sequence[StrategyConfig], by_file: dict[Path, Path], given: _Inputs
) -> Result:
    """The configured books together, each simulated from its own share of the capital."""
    total = BookRun()
    capital, days = given.capital, given.days
    cash = capital - sum((c.allocation * capital for c in configured), Decimal(0))
    runs: list[BookRun] = []
    for config in configured:
        path = by_file[config.file.resolve()]
        if path not in given.columns:
            total.error = f"{config.id}: not evaluated"
            return Result(None, ACCOUNT, total, None)
        share = config.allocation * capital
        run = run_book(
            given.strategies[path],
            given.prices,
            given.columns[path],
            days,
            capital=share,
            costs=given.costs,
        )
        if run.error is not None:
            total.error = f"{config.id}: {run.error}"
            return Result(None, ACCOUNT, total, None)
        runs.append(run)
    total.dates = [given.prices.calendar[i] for i in days]
    total.values = [cash + sum((r.values[k] for r in runs), Decimal(0)) for k in range(len(days))]
    total.trades = sum(r.trades for r in runs)
    value = float(capital)
    total.traded_share = sum(
        r.traded_share * float(c.allocation * capital) / value
        for r, c in zip(runs, configured, strict=True)
    )
    return Result(None, ACCOUNT, total, _stats(total))


# ---------------------------------------------------------------------- output


def _num(x: float) -> float | None:
    return None if math.isnan(x) or math.isinf(x) else x


def json_line(result: Result, start: date, end: date) -> str:
    s = result.stats
    return json.dumps(
        {
            "file": None if result.file is None else str(result.file),
            "strategy": result.name,
            "start": (s.start if s else start).isoformat(),
            "end": (s.end if s else end).isoformat(),
            "final_value": float(s.final_value.quantize(CENT)) if s else None,
            "cagr": _num(s.cagr) if s else None,
            "max_drawdown": _num(s.max_drawdown) if s else None,
            "sharpe": _num(s.sharpe) if s else None,
            "trades": s.trades if s else None,
            "error": result.error,
        }
    )


def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.1%}"


def _fixed(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def table(results: Sequence[Result]) -> Table:
    out = Table(title="backtest")
    out.add_column("strategy", no_wrap=True)
    for heading in ("final value", "CAGR", "vol", "Sharpe", "Sortino", "max DD"):
        out.add_column(heading, justify="right", no_wrap=True)
    for heading in ("DD peak → trough", "Calmar", "turnover/yr", "trades"):
        out.add_column(heading, justify="right", no_wrap=True)
    for r in results:
        s = r.stats
        if s is None:
            out.add_row(r.name, f"[red]failed: {r.error}[/red]")
            continue
        out.add_row(
            r.name,
            f"{s.final_value.quantize(CENT):,}",
            _pct(s.cagr),
            _pct(s.volatility),
            _fixed(s.sharpe),
            _fixed(s.sortino),
            _pct(s.max_drawdown),
            f"{s.drawdown_peak} → {s.drawdown_trough}",
            _fixed(s.calmar),
            _pct(s.turnover),
            str(s.trades),
        )
    return out


def run_backtest(
    files: Sequence[Path],
    prices: PriceHistory,
    start: date,
    end: date,
    *,
    capital: Decimal,
    costs: Costs,
    configured: Sequence[StrategyConfig],
    as_json: bool,
    out: Path | None,
    echo: Callable[[str], None],
) -> int:
    """Backtest, print, write the report; exit status 0 only if every strategy ran."""
    days = session_range(prices, start, end)
    err = Console(stderr=True)
    with Progress(console=err, transient=True, disable=not err.is_terminal) as bar:
        task = bar.add_task("evaluating", total=len(files))

        def step(name: str) -> None:
            bar.update(task, advance=1, description=name)

        results = backtest(
            files, prices, days, capital=capital, costs=costs, configured=configured, progress=step
        )
    if as_json:
        for r in results:
            echo(json_line(r, prices.calendar[days[0]], prices.calendar[days[-1]]))
    else:
        console = Console()
        if not console.is_terminal:  # a pipe or file: no wrapping at 80 columns
            console = Console(width=WIDE_TABLE)
        console.print(table(results))
    if out is not None:
        from alchemiser.backtest.report import write_report

        write_report(out, results)
        if not as_json:
            echo(f"report written to {out / 'report.html'}")
    return 1 if any(r.error is not None for r in results) else 0
