"""`alchemiser evaluate`: read strategy files and a Parquet of bars, print results.

The I/O lives here so that `dsl/` stays pure. A failing file is reported and the
others go on; the caller exits non-zero if any failed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date
from pathlib import Path
from typing import Any

import polars as pl

from alchemiser.dsl import (
    PriceHistory,
    StrategyError,
    StrategySyntaxError,
    evaluate,
    parse_strategy,
)
from alchemiser.dsl.ast import Strategy

REQUIRED_COLUMNS = ("symbol", "date", "close")
STRATEGY_SUFFIX = ".clj"
DECISIONS = frozenset({"if", "filter"})  # the trace entries that choose holdings


def strategy_files(paths: Iterable[Path]) -> list[Path]:
    """The given files, with each directory replaced by the .clj files in it."""
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.glob(f"*{STRATEGY_SUFFIX}")) if path.is_dir() else [path])
    return out


def load_bars(path: Path) -> PriceHistory:
    """A Parquet file of daily bars as a `PriceHistory`; ValueError if unusable."""
    frame = pl.read_parquet(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}")
    if frame.schema["date"] != pl.Date:
        frame = frame.with_columns(pl.col("date").cast(pl.Date))
    return PriceHistory(frame)


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
    paths: Iterable[Path],
    bars: Path,
    as_of: date,
    *,
    as_json: bool,
    echo: Callable[[str], None],
) -> int:
    """Evaluate every strategy; return the exit status (0 only if all succeeded)."""
    try:
        prices = load_bars(bars)
    except (OSError, ValueError, pl.exceptions.PolarsError) as exc:
        echo(f"cannot read bars: {exc}")
        return 2
    failed = 0
    for path in strategy_files(paths):
        result, warnings = evaluate_file(path, prices, as_of)
        failed += result["error"] is not None
        echo(json.dumps(result) if as_json else render(result, warnings))
    return 1 if failed else 0


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
