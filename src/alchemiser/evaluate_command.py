"""`alchemiser evaluate`: read strategy files and daily bars, print results.

Bars come from the bar store (the default) or a Parquet file (`--bars`). The I/O
lives here so that `dsl/` stays pure. A failing file is reported and the others
go on; the caller exits non-zero if any failed. Before reading the store, every
ticker the files need is checked: all those without bars through the as-of
session are named at once, with where each is used and the command that loads them.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Iterable, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import polars as pl

from alchemiser.dsl import (
    PriceHistory,
    StrategyError,
    StrategySyntaxError,
    evaluate,
    parse_strategy,
)
from alchemiser.dsl.ast import Strategy
from alchemiser.errors import UserError
from alchemiser.tickers import ticker_uses

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncEngine

    from alchemiser.settings import Settings

REQUIRED_COLUMNS = ("symbol", "date", "close")
DECISIONS = frozenset({"if", "filter"})  # the trace entries that choose holdings


class MissingBars(UserError):
    """Tickers the strategies need have no bars (or stale ones) in the store."""


def load_bars(path: Path) -> PriceHistory:
    """A Parquet file of daily bars as a `PriceHistory`; ValueError if unusable."""
    return PriceHistory(read_bars_file(path))


def read_bars_file(path: Path) -> pl.DataFrame:
    frame = pl.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.schema["date"] != pl.Date:
        frame = frame.with_columns(pl.col("date").cast(pl.Date))
    return frame


def _error(exc: BaseException) -> dict[str, Any]:
    line = exc.line if isinstance(exc, StrategySyntaxError) else None
    column = exc.column if isinstance(exc, StrategySyntaxError) else None
    return {"kind": type(exc).__name__, "message": str(exc), "line": line, "column": column}


def evaluate_file(
    path: Path, prices: PriceHistory, as_of: date
) -> tuple[dict[str, Any], list[str]]:
    """One result object (file, as_of, weights, trace, error) and the warnings."""
    result: dict[str, Any] = {
        "file": str(path),
        "as_of": as_of.isoformat(),
        "weights": {},
        "trace": [],
        "error": None,
    }
    warnings: list[str] = []
    try:
        strategy: Strategy = parse_strategy(path.read_text(encoding="utf-8"), str(path))
        evaluation = evaluate(strategy, prices, as_of)
    except (StrategyError, OSError, UnicodeDecodeError) as exc:
        result["error"] = _error(exc)
    else:
        result["weights"], result["trace"] = evaluation.weights, evaluation.trace
        warnings = evaluation.warnings
    return result, warnings


def run_evaluate(
    files: Sequence[Path],
    prices: PriceHistory,
    as_of: date,
    *,
    as_json: bool,
    echo: Callable[[str], None],
) -> int:
    """Evaluate every strategy; return the exit status (0 only if all succeeded)."""
    failed = 0
    for path in files:
        result, warnings = evaluate_file(path, prices, as_of)
        failed += result["error"] is not None
        echo(json.dumps(result) if as_json else render(result, warnings))
    return 1 if failed else 0


def parseable(files: Iterable[Path]) -> dict[Path, Strategy]:
    """The files that parse (the others are reported by `evaluate_file`)."""
    out: dict[Path, Strategy] = {}
    for path in files:
        try:
            out[path] = parse_strategy(path.read_text(encoding="utf-8"), str(path))
        except (StrategyError, OSError, UnicodeDecodeError):
            continue
    return out


def check_bars(strategies: dict[Path, Strategy], last_bar: dict[str, date], as_of: date) -> None:
    """MissingBars naming every ticker without bars through `as_of`, and the fix."""
    lines: list[str] = []
    needing: list[Path] = []
    tickers: set[str] = set()
    for path, strategy in strategies.items():
        gaps = [u for u in ticker_uses(strategy) if last_bar.get(u.ticker, date.min) < as_of]
        for use in gaps:
            last = last_bar.get(use.ticker)
            state = f"bars end {last}" if last else "no bars"
            lines.append(f"  {path}:{use.line}:{use.column}  {use.ticker}  ({state})")
            tickers.add(use.ticker)
        needing += [path] if gaps else []
    if lines:
        count = len(tickers)
        files = " ".join(shlex.quote(str(p)) for p in needing)
        raise MissingBars(
            f"{count} ticker{'s' if count != 1 else ''} without bars through {as_of}"
            " in the bar store:\n" + "\n".join(lines) + "\nload them with:\n"
            f"  alchemiser data refresh --for {files}"
        )


def store_prices(settings: Settings, files: Sequence[Path], as_of: date) -> PriceHistory:
    """The bar store's bars through `as_of` of every ticker the files name."""
    from alchemiser import db
    from alchemiser.marketdata.frame import historical_frame
    from alchemiser.marketdata.store import load_coverage

    strategies = parseable(files)
    tickers = sorted({t for s in strategies.values() for t in s.tickers})

    async def go(engine: AsyncEngine) -> pl.DataFrame:
        coverage = await load_coverage(engine, tickers)
        check_bars(strategies, {t: c.last_date for t, c in coverage.items()}, as_of)
        return await historical_frame(engine, tickers, as_of)

    frame: pl.DataFrame = db.run(go, db.database_url(settings), migrate=True)
    return PriceHistory(frame)


# ---------------------------------------------------------------- text output


def render(result: dict[str, Any], warnings: list[str]) -> str:
    lines = [f"{result['file']}  (as of {result['as_of']})"]
    error = result["error"]
    if error is not None:
        lines.append(f"  FAILED ({error['kind']}): {error['message']}")
        return "\n".join(lines)
    width = max(len("ticker"), *(len(t) for t in result["weights"]))
    lines.append(f"  {'ticker':<{width}}  weight")
    lines += [f"  {t:<{width}}  {w:7.2%}" for t, w in result["weights"].items()]
    lines += [f"  warning: {w}" for w in warnings]
    if result["trace"]:
        lines.append("  trace:")
        lines += [f"    {line}" for entry in result["trace"] for line in trace_lines(entry)]
    return "\n".join(lines)


def decision_lines(trace: Iterable[dict[str, Any]]) -> list[str]:
    """The `if` and `filter` steps of a trace, as `trace_lines` renders them."""
    return [line for entry in trace if entry["node"] in DECISIONS for line in trace_lines(entry)]


def trace_lines(entry: dict[str, Any]) -> list[str]:
    """One trace entry as text lines (a filter adds one line per candidate)."""
    at = entry["at"]
    kind = entry["node"]
    if kind == "indicator":
        params = " ".join(f"{k}={v}" for k, v in entry["params"].items())
        return [f"{at}  {entry['indicator']} {entry['ticker']} {params} = {entry['value']:.4f}"]
    if kind == "if":
        if "left" in entry:
            values = f"{entry['left']:.4f} vs {entry['right']:.4f}"
        else:
            values = ", ".join(str(c["result"]).lower() for c in entry["comparisons"])
        return [f"{at}  if {entry['condition']}: {values} -> {entry['branch']}"]
    if kind == "filter":
        head = f"{at}  filter {entry['metric']} select {entry['select']}:"
        rows = [
            f"    #{c['rank']} {c['candidate']} {c['score']:.4f}" + (" *" if c["selected"] else "")
            for c in sorted(
                entry["candidates"], key=lambda c: c["rank"] or len(entry["candidates"]) + 1
            )
        ]
        return [head, *rows]
    children = ", ".join(f"{c['candidate']} σ={c['stdev_return']:.4f}" for c in entry["children"])
    return [f"{at}  {kind} {entry.get('window', '')}: {children}"]
