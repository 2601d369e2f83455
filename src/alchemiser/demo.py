"""`alchemiser demo`: as much of the daily job as has landed, on embedded defaults.

It starts the local Alpaca simulator in-process, points the settings at it, and
runs the daily pipeline up to the orders: migrate, load bars, fetch today's
prices, evaluate every strategy, fund and plan each book, net across books, and
reconcile the books with the (simulated) broker. Nothing is sent to the broker:
execution (walk-the-book) comes with its own issue.

The demo works in its own database (`alchemiser_demo`, recreated each time) on
the configured server or the embedded one, so it never touches a real ledger.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
import polars as pl
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser import db, market_calendar
from alchemiser.books import ledger
from alchemiser.books.netting import Netted
from alchemiser.books.planner import (
    Intent,
    PlanningError,
    RebalanceOptions,
    is_rebalance_day,
    plan_book,
)
from alchemiser.books.reconcile import reconcile
from alchemiser.books.report import render_report
from alchemiser.dsl import PriceHistory, Strategy, StrategyError, evaluate, parse_strategy
from alchemiser.evaluate_command import decision_lines
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.run import RunData, prepare_run_data
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
        strategies = _parse_all(settings)
        data = await _market_data(engine, settings, strategies, as_of)
        evaluations = _evaluate_all(strategies, data)
        await _plan_books(engine, settings, strategies, data, evaluations)
    finally:
        await engine.dispose()


def _parse_all(settings: Settings) -> dict[str, Strategy]:
    click.echo(f"3. strategies: {len(settings.strategies)} configured")
    parsed: dict[str, Strategy] = {}
    for config in settings.strategies:
        try:
            parsed[config.id] = parse_strategy(
                config.file.read_text(encoding="utf-8"), str(config.file)
            )
        except StrategyError as exc:
            click.echo(f"   {config.id}: SKIPPED, {exc}")
            continue
        tickers = ", ".join(sorted(parsed[config.id].tickers))
        click.echo(f"   {config.id} ({config.allocation:.0%}): {tickers}")
    return parsed


async def _market_data(
    engine: AsyncEngine, settings: Settings, strategies: Mapping[str, Strategy], as_of: date
) -> RunData:
    client = DataClient(settings.alpaca, settings.marketdata)
    tickers = {sid: sorted(s.tickers) for sid, s in strategies.items()}
    data = await prepare_run_data(engine, client, tickers, as_of, settings)
    loaded = len(data.refresh.results) - len(data.refresh.failed)
    click.echo(
        f"4. market data: {loaded} tickers refreshed through the previous session, "
        f"{data.frame.height} bars in the price frame, {len(data.today_prices)} live prices"
    )
    for sid, check in data.checks.items():
        if not check.ok:
            click.echo(f"   {sid}: FAILS CLOSED: {'; '.join(check.problems)}")
    return data


@dataclass
class _Outcome:
    weights: dict[str, float] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


def _evaluate_all(strategies: Mapping[str, Strategy], data: RunData) -> dict[str, _Outcome]:
    click.echo(f"5. evaluation as of {data.evaluation_date} ({data.mode} prices)")
    prices = PriceHistory(data.frame)
    outcomes: dict[str, _Outcome] = {}
    for sid, strategy in strategies.items():
        if not data.checks[sid].ok:
            outcomes[sid] = _Outcome(error="; ".join(data.checks[sid].problems))
            continue
        try:
            result = evaluate(strategy, prices, data.evaluation_date)
        except StrategyError as exc:
            outcomes[sid] = _Outcome(error=str(exc))
            click.echo(f"   {sid}: FAILED, {exc}")
            continue
        outcomes[sid] = _Outcome(dict(result.weights), list(result.trace))
        shown = ", ".join(f"{t} {w:.1%}" for t, w in sorted(result.weights.items()))
        click.echo(f"   {sid}: {shown}")
        for step in decision_lines(result.trace):
            click.echo(f"      {step}")
    return outcomes


async def _plan_books(
    engine: AsyncEngine,
    settings: Settings,
    strategies: Mapping[str, Strategy],
    data: RunData,
    outcomes: Mapping[str, _Outcome],
) -> None:
    from alpaca.trading.client import TradingClient
    from alpaca.trading.models import Asset, TradeAccount

    trading = TradingClient(
        settings.alpaca.api_key.get_secret_value(),
        settings.alpaca.secret_key.get_secret_value(),
        url_override=settings.alpaca.trading_base_url,
    )
    account = await asyncio.to_thread(trading.get_account)
    assert isinstance(account, TradeAccount)  # not raw_data
    equity, cash = Decimal(str(account.equity)), Decimal(str(account.cash))
    prices = _reference_prices(data)
    symbols = sorted({t for o in outcomes.values() for t in o.weights})
    assets = await asyncio.gather(*(asyncio.to_thread(trading.get_asset, s) for s in symbols))
    fractionable = {a.symbol for a in assets if isinstance(a, Asset) and a.fractionable}
    previous = market_calendar.previous_trading_day(data.as_of)

    async with engine.begin() as conn:
        await ledger.open_account(conn, cash, {})
        run = await ledger.start_run(conn, data.as_of, RUN_KIND, price_mode=data.mode)
        await ledger.sync_strategies(conn, settings.strategies, equity, run.id)
        books = await ledger.load_books(conn)
        intents: list[Intent] = []
        for sid, outcome in outcomes.items():
            await ledger.record_signal(
                conn,
                run.id,
                sid,
                allocation=outcome.weights or None,
                trace=outcome.trace,
                error=outcome.error,
            )
            if outcome.error is not None:
                continue
            options = strategies[sid].options
            threshold = options.rebalance_threshold
            rebalance = RebalanceOptions(
                options.rebalance_frequency, None if threshold is None else Decimal(str(threshold))
            )
            try:
                intents += plan_book(
                    books[sid],
                    targets=outcome.weights,
                    prices=prices,
                    fractionable=fractionable,
                    options=rebalance,
                    rebalance_day=is_rebalance_day(
                        options.rebalance_frequency, data.as_of, previous
                    ),
                    risk=settings.risk,
                )
            except PlanningError as exc:
                click.echo(f"   {sid}: NOT PLANNED, {exc}")
        inputs = ledger.input_hash(prices, {s: o.weights for s, o in outcomes.items()})
        intents = await ledger.record_plan(conn, run.id, intents, inputs)
        netted = await ledger.net_run(conn, run.id, fractionable=fractionable)
        await ledger.set_run_status(conn, run.id, "planned")
        check = await reconcile(conn, {}, cash, settings.risk.reconcile_tolerance, run_id=run.id)
    _print_plan(equity, books, intents, netted)
    state = "agree" if check.ok else "DISAGREE"
    click.echo(f"8. reconciliation: books and broker {state} (broker cash {cash})")
    click.echo("   Nothing was sent: execution (walk-the-book) comes with the execution issue.")
    click.echo("9. the books, as `alchemiser report books` (the book_value view) shows them:")
    click.echo(await render_report(engine, "books"))


def _reference_prices(data: RunData) -> dict[str, Decimal]:
    """Today's live prices, or (previous-close mode) each ticker's last close."""
    if data.today_prices:
        return {t: p.price for t, p in data.today_prices.items()}
    last = data.frame.sort("date").group_by("symbol").agg(pl.col("close").last())
    return {symbol: Decimal(str(close)) for symbol, close in last.iter_rows()}


def _print_plan(
    equity: Decimal, books: Mapping[str, Any], intents: list[Intent], netted: Netted
) -> None:
    click.echo(f"6. books funded from account equity {equity:,.2f}; each book's plan:")
    for sid in sorted(books):
        mine = [i for i in intents if i.strategy_id == sid]
        click.echo(f"   {sid}: cash {books[sid].cash:,.2f}, {len(mine)} intent(s)")
        for i in mine:
            value = i.quantity * i.reference_price
            click.echo(
                f"      {i.side:4} {_qty(i.quantity):>14} {i.symbol:6} "
                f"~{value:>12,.2f}  ({i.reason})"
            )
    click.echo(
        f"7. netted across books: {len(netted.orders)} broker order(s), "
        f"{len(netted.crosses)} internal cross(es)"
    )
    for order in netted.orders:
        click.echo(
            f"   {order.side:4} {_qty(order.quantity):>14} {order.symbol:6} "
            f"@ ~{order.reference_price}"
        )


def _qty(quantity: Decimal) -> str:
    """A quantity without trailing zeros (308, not 308.000000000)."""
    return f"{quantity.normalize():f}"
