"""`make demo`'s command, end to end: simulator, bars, evaluation, books, plan."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import make_url

from alchemiser.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.foundation.test_cli import alchemiser

DEMO_STRATEGIES = [s.id for s in load_settings(REPO_ROOT / "config" / "demo.toml").strategies]


@pytest.mark.slow
def test_demo_plans_every_book_and_the_books_agree_with_the_broker(pg_server_url: str) -> None:
    plain = make_url(pg_server_url).set(drivername="postgresql").render_as_string(False)
    result = alchemiser("demo", env={"ALCHEMISER_DATABASE_URL": plain})
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "4. market data:" in out
    assert "FAILS CLOSED" not in out
    assert "FAILED" not in out
    for strategy_id in DEMO_STRATEGIES:
        # evaluated (weights printed) and planned (its book listed with intents)
        assert f"   {strategy_id}: " in out.split("5. evaluation")[1].split("6. books")[0]
        assert f"   {strategy_id}: cash " in out
    assert "8. reconciliation: books and broker agree" in out
    assert "(6 rows)" in out  # five books plus unallocated in the book_value view
