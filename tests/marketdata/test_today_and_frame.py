"""Today's prices, the evaluator's price frame, and fail-closed freshness."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.market_calendar import previous_trading_day
from alchemiser.marketdata.alpaca import DataClient, LivePrice
from alchemiser.marketdata.frame import build_price_frame, historical_frame
from alchemiser.marketdata.freshness import check_freshness
from alchemiser.marketdata.prices import (
    fetch_today_prices,
    load_today_prices,
    record_today_prices,
)
from alchemiser.marketdata.refresh import refresh_bars
from alchemiser.marketdata.series import FRAME_SCHEMA
from alchemiser.settings import MarketDataConfig
from alchemiser.sim import SimThread
from tests.marketdata.conftest import AS_OF, RUN_AT, THROUGH

TICKERS = ["SPY", "TQQQ", "BIL"]


async def load(engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig) -> None:
    report = await refresh_bars(engine, client, TICKERS, through=THROUGH, config=md_config)
    assert report.ok, report.failed


async def test_today_prices_are_the_latest_trades_recorded_exactly(
    engine: AsyncEngine, client: DataClient, sim: SimThread
) -> None:
    sim.set_price("SPY", "612.34")

    prices = await fetch_today_prices(client, TICKERS)

    assert set(prices) == set(TICKERS)
    assert prices["SPY"].price == Decimal("612.34")
    assert all(p.source == "trade" and p.at == RUN_AT for p in prices.values())
    await record_today_prices(engine, AS_OF, prices)
    assert await load_today_prices(engine, AS_OF) == prices
    assert await load_today_prices(engine, AS_OF + timedelta(days=1)) == {}


async def test_a_ticker_unknown_to_the_data_api_has_no_live_price(
    client: DataClient, sim: SimThread
) -> None:
    sim.set_unknown("ZZZQ")

    prices = await fetch_today_prices(client, ["SPY", "ZZZQ"])

    assert set(prices) == {"SPY"}


async def test_live_frame_is_history_before_today_plus_todays_price(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await load(engine, client, md_config)
    prices = await fetch_today_prices(client, TICKERS)

    frame = await build_price_frame(engine, TICKERS, AS_OF, mode="live", today_prices=prices)

    assert frame.schema == pl.Schema(FRAME_SCHEMA)
    assert frame.filter(pl.col("date") > AS_OF).is_empty()
    today = frame.filter(pl.col("date") == AS_OF)
    assert dict(zip(today["symbol"], today["close"], strict=True)) == {
        t: float(p.price) for t, p in prices.items()
    }
    for ticker in TICKERS:
        dates = frame.filter(symbol=ticker)["date"].to_list()
        assert dates[-2:] == [THROUGH, AS_OF]
        assert dates == sorted(set(dates))


async def test_previous_close_frame_ends_at_the_previous_session(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await load(engine, client, md_config)
    prices = await fetch_today_prices(client, TICKERS)

    frame = await build_price_frame(
        engine, TICKERS, AS_OF, mode="previous_close", today_prices=prices
    )

    assert frame["date"].max() == THROUGH
    assert frame.group_by("symbol").agg(pl.col("date").max())["date"].to_list() == [THROUGH] * 3


async def test_a_frame_for_a_past_as_of_date_has_no_bar_after_it(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await load(engine, client, md_config)
    as_of = date(2026, 6, 15)  # a Monday

    live = await build_price_frame(engine, TICKERS, as_of, mode="previous_close")
    backtest = await historical_frame(engine, TICKERS, as_of)

    assert live["date"].max() == previous_trading_day(as_of)
    assert backtest["date"].max() == as_of
    assert backtest.filter(pl.col("date") > as_of).is_empty()
    assert backtest.height == live.height + len(TICKERS)


async def test_stale_or_missing_data_fails_each_strategy_that_uses_it_closed(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await refresh_bars(engine, client, ["SPY", "BIL"], through=THROUGH, config=md_config)
    await refresh_bars(engine, client, ["TQQQ"], through=date(2026, 11, 13), config=md_config)
    strategies = {
        "fresh": ["SPY", "BIL"],
        "stale": ["SPY", "TQQQ"],
        "missing": ["BIL", "NEVER"],
    }

    checks = await check_freshness(engine, strategies, AS_OF)

    assert checks["fresh"].ok
    assert checks["stale"].problems == (
        "TQQQ: last bar 2026-11-13 is older than the previous trading day 2026-11-17",
    )
    assert checks["missing"].problems == ("NEVER: no price data in the bar store",)


async def test_live_mode_also_needs_a_price_and_a_successful_refresh(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await load(engine, client, md_config)
    prices = {"SPY": LivePrice("SPY", Decimal("1.5"), "trade", RUN_AT)}

    checks = await check_freshness(
        engine,
        {"a": ["SPY"], "b": ["TQQQ"], "c": ["BIL"]},
        AS_OF,
        today_prices={**prices, "BIL": prices["SPY"]},
        refresh_failures={"BIL": "BIL: HTTP 500: internal error"},
    )

    assert checks["a"].ok
    assert checks["b"].problems == ("TQQQ: no live price (no trade and no quote)",)
    assert checks["c"].problems == ("BIL: refresh failed: BIL: HTTP 500: internal error",)


async def test_after_a_weekend_friday_is_the_previous_trading_day(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    friday = date(2026, 11, 13)
    await refresh_bars(engine, client, ["SPY"], through=friday, config=md_config)

    monday = await check_freshness(engine, {"s": ["SPY"]}, date(2026, 11, 16))
    tuesday = await check_freshness(engine, {"s": ["SPY"]}, date(2026, 11, 17))

    assert monday["s"].ok
    assert not tuesday["s"].ok
