"""`alchemiser demo`: the daily job, end to end, on embedded defaults.

It starts the local Alpaca simulator in-process at 3:30 PM ET on the latest trading
day, points the settings at it, and runs the daily run itself (`run.daily`, the
same code as `trade-now` and the daemon): gate, bars and today's prices, every
strategy evaluated with its decision trace, each book funded and planned, the plan
netted and saved, sells then buys walked through the simulator's order book, the
fills booked, and the books reconciled with the (simulated) account.

The demo works in its own database (`alchemiser_demo`, recreated each time) on
the configured server or the embedded one, so it never touches a real ledger.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import click
from pydantic import SecretStr

from alchemiser import db, market_calendar
from alchemiser.books.report import render_report
from alchemiser.evaluate_command import decision_lines
from alchemiser.run.command import summary
from alchemiser.run.daily import daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import CONFIG_ENV_VAR, Settings

DEMO_CONFIG = db.PROJECT_ROOT / "config" / "demo.toml"
DEMO_DATABASE = "alchemiser_demo"
DEMO_SEED = 7
DEMO_CASH = Decimal("100000")
RUN_KIND = "demo"
# Shorter than a real first load (20 years), so the demo starts in seconds.
DEMO_HISTORY_YEARS = 3


def demo_config_path() -> Path | None:
    """`ALCHEMISER_CONFIG` if set (None: the usual lookup), else config/demo.toml."""
    return None if CONFIG_ENV_VAR in os.environ else DEMO_CONFIG


def run_demo(settings: Settings, today: date | None = None) -> None:
    from alchemiser.sim.runner import SimThread  # the demo may start the simulator

    today = today or datetime.now(market_calendar.NEW_YORK).date()
    schedule = settings.schedule
    instant = market_calendar.daily_run_at(
        market_calendar.latest_trading_day(today),
        schedule.run_time,
        schedule.minutes_before_close,
    )
    with SimThread(seed=DEMO_SEED, now=instant, cash=DEMO_CASH) as sim:
        click.echo(
            f"1. simulator: Alpaca on {sim.trading_url}, clock at {instant:%Y-%m-%d %H:%M %Z}"
        )
        settings = _pointed_at(settings, sim.env())
        server_url = db.database_url(settings)
        asyncio.run(_run(settings, server_url, instant.date()))


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


async def _run(settings: Settings, server_url: str, as_of: date) -> None:
    engine = db.create_engine(await db.create_database(server_url, DEMO_DATABASE, replace=True))
    try:
        await db.upgrade(engine)
        heads = ", ".join(line.split()[0] for line in (await db.current(engine)).splitlines())
        digest = await db.record_config(engine, settings)
        click.echo(
            f"2. database {DEMO_DATABASE}: migrated to {heads}; "
            f"configuration journalled as {digest[:12]}"
        )
        click.echo(f"3. the daily run for {as_of} ({len(settings.strategies)} strategies):")
        async with open_services(settings, engine) as services:
            report = await daily_run(settings, services, kind=RUN_KIND)
        for line in summary(report):
            click.echo(f"   {line}")
        click.echo("4. why each strategy chose what it holds (decision traces):")
        for sid, outcome in sorted(report.outcomes.items()):
            click.echo(f"   {sid}:")
            for step in decision_lines(outcome.trace):
                click.echo(f"      {step}")
        click.echo("5. the books, as `alchemiser report books` (the book_value view) shows them:")
        click.echo(await render_report(engine, "books"))
    finally:
        await engine.dispose()
