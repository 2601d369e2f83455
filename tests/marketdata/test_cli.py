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


# ------------------------------------------- keys, reach, --for, tickers, evaluate


def test_rejected_keys_are_one_message_and_stop_the_refresh(
    env: dict[str, str], sim: SimThread, tmp_path: Path
) -> None:
    many = tmp_path / "many.clj"
    names = [f"T{i:02d}" for i in range(12)]
    many.write_text(
        "(weight-equal [" + " ".join(f'(asset "{t}")' for t in names) + "])", encoding="utf-8"
    )
    wrong = env | {"ALPACA_API_KEY": "PKWRONG", "ALPACA_SECRET_KEY": "wrong-secret"}

    result = CliRunner().invoke(main, ["data", "refresh", "--for", str(many)], env=wrong)

    assert result.exit_code == 1
    assert result.stderr.count("Alpaca rejected the keys (HTTP 401)") == 1
    for name in ("ALPACA_API_KEY", "ALPACA_SECRET_KEY", "ALPACA_PAPER"):
        assert name in result.stderr
    assert "wrong-secret" not in result.output and "PKWRONG" not in result.output
    # The first request went alone; after its 401 nothing else was sent (or logged).
    assert result.stderr.count("bar refresh failed") == 1
    assert result.stderr.count("HTTP 401") == 2  # that log line and the error


def test_unreachable_data_api_is_one_line_after_the_retries(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    gone = env | {
        "ALPACA_DATA_URL": f"http://127.0.0.1:{port}",
        "ALCHEMISER_MARKETDATA__MAX_RETRIES": "1",
        "ALCHEMISER_MARKETDATA__RETRY_BACKOFF_SECONDS": "0.01",
    }
    result = CliRunner().invoke(main, ["data", "refresh", "SPY", "QQQ"], env=gone)
    assert result.exit_code == 1
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert errors == [
        f"error: cannot reach Alpaca's data API at http://127.0.0.1:{port} after 2 attempts:"
        " bars for QQQ,SPY: ConnectionError: [Errno 111] Connection refused"
    ]


def test_refresh_for_strategy_files_and_evaluate_on_the_bar_store(
    env: dict[str, str], tmp_path: Path
) -> None:
    strategy = tmp_path / "test.clj"
    code, out = run(env, "refresh", "--for", str(strategy), "--through", str(THROUGH))
    assert code == 0, out
    assert f"bars through {THROUGH}: 2 tickers loaded" in out

    # No --bars: the bar store; no --as-of given here, so name the session loaded.
    args = ["evaluate", "--as-of", str(THROUGH), "--json", str(strategy)]
    evaluated = CliRunner().invoke(main, args, env=env)
    assert evaluated.exit_code == 0, evaluated.output
    result = json.loads(evaluated.stdout.splitlines()[0])
    assert result["as_of"] == str(THROUGH)
    assert (result["error"], result["weights"]) == (None, {"BIL": 0.5, "SPY": 0.5})

    # A second refresh tops up what the first loaded.
    code, out = run(env, "refresh", "--for", str(strategy), "--through", str(THROUGH))
    assert f"bars through {THROUGH}: 2 tickers topped up" in out


def test_evaluate_names_every_ticker_without_bars_and_the_command_that_loads_them(
    env: dict[str, str], tmp_path: Path
) -> None:
    code, out = run(env, "refresh", "SPY", "--through", str(THROUGH))
    assert code == 0, out
    strategy = tmp_path / "gaps.clj"
    strategy.write_text(
        '(defsymphony "gaps" {}\n'
        '  (if (> (rsi "QQQ" {:window 10}) 50)\n'
        '    [(asset "SPY")]\n'
        '    [(weight-equal [(asset "TLT") (asset "SPY")])]))\n',
        encoding="utf-8",
    )
    result = CliRunner().invoke(main, ["evaluate", "--as-of", str(THROUGH), str(strategy)], env=env)
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"error: 2 tickers without bars through {THROUGH} in the bar store:",
        f"  {strategy}:2:10  QQQ  (no bars)",
        f"  {strategy}:4:21  TLT  (no bars)",
        "load them with:",
        f"  alchemiser data refresh --for {strategy}",
    ]


def test_tickers_lists_a_strategys_tickers(tmp_path: Path) -> None:
    strategy = tmp_path / "t.clj"
    strategy.write_text(
        '(if (> (rsi "QQQ" {:window 10}) 50)\n  [(asset "SPY")]\n  [(asset "BIL")])'
    )
    result = CliRunner().invoke(main, ["tickers", str(strategy)])
    assert result.exit_code == 0
    assert result.stdout.split() == ["QQQ", "SPY", "BIL"]
    where = CliRunner().invoke(main, ["tickers", "--where", str(strategy)])
    assert where.stdout.splitlines()[0] == f"QQQ\t{strategy}:1:8"


def test_evaluate_defaults_to_the_last_closed_session(env: dict[str, str], tmp_path: Path) -> None:
    from alchemiser.marketdata.refresh import last_completed_session

    code, out = run(env, "refresh", "--for", str(tmp_path / "test.clj"), "--through", str(THROUGH))
    assert code == 0, out
    # The simulator's history ends at its frozen clock; the wall clock is later (or equal).
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "test.clj")], env=env)
    latest = last_completed_session()
    if latest == THROUGH:
        assert result.exit_code == 0, result.output
    else:
        assert f"2 tickers without bars through {latest}" in result.stderr
        assert f"(bars end {THROUGH})" in result.stderr
