"""`alchemiser backtest`: its allocations are `evaluate --as-of`'s, its outputs, its errors."""

from __future__ import annotations

import json
import random
from datetime import date
from decimal import Decimal
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from alchemiser.backtest.command import ACCOUNT, backtest
from alchemiser.backtest.engine import Costs
from alchemiser.cli import main
from alchemiser.dsl import PriceHistory, evaluate, parse_strategy
from alchemiser.dsl.synthetic import random_walk_prices
from alchemiser.evaluate_command import evaluate_file
from alchemiser.settings import StrategyConfig
from tests.dsl.conftest import CORPUS, REPO

EXAMPLES = sorted((REPO / "strategies").glob("*.clj"))
END = date(2024, 6, 28)
YEAR = 252
SAMPLE = 3
WEIGHT_TOLERANCE = 1e-12  # see tests/dsl/test_columns.py
JSON_FIELDS = {
    "file",
    "strategy",
    "start",
    "end",
    "final_value",
    "cagr",
    "max_drawdown",
    "sharpe",
    "trades",
    "error",
}


def corpus_sample() -> list[Path]:
    if not CORPUS.is_dir():
        return []
    files = sorted(CORPUS.glob("*.clj"))
    small = [p for p in files if p.stat().st_size < 20_000]
    return random.Random(14).sample(small, SAMPLE)


def tickers_of(files: list[Path]) -> set[str]:
    out: set[str] = set()
    for path in files:
        out |= set(parse_strategy(path.read_text(encoding="utf-8"), path.name).tickers)
    return out


@pytest.fixture(scope="module")
def example_bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("bars") / "bars.parquet"
    random_walk_prices(tickers_of(EXAMPLES), END, 700, seed=7).write_parquet(path)
    return path


def test_every_days_allocation_is_what_evaluate_gives_that_day() -> None:
    files = EXAMPLES + corpus_sample()
    prices = PriceHistory(random_walk_prices(tickers_of(files), END, 1100, seed=8))
    days = range(len(prices.calendar) - YEAR, len(prices.calendar))
    results = backtest(files, prices, days, capital=Decimal(10_000), costs=Costs())
    for result in results:
        assert result.error is None, result.error
        assert result.file is not None
        assert result.run.dates == [prices.calendar[i] for i in days]
        # What `evaluate --as-of` runs for each day (`evaluate_file`), parsing once.
        strategy = parse_strategy(result.file.read_text(encoding="utf-8"), str(result.file))
        for when, decided in zip(result.run.dates, result.run.decisions, strict=True):
            evaluated = evaluate(strategy, prices, when).weights
            assert list(decided) == list(evaluated), (result.name, when)
            for ticker, weight in evaluated.items():
                assert abs(decided[ticker] - weight) <= WEIGHT_TOLERANCE
        last, _ = evaluate_file(result.file, prices, result.run.dates[-1])
        assert set(last["weights"]) == set(result.run.decisions[-1])


def test_cli_allocations_match_the_evaluate_command(example_bars: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "report"
    args = ["backtest", *map(str, EXAMPLES), "--bars", str(example_bars)]
    args += ["--start", "2024-01-02", "--end", END.isoformat(), "--out", str(out), "--json"]
    result = runner.invoke(main, args)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert [set(line) for line in lines] == [JSON_FIELDS] * len(EXAMPLES)
    assert [line["strategy"] for line in lines] == [p.stem for p in EXAMPLES]
    assert all(line["error"] is None and line["final_value"] > 0 for line in lines)
    decided = pl.read_parquet(out / "allocations.parquet")
    for as_of in ("2024-01-02", END.isoformat()):
        evaluate_args = ["evaluate", *map(str, EXAMPLES), "--bars", str(example_bars)]
        shown = runner.invoke(main, [*evaluate_args, "--as-of", as_of, "--json"])
        for line in map(json.loads, shown.output.splitlines()):
            rows = decided.filter(
                (pl.col("strategy") == Path(line["file"]).stem)
                & (pl.col("date") == date.fromisoformat(as_of))
            )
            got = dict(zip(rows["symbol"], rows["weight"], strict=True))
            assert set(got) == set(line["weights"])
            assert all(abs(got[t] - w) <= WEIGHT_TOLERANCE for t, w in line["weights"].items())


def test_report_files(example_bars: Path, tmp_path: Path) -> None:
    out = tmp_path / "report"
    args = ["backtest", *map(str, EXAMPLES[:2]), "--bars", str(example_bars)]
    args += ["--start", "2024-05-01", "--end", END.isoformat(), "--out", str(out)]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert EXAMPLES[0].stem in result.output and "CAGR" in result.output
    values = pl.read_parquet(out / "values.parquet")
    assert values.columns == ["date", "strategy", "value"]
    assert values.height == 2 * values["date"].n_unique()
    assert isinstance(values.schema["value"], pl.Decimal)
    assert pl.read_parquet(out / "allocations.parquet").columns == [
        "date",
        "strategy",
        "symbol",
        "weight",
    ]
    for name in ("equity.png", "drawdown.png", f"holdings-{EXAMPLES[0].stem}.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("data:image/png;base64,") == 2 + 2
    assert "http://" not in page and "https://" not in page and "<script" not in page


def test_a_failing_strategy_is_reported_and_the_others_run(
    example_bars: Path, tmp_path: Path
) -> None:
    late = tmp_path / "late.clj"  # ZZZ's bars start after the backtest does
    late.write_text('(defsymphony "late" {} (weight-equal [(asset "SPY") (asset "ZZZ")]))')
    bars = pl.read_parquet(example_bars)
    extra = random_walk_prices(["ZZZ"], END, 40, seed=9).select(bars.columns)
    path = tmp_path / "bars.parquet"
    pl.concat([bars, extra]).write_parquet(path)
    first_zzz = extra["date"].min()
    args = ["backtest", str(late), str(EXAMPLES[0]), "--bars", str(path)]
    result = CliRunner().invoke(main, [*args, "--start", "2024-01-02", "--end", "2024-06-28"])
    assert result.exit_code == 1
    result = CliRunner().invoke(
        main, [*args, "--start", "2024-01-02", "--end", "2024-06-28", "--json"]
    )
    failed, ran = (json.loads(line) for line in result.output.splitlines())
    assert failed["final_value"] is None
    assert failed["error"].startswith("2024-01-02: ZZZ: ")
    assert ran["error"] is None and ran["final_value"] > 0
    assert first_zzz > date(2024, 1, 2)


def test_the_account_compounds_each_book_from_its_allocation(example_bars: Path) -> None:
    prices = PriceHistory(pl.read_parquet(example_bars))
    days = range(len(prices.calendar) - 60, len(prices.calendar))
    files = EXAMPLES[:2]
    configured = [
        StrategyConfig(id="a", file=files[0], allocation=Decimal("0.6")),
        StrategyConfig(id="b", file=files[1], allocation=Decimal("0.3")),
    ]
    capital = Decimal(10_000)
    fee = Costs(fee_per_trade=Decimal(1))  # not proportional: each book pays its own
    results = backtest(files, prices, days, capital=capital, costs=fee, configured=configured)
    assert [r.name for r in results] == [files[0].stem, files[1].stem, ACCOUNT]
    alone = {
        c.id: backtest([c.file], prices, days, capital=c.allocation * capital, costs=fee)[
            0
        ].run.values
        for c in configured
    }
    account = results[-1].run.values
    assert account[0] != capital  # fees were paid
    for k, value in enumerate(account):
        assert value == Decimal(1000) + alone["a"][k] + alone["b"][k]


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--start", "2024-06-01", "--end", "2024-05-01"], "must be before --end"),
        (["--start", "2024-01-02", "--end", "2030-01-01"], "after the last bar"),
        (["--start", "2024-13-02", "--end", "2024-06-28"], "is not a date"),
        (["nope.clj", "--start", "2024-01-02", "--end", "2024-06-28"], "nope.clj: no such"),
        (["--start", "2024-01-02", "--end", "2024-06-28", "--capital", "x"], "not a number"),
    ],
)
def test_everyday_mistakes_are_one_line(
    example_bars: Path, arguments: list[str], message: str
) -> None:
    args = ["backtest", str(EXAMPLES[0]), "--bars", str(example_bars), *arguments]
    result = CliRunner().invoke(main, args)
    assert result.exit_code != 0
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert "Traceback" not in result.output
