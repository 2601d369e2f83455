"""The daily run's market-data step in one call: refresh, today's prices, checks, frame.

    data = await prepare_run_data(engine, client, {"s1": tickers1, ...}, as_of, settings)
    for sid, check in data.checks.items(): ...       # record problems; skip failed ones
    evaluate(strategy, data.frame, data.evaluation_date)

`evaluation_date` is `as_of` in "live" mode (today's row holds the live price) and
the previous session in "previous_close" mode (the frame ends there).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.logging import get_logger
from alchemiser.market_calendar import previous_trading_day
from alchemiser.marketdata.alpaca import DataApiError, DataClient, LivePrice
from alchemiser.marketdata.frame import build_price_frame
from alchemiser.marketdata.freshness import DataCheck, check_freshness
from alchemiser.marketdata.prices import fetch_today_prices, record_today_prices
from alchemiser.marketdata.refresh import RefreshReport, refresh_bars
from alchemiser.settings import Settings

log = get_logger(__name__)


@dataclass(frozen=True, slots=True)
class RunData:
    as_of: date
    mode: str
    evaluation_date: date
    refresh: RefreshReport
    today_prices: dict[str, LivePrice]
    checks: dict[str, DataCheck]
    # Bars of the tickers of every strategy whose check passed.
    frame: pl.DataFrame

    @property
    def usable(self) -> list[str]:
        return [sid for sid, check in self.checks.items() if check.ok]


async def prepare_run_data(
    engine: AsyncEngine,
    client: DataClient,
    strategy_tickers: Mapping[str, Iterable[str]],
    as_of: date,
    settings: Settings,
) -> RunData:
    """Top up bars through the previous session, fetch and record today's prices (live
    mode), check every strategy's data, and build the frame for those that passed."""
    by_strategy = {sid: sorted({t.upper() for t in ts}) for sid, ts in strategy_tickers.items()}
    everything = sorted({t for ts in by_strategy.values() for t in ts})
    through = previous_trading_day(as_of)
    live = settings.today_price == "live"
    # Both wait on the data API and neither needs the other: at once.
    report, prices = await asyncio.gather(
        refresh_bars(engine, client, everything, through=through, config=settings.marketdata),
        _today_prices(engine, client, everything, as_of) if live else _no_prices(),
    )
    checks = await check_freshness(
        engine,
        by_strategy,
        as_of,
        max_age_days=settings.risk.max_data_age_days,
        today_prices=prices if live else None,
        refresh_failures=report.failed,
    )
    usable = sorted({t for sid, ts in by_strategy.items() if checks[sid].ok for t in ts})
    frame = await build_price_frame(
        engine, usable, as_of, mode=settings.today_price, today_prices=prices
    )
    evaluation_date = as_of if live else through
    return RunData(as_of, settings.today_price, evaluation_date, report, prices, checks, frame)


async def _no_prices() -> dict[str, LivePrice]:
    return {}


async def _today_prices(
    engine: AsyncEngine, client: DataClient, tickers: list[str], as_of: date
) -> dict[str, LivePrice]:
    """Live prices, recorded with the day; none at all if the data API is down (fail closed)."""
    try:
        prices = await fetch_today_prices(client, tickers)
    except DataApiError as exc:
        log.error("no live prices", error=str(exc))
        return {}
    await record_today_prices(engine, as_of, prices)
    return prices
