"""`alchemiser report`: the psql views, as text tables, JSON or CSV.

Each report is one query on a view (see README "Reading the books with psql"),
so what the command prints is exactly what a user gets from psql. JSON and CSV
keep every number exact (numerics as strings in JSON, as written in CSV).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any, Literal

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ReportName = Literal["books", "positions", "trades", "runs", "execution"]
REPORT_NAMES: tuple[ReportName, ...] = ("books", "positions", "trades", "runs", "execution")
ReportFormat = Literal["table", "json", "csv"]
REPORT_FORMATS: tuple[ReportFormat, ...] = ("table", "json", "csv")
DEFAULT_LIMIT = 50
CENT = Decimal("0.01")
# Columns shown to the cent; other numbers are shown exactly (trailing zeros dropped).
MONEY_COLUMNS = frozenset(
    {
        "cash",
        "positions_value",
        "total_value",
        "net_funding",
        "pnl",
        "market_value",
        "cost_basis",
        "realised_pnl",
        "unrealised_pnl",
        "total_pnl",
        "amount",
        "traded_value",
    }
)


@dataclass(frozen=True)
class Report:
    columns: list[str]
    rows: list[tuple[Any, ...]]


_QUERIES: dict[ReportName, str] = {
    "books": """
        SELECT strategy_id, state, allocation, cash, positions_value, total_value,
               net_funding, pnl, account_share
        FROM book_value
        WHERE (CAST(:strategy AS text) IS NULL OR strategy_id = :strategy)
        ORDER BY strategy_id""",
    "positions": """
        SELECT p.strategy_id, p.symbol, p.quantity, p.average_cost, p.last_price,
               p.market_value, p.unrealised_pnl, n.realised_pnl
        FROM book_positions p
        JOIN book_pnl n USING (strategy_id, symbol)
        WHERE (CAST(:strategy AS text) IS NULL OR p.strategy_id = :strategy)
        ORDER BY p.strategy_id, p.symbol""",
    "trades": """
        SELECT filled_at, strategy_id, symbol, side, quantity, price, amount,
               execution_kind, run_id
        FROM trade_history
        WHERE (CAST(:strategy AS text) IS NULL OR strategy_id = :strategy)
        ORDER BY filled_at DESC, fill_id DESC
        LIMIT :limit""",
    "runs": """
        SELECT run_id, trading_day, kind, status, price_mode, duration, strategies,
               failed_strategies, intents, broker_orders, book_fills, traded_value,
               reconciled, error
        FROM run_summary
        ORDER BY trading_day DESC, kind
        LIMIT :limit""",
    # Each walk-the-book: slippage against the first quote's mid, spread, time to fill.
    "execution": """
        SELECT trading_day, run_id, symbol, side, orders, last_status, filled_quantity,
               average_price, arrival_mid, spread_bps, slippage_bps, time_to_fill
        FROM execution_quality
        ORDER BY trading_day DESC NULLS LAST, run_id DESC, side DESC, symbol
        LIMIT :limit""",
}


async def fetch_report(
    engine: AsyncEngine,
    name: ReportName,
    *,
    strategy: str | None = None,
    limit: int = DEFAULT_LIMIT,
) -> Report:
    """Run one report's query. `strategy` filters books/positions/trades to one book."""
    async with engine.connect() as conn:
        result = await conn.execute(text(_QUERIES[name]), {"strategy": strategy, "limit": limit})
        return Report(list(result.keys()), [tuple(row) for row in result])


class UnknownBook(ValueError):
    """`--strategy` names no book; the message lists the ones there are."""


async def render_report(
    engine: AsyncEngine,
    name: ReportName,
    *,
    strategy: str | None = None,
    limit: int = DEFAULT_LIMIT,
    fmt: ReportFormat = "table",
) -> str:
    if strategy is not None:
        await _check_book(engine, strategy)
    report = await fetch_report(engine, name, strategy=strategy, limit=limit)
    if fmt == "json":
        return format_json(report.columns, report.rows)
    if fmt == "csv":
        return format_csv(report.columns, report.rows)
    return format_table(report.columns, report.rows)


async def _check_book(engine: AsyncEngine, strategy: str) -> None:
    async with engine.connect() as conn:
        books = list((await conn.execute(text("SELECT strategy_id FROM book_value"))).scalars())
    if strategy not in books:
        known = ", ".join(sorted(books)) or "none yet"
        raise UnknownBook(f"no book named {strategy!r} (books: {known})")


def format_json(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A JSON array of objects; numerics are exact strings, times ISO 8601."""
    return json.dumps([dict(zip(columns, map(_json, row), strict=True)) for row in rows], indent=2)


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return _plain(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, timedelta):
        return value.total_seconds()
    return value


def format_csv(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A header and one line per row; numbers exact, times ISO 8601."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows([["" if v is None else _json(v) for v in row] for row in rows])
    return out.getvalue().rstrip("\n")


def format_table(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Aligned columns (numbers to the right), a header rule, and a row count."""
    cells = [
        [_cell(column, value) for column, value in zip(columns, row, strict=True)] for row in rows
    ]
    widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(columns)]
    numeric = [
        bool(rows) and all(isinstance(r[i], int | Decimal) or r[i] is None for r in rows)
        for i in range(len(columns))
    ]
    lines = [_line(columns, widths, [False] * len(columns))]
    lines.append("  ".join("-" * w for w in widths))
    lines += [_line(r, widths, numeric) for r in cells]
    lines.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(lines)


def _line(cells: Sequence[str], widths: Sequence[int], right: Sequence[bool]) -> str:
    parts = [c.rjust(w) if r else c.ljust(w) for c, w, r in zip(cells, widths, right, strict=True)]
    return "  ".join(parts).rstrip()


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        if column in MONEY_COLUMNS:
            return f"{value.quantize(CENT, rounding=ROUND_HALF_EVEN):,}"
        return _plain(value)
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S%z")
    if isinstance(value, timedelta):
        return f"{value.total_seconds():.1f}s"
    return str(value)


def _plain(value: Decimal) -> str:
    """A Decimal without exponent or trailing zeros: 1.500000000 → 1.5, 1E+1 → 10."""
    text_ = format(value, "f")
    return text_.rstrip("0").rstrip(".") if "." in text_ else text_
