"""`make demo`'s command, end to end: the daily run against the simulator, to reconciled books."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from alchemiser.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.foundation.test_cli import alchemiser

DEMO_STRATEGIES = [s.id for s in load_settings(REPO_ROOT / "config" / "demo.toml").strategies]


@pytest.mark.slow
def test_demo_runs_the_daily_run_and_the_books_agree_with_the_broker(pg_server_url: str) -> None:
    plain = make_url(pg_server_url).set(drivername="postgresql").render_as_string(False)
    result = alchemiser("demo", env={"ALCHEMISER_DATABASE_URL": plain})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "run " in out and ": completed" in out
    assert "SKIPPED" not in out
    evaluated = out.split("strategies:")[1].split("plan:")[0]
    for strategy_id in DEMO_STRATEGIES:
        assert f"  {strategy_id}: " in evaluated  # evaluated, weights printed
        assert f"   {strategy_id}:\n" in out.split("4. why")[1]  # and its decision trace
    executed = out.split("executed:")[1].split("reconciliation:")[0]
    walks = [line for line in executed.splitlines()[1:] if line.strip()]
    assert walks and all(": filled, filled" in line for line in walks)
    assert "reconciliation: books and broker agree" in out
    assert "(6 rows)" in out  # five books plus unallocated in the book_value view
