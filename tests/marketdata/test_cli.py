"""`alchemiser data refresh|show|export` against the simulator and a real database."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest
from click.testing import CliRunner

from alchemiser.cli import main
from alchemiser.sim import SimThread
from tests.marketdata.conftest import HISTORY_YEARS, THROUGH

STRATEGY = """(defsymphony "cli test" {:asset-class "EQUITIES"}
  (weight-equal [(asset "SPY") (asset "BIL")]))
"""


@pytest.fixture
def env(db_url: str, sim: SimThread, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "test.clj").write_text(STRATEGY)
    config = tmp_path / "alchemiser.toml"
    config.write_text('[[strategies]]\nid = "test"\nfile = "test.clj"\nallocation = 0.5\n')
    return {
        "ALCHEMISER_CONFIG": str(config),
        "ALCHEMISER_DATABASE_URL": db_url,
        "ALCHEMISER_MARKETDATA__HISTORY_YEARS": str(HISTORY_YEARS),
        "ALCHEMISER_LOG_LEVEL": "warning",
        **{
            k: v
            for k, v in sim.env().items()
            if k in {"ALPACA_DATA_URL", "ALPACA_API_KEY", "ALPACA_SECRET_KEY"}
        },
    }


def run(env: dict[str, str], *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["data", *args], env=env, catch_exceptions=False)
    return result.exit_code, result.output


def test_refresh_show_and_export(env: dict[str, str], tmp_path: Path) -> None:
    code, out = run(env, "refresh", "--strategies", "qqq", "--through", str(THROUGH))
    assert code == 0, out
    assert f"bars through {THROUGH}: 3 tickers loaded" in out

    code, out = run(env, "show", "spy", "--last", "3")
    assert code == 0, out
    assert f"to {THROUGH}" in out
    assert len([line for line in out.splitlines() if line.startswith("  2026-")]) == 3

    target = tmp_path / "bars.parquet"
    code, out = run(env, "export", "--as-of", "2026-11-16", str(target))
    assert code == 0, out
    frame = pl.read_parquet(target)
    assert frame.columns == ["symbol", "date", "open", "high", "low", "close", "volume"]
    assert frame.dtypes == [pl.String, pl.Date, *[pl.Float64] * 5]
    assert sorted(frame["symbol"].unique()) == ["BIL", "QQQ", "SPY"]
    assert str(frame["date"].max()) == "2026-11-16"
    assert frame.height == frame.select("symbol", "date").unique().height

    # The evaluator reads the file as it is.
    strategy = tmp_path / "test.clj"
    evaluated = CliRunner().invoke(
        main,
        ["evaluate", "--bars", str(target), "--as-of", "2026-11-16", "--json", str(strategy)],
        env=env,
    )
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout.splitlines()[0])
    assert (result["error"], result["weights"]) == (None, {"BIL": 0.5, "SPY": 0.5})


def test_refresh_reports_a_failed_ticker_and_exits_1(env: dict[str, str], sim: SimThread) -> None:
    sim.set_unknown("ZZZQ")

    code, out = run(env, "refresh", "SPY", "ZZZQ", "--through", str(THROUGH))

    assert code == 1
    assert "1 ticker loaded, 1 failed" in out
    assert "ZZZQ: the data API returned no bars" in out


def test_show_an_unknown_ticker(env: dict[str, str]) -> None:
    code, out = run(env, "show", "NOPE")
    assert code == 0
    assert "NOPE: no bars stored" in out


def test_refresh_needs_tickers(env: dict[str, str]) -> None:
    result = CliRunner().invoke(main, ["data", "refresh"], env=env)
    assert result.exit_code == 2
    assert "name some TICKERS, pass --strategies or --for FILE.clj" in result.output


def test_export_date_must_be_given(env: dict[str, str], tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["data", "export", str(tmp_path / "x.parquet")], env=env)
    # The as-of date is always explicit: no silent "today".
    assert result.exit_code == 2
    assert "--as-of" in result.output
