"""`alchemiser trade-now` killed with a real SIGKILL mid-phase, then run again.

The child is the real command in its own process, talking to this test's simulator
and database over sockets. After the kill, the run is resumed: it settles what the
dead process sent (by client order id), trades only what remains, and the books
equal the account. No client order id ever reaches the broker twice.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import pytest

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.run.conftest import BOOKS, EXAMPLES
from tests.sim.conftest import WAIT_S

NEXT_DAY = datetime(2026, 11, 19, 11, 0, tzinfo=NEW_YORK)
RUN_TIMEOUT_S = 120


def write_config(path: Path, books: tuple[tuple[str, str, str], ...]) -> Path:
    lines = [
        "[execution]",
        "step_interval_seconds = 0.2",
        "order_timeout_seconds = 2.0",
        "[marketdata]",
        "history_years = 1",
        "retry_backoff_seconds = 0.01",
    ]
    for sid, file, capital in books:
        lines += [
            "[[strategies]]",
            f'id = "{sid}"',
            f'file = "{EXAMPLES / file}"',
            "allocation = 0",
            f"capital = {capital}",
        ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def command_env(sim: SimThread, db_url: str, config: Path) -> dict[str, str]:
    return {
        **os.environ,
        **sim.env(),
        "ALCHEMISER_DATABASE_URL": db_url,
        "ALCHEMISER_CONFIG": str(config),
        "ALCHEMISER_LOG_FORMAT": "json",
    }


def trade_now(env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "alchemiser.cli", "trade-now"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(child: subprocess.Popen[str]) -> str:
    out, err = child.communicate(timeout=RUN_TIMEOUT_S)
    assert child.returncode == 0, f"trade-now failed:\n{out}\n{err[-3000:]}"
    return out


def orders(sim: SimThread) -> list[tuple[str, str, str]]:
    """(client order id, side, status) of every order at the broker."""
    return sim.call(
        lambda s: [(o.client_order_id, o.side, o.status) for o in s.broker.orders.values()]
    )


def kill_when(child: subprocess.Popen[str], sim: SimThread, side: str) -> None:
    """SIGKILL the child as soon as one of its `side` orders is at the broker."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not any(s == side for _, s, _ in orders(sim)):
        if child.poll() is not None:
            pytest.fail(f"trade-now ended before sending a {side}: {child.communicate()}")
        if time.monotonic() > deadline:
            child.kill()
            pytest.fail(f"no {side} order within {RUN_TIMEOUT_S} s")
        time.sleep(0.01)
    child.send_signal(signal.SIGKILL)
    child.wait(WAIT_S)
    assert child.returncode == -signal.SIGKILL


def assert_once_and_reconciled(sim: SimThread, output: str) -> None:
    ids = [cid for cid, _, _ in orders(sim)]
    assert max(Counter(ids).values()) == 1, "a client order id reached the broker twice"
    assert "books and broker agree" in output, output


@pytest.mark.slow
def test_killed_during_phase_2_then_run_again_completes_once(
    sim: SimThread, db_url: str, tmp_path: Path
) -> None:
    env = command_env(sim, db_url, write_config(tmp_path / "a.toml", BOOKS))
    sim.configure(auto_fill=False)  # buys rest until the kill
    kill_when(trade_now(env), sim, "buy")
    sim.configure(auto_fill=True)
    output = finish(trade_now(env))
    assert "completed, resumed" in output, output
    assert_once_and_reconciled(sim, output)
    assert not any(status in ("new", "pending_new") for _, _, status in orders(sim))


@pytest.mark.slow
def test_killed_during_phase_1_then_run_again_completes_once(
    sim: SimThread, db_url: str, tmp_path: Path
) -> None:
    finish(trade_now(command_env(sim, db_url, write_config(tmp_path / "a.toml", BOOKS))))
    sim.set_clock(now=NEXT_DAY)
    # The next day one strategy is removed: its book is sold in phase 1.
    env = command_env(sim, db_url, write_config(tmp_path / "b.toml", BOOKS[:2]))
    sim.configure(auto_fill=False)  # sells rest until the kill
    kill_when(trade_now(env), sim, "sell")
    sim.configure(auto_fill=True)
    output = finish(trade_now(env))
    assert "completed, resumed" in output, output
    assert_once_and_reconciled(sim, output)
    # Each ticker sold ended filled, whether the resumed run walked it again or the
    # killed run's resting order filled before the resumed run could cancel it.
    sells = [(cid.rsplit("-", 3)[1], status) for cid, side, status in orders(sim) if side == "sell"]
    assert sells, output
    assert {t for t, _ in sells} == {t for t, status in sells if status == "filled"}, sells
