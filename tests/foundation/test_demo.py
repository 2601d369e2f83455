"""`make demo`'s command, end to end: two trading days on the simulator, to reconciled books."""

from __future__ import annotations

import re

import pytest
from sqlalchemy.engine import make_url

from alchemiser.demo import DEMO_DAY_ONE, SHELL_COMMAND
from alchemiser.market_calendar import next_trading_day
from alchemiser.settings import load_settings
from tests.conftest import REPO_ROOT
from tests.foundation.test_cli import alchemiser

DEMO_STRATEGIES = [s.id for s in load_settings(REPO_ROOT / "config" / "demo.toml").strategies]
DAY_TWO = next_trading_day(DEMO_DAY_ONE)


def walks(section: str, side: str) -> list[str]:
    """The end of each walk of one side: `buy SPY: filled, 10 at ... slippage +0.9 bps`."""
    return re.findall(rf"^     {side} [A-Z]+: .*$", section, re.MULTILINE)


@pytest.mark.slow
def test_the_demo_trades_two_days_and_the_books_agree_with_the_broker(pg_server_url: str) -> None:
    env = {
        "ALCHEMISER_DATABASE_URL": make_url(pg_server_url)
        .set(drivername="postgresql")
        .render_as_string(False)
    }
    result = alchemiser("demo", env=env)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    day_one, rest = out.split("4. day 2")[0], out.split("4. day 2")[1]
    day_two, books = rest.split("5. the books")
    for day, section, number in ((DEMO_DAY_ONE, day_one, 1), (DAY_TWO, day_two, 2)):
        assert (
            f"run {day} (#{number}): completed; reconciliation: books and broker agree" in section
        )
        evaluated = section.split("evaluated:")[1].split("plan saved")[0]
        for strategy_id in DEMO_STRATEGIES:
            assert f"     {strategy_id}: " in evaluated  # weights, shown as they are evaluated
        assert "SKIPPED" not in evaluated and "   ! " not in section
    # Day one funds the books and only buys; day two sells what a strategy dropped, then buys.
    assert "funded with" in day_one and "phase 1: 0 sells" in day_one
    assert "funded with" not in day_two
    sells, buys = walks(day_two, "sell"), walks(day_two, "buy")
    assert sells and buys
    assert day_two.index("phase 1:") < day_two.index(sells[-1]) < day_two.index("phase 2:")
    for walk in walks(day_one, "buy") + sells + buys:  # every walk filled, with its slippage
        assert re.search(
            r": filled, [\d.]+ at [\d.]+ in \d+ fill\(s\), .* slippage [+-][\d.]+ bps$", walk
        )
    assert "sent, limit " in day_two
    assert "(6 rows)" in books  # five books plus unallocated, with their P&L
    assert SHELL_COMMAND in books
    # The printed command opens the demo's database.
    runs = alchemiser(
        *SHELL_COMMAND.split()[1:],
        "-At",
        "-c",
        "select trading_day, status from runs order by id",
        env=env,
    )
    assert runs.returncode == 0, runs.stderr
    assert runs.stdout.split() == [f"{DEMO_DAY_ONE}|completed", f"{DAY_TWO}|completed"]
