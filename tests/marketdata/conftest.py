"""A simulator for the bar-store tests, driven through the real alpaca-py client.

The simulator's clock is frozen (speed 0) at a run time, so "today", the last
completed session and every price are fixed within a test.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime

import pytest

from alchemiser.market_calendar import NEW_YORK
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.settings import AlpacaConfig, MarketDataConfig
from alchemiser.sim import SimThread

SEED = 11
# Wednesday 18 November 2026, 3:30 PM: the daily run's time.
RUN_AT = datetime(2026, 11, 18, 15, 30, tzinfo=NEW_YORK)
AS_OF = date(2026, 11, 18)
THROUGH = date(2026, 11, 17)  # the last completed session at RUN_AT
HISTORY_YEARS = 2


def config(**overrides: object) -> MarketDataConfig:
    """Fast retries for tests; the backoff is a fraction of a second, never asserted on."""
    base: dict[str, object] = {
        "history_years": HISTORY_YEARS,
        "request_timeout_seconds": 20.0,
        "max_retries": 2,
        "retry_backoff_seconds": 0.01,
        "retry_backoff_max_seconds": 0.05,
        "concurrency": 2,
    }
    return MarketDataConfig.model_validate(base | overrides)


@pytest.fixture(scope="session")
def sim() -> Iterator[SimThread]:
    with SimThread(seed=SEED, now=RUN_AT, speed=0.0) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_sim(sim: SimThread) -> None:
    sim.reset()
    sim.clear_faults()
    sim.set_clock(now=RUN_AT, speed=0.0)


@pytest.fixture(scope="session")
def alpaca(sim: SimThread) -> AlpacaConfig:
    return AlpacaConfig.model_validate(
        {"api_key": sim.api_key, "secret_key": sim.secret_key, "data_url": sim.data_url}
    )


@pytest.fixture
def md_config() -> MarketDataConfig:
    return config()


@pytest.fixture
def client(alpaca: AlpacaConfig, md_config: MarketDataConfig) -> DataClient:
    return DataClient(alpaca, md_config)
