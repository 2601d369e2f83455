"""`alchemiser check` against the simulator (frozen at the run time) and a real database."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from alchemiser.cli import main
from alchemiser.sim import SimThread
from tests.marketdata.conftest import HISTORY_YEARS, THROUGH

STRATEGY = '(defsymphony "check" {}\n  (weight-equal [(asset "SPY") (asset "BIL")]))\n'


@pytest.fixture
def env(db_url: str, sim: SimThread, tmp_path: Path) -> dict[str, str]:
    (tmp_path / "check.clj").write_text(STRATEGY)
    config = tmp_path / "alchemiser.toml"
    config.write_text('[[strategies]]\nid = "chk"\nfile = "check.clj"\nallocation = 0.4\n')
    return {
        "ALCHEMISER_CONFIG": str(config),
        "ALCHEMISER_DATABASE_URL": db_url,
        "ALCHEMISER_MARKETDATA__HISTORY_YEARS": str(HISTORY_YEARS),
        "ALCHEMISER_LOG_LEVEL": "warning",
        **sim.env(),
    }


def check(env: dict[str, str]) -> tuple[Result, dict[str, str]]:
    """The result and each row's status and detail, by check name."""
    result = CliRunner().invoke(main, ["check"], env=env)
    rows: dict[str, str] = {}
    for line in result.stdout.splitlines():
        for status in ("ready", "NOT READY"):
            name, sep, detail = line.partition(f"  {status}")
            if sep and name.strip():
                rows.setdefault(name.strip(), f"{status} {detail.strip()}")
                break
    return result, rows


def refresh(env: dict[str, str], through: str) -> None:
    result = CliRunner().invoke(
        main, ["data", "refresh", "--strategies", "--through", through], env=env
    )
    assert result.exit_code == 0, result.output


def test_ready(env: dict[str, str]) -> None:
    refresh(env, str(THROUGH))
    result, rows = check(env)
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[-1] == "all ready"
    assert set(rows) == {"configuration", "strategy chk", "broker", "database", "market data"}
    assert all(r.startswith("ready") for r in rows.values()), rows
    assert "paper account" in rows["broker"] and "ACTIVE" in rows["broker"]
    assert f"2 tickers have bars through {THROUGH}" in rows["market data"]


def test_stale_data_is_not_ready(env: dict[str, str]) -> None:
    refresh(env, "2026-11-16")  # the session before the last completed one
    result, rows = check(env)
    assert result.exit_code == 1
    assert rows["market data"].startswith("NOT READY")
    assert "BIL (bars end 2026-11-16)" in rows["market data"]
    assert "alchemiser data refresh --strategies" in rows["market data"]
    assert rows["broker"].startswith("ready")


def test_no_data_and_wrong_keys_are_not_ready(env: dict[str, str]) -> None:
    wrong = env | {"ALPACA_API_KEY": "PKWRONG", "ALPACA_SECRET_KEY": "nope-secret"}
    result, rows = check(wrong)
    assert result.exit_code == 1
    assert rows["broker"].startswith("NOT READY")
    assert "rejected the keys" in rows["broker"] and "ALPACA_API_KEY" in rows["broker"]
    assert "SPY (no bars)" in rows["market data"]
    assert "nope-secret" not in result.output
    assert result.stdout.splitlines()[-1] == "2 not ready"


def test_a_strategy_that_does_not_parse_is_not_ready(env: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / "check.clj").write_text('(defsymphony "x" {}\n  (asset "SPY"\n')
    result, rows = check(env)
    assert result.exit_code == 1
    assert rows["strategy chk"].startswith("NOT READY")
    assert f"{tmp_path / 'check.clj'}:2:3: unclosed `(`" in rows["strategy chk"]


def test_a_database_behind_its_migrations_is_not_ready(
    env: dict[str, str], empty_db_url: str
) -> None:
    result, rows = check(env | {"ALCHEMISER_DATABASE_URL": empty_db_url})
    assert result.exit_code == 1
    assert "run `alchemiser db upgrade`" in rows["database"]
    assert rows["market data"] == "NOT READY not checked: the database is not ready"


def test_an_unreachable_broker_is_not_ready(env: dict[str, str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    result, rows = check(env | {"ALPACA_TRADING_URL": f"http://127.0.0.1:{port}"})
    assert result.exit_code == 1
    assert rows["broker"] == f"NOT READY cannot reach http://127.0.0.1:{port}: ConnectionError"


def test_an_invalid_configuration_is_one_row_not_ready(env: dict[str, str], tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[[strategies]]\nid = "chk"\nfile = "check.clj"\nallocation = 2\n')
    result, rows = check(env | {"ALCHEMISER_CONFIG": str(bad)})
    assert result.exit_code == 1
    assert list(rows) == ["configuration"]
    assert rows["configuration"].startswith("NOT READY invalid configuration")
    assert "strategies[0].allocation" in rows["configuration"]
