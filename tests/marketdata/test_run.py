"""The run's market-data step in one call, in both "today" modes."""

from __future__ import annotations

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.prices import load_today_prices
from alchemiser.marketdata.run import prepare_run_data
from alchemiser.settings import AlpacaConfig, MarketDataConfig, Settings
from alchemiser.sim import SimThread
from tests.marketdata.conftest import AS_OF, THROUGH

STRATEGIES = {"good": ["SPY", "bil"], "bad": ["SPY", "ZZZQ"]}


def settings(alpaca: AlpacaConfig, md_config: MarketDataConfig, mode: str) -> Settings:
    return Settings.model_validate({"alpaca": alpaca, "marketdata": md_config, "today_price": mode})


async def test_live_run_data(
    engine: AsyncEngine,
    client: DataClient,
    alpaca: AlpacaConfig,
    md_config: MarketDataConfig,
    sim: SimThread,
) -> None:
    sim.set_unknown("ZZZQ")

    data = await prepare_run_data(
        engine, client, STRATEGIES, AS_OF, settings(alpaca, md_config, "live")
    )

    assert data.usable == ["good"]
    assert data.checks["bad"].problems == (
        "ZZZQ: no price data in the bar store",
        f"ZZZQ: refresh failed: {data.refresh.failed['ZZZQ']}",
        "ZZZQ: no live price (no trade and no quote)",
    )
    assert data.evaluation_date == AS_OF
    assert sorted(data.frame["symbol"].unique()) == ["BIL", "SPY"]
    today = data.frame.filter(pl.col("date") == AS_OF)
    assert today["close"].to_list() == [float(data.today_prices[t].price) for t in ("BIL", "SPY")]
    assert await load_today_prices(engine, AS_OF) == data.today_prices


async def test_previous_close_run_data(
    engine: AsyncEngine, client: DataClient, alpaca: AlpacaConfig, md_config: MarketDataConfig
) -> None:
    data = await prepare_run_data(
        engine, client, STRATEGIES, AS_OF, settings(alpaca, md_config, "previous_close")
    )

    assert data.usable == ["good", "bad"]
    assert data.evaluation_date == THROUGH
    assert data.frame["date"].max() == THROUGH
    assert data.today_prices == {}
    assert await load_today_prices(engine, AS_OF) == {}
