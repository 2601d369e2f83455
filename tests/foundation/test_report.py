"""`alchemiser report --format table|json|csv` and a `--strategy` that matches nothing."""

from __future__ import annotations

import csv
import io
import json
from decimal import Decimal

from click.testing import CliRunner
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.books.report import render_report
from alchemiser.cli import main
from tests.books.test_views import build_ledger


async def test_json_parses_and_keeps_numbers_exact(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    rows = json.loads(await render_report(engine, "positions", strategy="a", fmt="json"))
    assert len(rows) == 1
    spy = rows[0]
    assert (spy["strategy_id"], spy["symbol"]) == ("a", "SPY")
    assert Decimal(spy["quantity"]) == 6  # an exact string, not a float
    books = json.loads(await render_report(engine, "books", fmt="json"))
    assert {b["strategy_id"] for b in books} >= {"a", "b", "unallocated"}


async def test_csv_has_a_header_and_one_line_per_row(engine: AsyncEngine) -> None:
    await build_ledger(engine)
    text = await render_report(engine, "trades", fmt="csv")
    table = list(csv.DictReader(io.StringIO(text)))
    assert table and "filled_at" in table[0]
    assert {r["symbol"] for r in table} >= {"SPY", "TLT"}
    assert all("T" in r["filled_at"] for r in table)  # ISO 8601


def test_a_strategy_that_matches_nothing_says_so(db_url: str) -> None:
    env = {"ALCHEMISER_DATABASE_URL": db_url, "ALCHEMISER_CONFIG": "/dev/null"}
    result = CliRunner().invoke(main, ["report", "books", "--strategy", "nope"], env=env)
    assert result.exit_code == 1
    assert "no book named 'nope' (books: unallocated)" in result.stderr


def test_format_json_from_the_command_line(db_url: str) -> None:
    env = {"ALCHEMISER_DATABASE_URL": db_url, "ALCHEMISER_CONFIG": "/dev/null"}
    result = CliRunner().invoke(main, ["report", "books", "--format", "json"], env=env)
    assert result.exit_code == 0, result.output
    assert [b["strategy_id"] for b in json.loads(result.stdout)] == ["unallocated"]
