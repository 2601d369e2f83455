"""`alchemiser demo`: two trading days of the daily job, end to end, on embedded defaults.

It starts the local Alpaca simulator in-process at the daily run's time on the
demo's first day, points the settings at it, and runs the daily run itself
(`run.daily`, the same code as `trade-now` and the daemon): day one funds the
books and buys; then the simulated clock moves to the next trading day's run
time and day two sells what the strategies dropped and buys what they picked.
The run's own log events are shown as progress (`demo_progress`), then the books
with their P&L and the command to explore them with psql.

The days are fixed, so every demo (and its test) trades the same seeded market:
day two is one where three of the example strategies rotate.

The demo works in its own database (`alchemiser_demo`, recreated each time) on
the configured server or the embedded one, so it never touches a real ledger.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import SecretStr
from rich.console import Console

from alchemiser import db, market_calendar
from alchemiser.books.report import render_report
from alchemiser.demo_progress import show_progress
from alchemiser.run.command import summary
from alchemiser.run.daily import daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import CONFIG_ENV_VAR, Settings

if TYPE_CHECKING:
    from alchemiser.sim.runner import SimThread

DEMO_CONFIG = db.PROJECT_ROOT / "config" / "demo.toml"
DEMO_DATABASE = "alchemiser_demo"
DEMO_SEED = 7
DEMO_CASH = Decimal("100000")
DEMO_DAY_ONE = date(2026, 11, 13)
RUN_KIND = "demo"
# Shorter than a real first load (20 years), so the demo starts in seconds.
DEMO_HISTORY_YEARS = 3
SHELL_COMMAND = "alchemiser db shell --demo"


def demo_config_path() -> Path | None:
    """`ALCHEMISER_CONFIG` if set (None: the usual lookup), else config/demo.toml."""
    return None if CONFIG_ENV_VAR in os.environ else DEMO_CONFIG


def run_demo(settings: Settings) -> None:
    from alchemiser.sim.runner import SimThread  # the demo may start the simulator

    console = Console(file=sys.stdout, soft_wrap=True)
    show_progress(console)
    days = [DEMO_DAY_ONE, market_calendar.next_trading_day(DEMO_DAY_ONE)]
    instants = [_run_time(settings, day) for day in days]
    with SimThread(seed=DEMO_SEED, now=instants[0], cash=DEMO_CASH) as sim:
        _say(
            console,
            f"1. simulator: Alpaca on {sim.trading_url}, clock at {instants[0]:%Y-%m-%d %H:%M %Z}",
        )
        settings = _pointed_at(settings, sim.env())
        server_url = db.database_url(settings)
        asyncio.run(_run(console, settings, server_url, sim, instants))


def _run_time(settings: Settings, day: date) -> datetime:
    schedule = settings.schedule
    return market_calendar.daily_run_at(day, schedule.run_time, schedule.minutes_before_close)


def _say(console: Console, line: str) -> None:
    console.print(line, markup=False, highlight=False)


def _pointed_at(settings: Settings, env: Mapping[str, str]) -> Settings:
    alpaca = settings.alpaca.model_copy(
        update={
            "api_key": SecretStr(env["ALPACA_API_KEY"]),
            "secret_key": SecretStr(env["ALPACA_SECRET_KEY"]),
            "trading_url": env["ALPACA_TRADING_URL"],
            "data_url": env["ALPACA_DATA_URL"],
            "stream_url": env["ALPACA_STREAM_URL"],
            "data_stream_url": env["ALPACA_DATA_STREAM_URL"],
        }
    )
    marketdata = settings.marketdata.model_copy(update={"history_years": DEMO_HISTORY_YEARS})
    return settings.model_copy(update={"alpaca": alpaca, "marketdata": marketdata})


async def _run(
    console: Console, settings: Settings, server_url: str, sim: SimThread, instants: list[datetime]
) -> None:
    engine = db.create_engine(await db.create_database(server_url, DEMO_DATABASE, replace=True))
    try:
        await db.upgrade(engine)
        heads = ", ".join(line.split()[0] for line in (await db.current(engine)).splitlines())
        digest = await db.record_config(engine, settings)
        _say(
            console,
            f"2. database {DEMO_DATABASE}: migrated to {heads}; "
            f"configuration journalled as {digest[:12]}",
        )
        for number, instant in enumerate(instants, start=1):
            if number > 1:  # the next trading day's run time: its bars and prices follow
                await asyncio.to_thread(sim.set_clock, instant)
            _say(
                console,
                f"{number + 2}. day {number}, {instant:%a %Y-%m-%d %H:%M %Z}: the daily run",
            )
            async with open_services(settings, engine) as services:
                report = await daily_run(settings, services, kind=RUN_KIND)
            lines = list(summary(report))
            _say(console, f"   {lines[0]}; {lines[-1]}")
        _say(console, f"{len(instants) + 3}. the books and their P&L (the book_value view):")
        _say(console, await render_report(engine, "books"))
        _say(console, f"explore them with psql: {SHELL_COMMAND}")
        _say(console, "  (after `make demo`: .venv/bin/" + SHELL_COMMAND + "), then e.g.")
        _say(console, "  select * from book_positions;  select * from trade_history;")
    finally:
        await engine.dispose()
