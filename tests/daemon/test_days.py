"""The daemon in this test's event loop: a missed day and a second trigger trade nothing."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

import pytest
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.daemon.app import MISSED, Daemon, run_daemon
from alchemiser.daemon.health import readiness, status_body
from alchemiser.errors import AlpacaKeysRejected, UserError
from alchemiser.market_calendar import NEW_YORK
from alchemiser.run.daily import daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import DaemonConfig, NotificationsConfig, Settings, WebhookConfig
from alchemiser.sim import SimThread
from tests.daemon.test_daemon import free_port
from tests.notify.test_notify import Hook
from tests.run.conftest import settings_for
from tests.run.test_crash import orders
from tests.sim.conftest import WAIT_S

DAY = datetime(2026, 11, 18, tzinfo=NEW_YORK).date()
AFTER_THE_CLOSE = datetime(2026, 11, 18, 16, 10, tzinfo=NEW_YORK)
IN_THE_WINDOW = datetime(2026, 11, 18, 15, 31, tzinfo=NEW_YORK)
A_SECOND_BEFORE_THE_REFRESH = datetime(2026, 11, 19, 3, 59, 59, tzinfo=NEW_YORK)


def daemon_settings(sim: SimThread, db_url: str, hook_port: int | None = None) -> Settings:
    notifications = NotificationsConfig(
        webhook=WebhookConfig(url=f"http://127.0.0.1:{hook_port}/hooks/abc123")
        if hook_port
        else None
    )
    return settings_for(
        sim,
        db_url,
        daemon=DaemonConfig(check_seconds=0.2),
        health_port=free_port(),
        notifications=notifications,
    )


@asynccontextmanager
async def serving(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Daemon]:
    daemon = Daemon(settings, engine)
    task = asyncio.create_task(daemon.serve())
    try:
        yield daemon
    finally:
        daemon.stopping.set()
        await asyncio.wait_for(task, WAIT_S)


POLL_S = 0.05


async def until(done: Callable[[], bool]) -> None:
    for _ in range(int(WAIT_S * 4 / POLL_S)):
        if done():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("condition not reached")


async def test_a_start_after_the_window_records_a_missed_run_and_trades_nothing(
    sim: SimThread, db_url: str, engine: AsyncEngine, webhook: tuple[Hook, int]
) -> None:
    hook, port = webhook
    sim.set_clock(now=AFTER_THE_CLOSE)
    async with serving(daemon_settings(sim, db_url, port), engine) as daemon:
        await until(lambda: DAY in daemon.days)
        assert daemon.days[DAY] == "missed"
        status = await status_body(daemon)
        assert await readiness(daemon) == []
    assert status["last_run"]["status"] == "failed"
    assert status["last_run"]["error"] == MISSED
    assert status["next_run"] == datetime(2026, 11, 19, 15, 30, tzinfo=NEW_YORK)
    assert orders(sim) == []
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT trading_day, status FROM runs"))).all()
    assert rows == [(DAY, "failed")]
    assert [(p["kind"], p["detail"]) for p in hook.posts] == [("problem", MISSED)]


async def test_a_second_trigger_the_same_day_trades_nothing(
    sim: SimThread, db_url: str, engine: AsyncEngine, webhook: tuple[Hook, int]
) -> None:
    hook, port = webhook
    sim.set_clock(now=IN_THE_WINDOW)
    settings = daemon_settings(sim, db_url, port)
    async with open_services(settings, engine) as services:
        assert (await daily_run(settings, services)).status == "completed"
    sent = orders(sim)
    assert sent
    async with serving(settings, engine) as daemon:
        await until(lambda: DAY in daemon.days and daemon.days[DAY] != "running")
        assert daemon.days[DAY] == "already completed"
    assert orders(sim) == sent
    # The daemon's trigger (not the daily_run above) sent the run's summary.
    assert [(p["kind"], p["status"]) for p in hook.posts] == [("run", "already completed")]


def test_a_busy_health_port_is_one_clear_error(sim: SimThread, db_url: str) -> None:
    settings = daemon_settings(sim, db_url)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", settings.health_port))
        taken.listen()
        with pytest.raises(UserError, match=f"health port {settings.health_port} .* is in use"):
            run_daemon(settings)


def test_keys_the_broker_refuses_are_one_clear_error(sim: SimThread, db_url: str) -> None:
    settings = daemon_settings(sim, db_url)
    alpaca = settings.alpaca.model_copy(update={"secret_key": SecretStr("wrong")})
    with pytest.raises(AlpacaKeysRejected, match="Alpaca refused the keys"):
        run_daemon(settings.model_copy(update={"alpaca": alpaca}))


async def test_bars_are_refreshed_overnight_at_the_broker_s_time(
    sim: SimThread, db_url: str, engine: AsyncEngine
) -> None:
    sim.set_clock(now=A_SECOND_BEFORE_THE_REFRESH)
    async with serving(daemon_settings(sim, db_url), engine) as daemon:
        assert daemon.bars_through is None
        await until(lambda: daemon.bars_through is not None)
    assert daemon.bars_through == DAY  # the session that closed before the night
    async with engine.connect() as conn:
        newest = await conn.scalar(text("SELECT max(date) FROM bars WHERE ticker = 'SPY'"))
    assert newest == DAY
