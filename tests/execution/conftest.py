"""The simulator of tests/sim (one per session, reset before each test) and a Broker on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from pydantic import SecretStr

from alchemiser.execution.broker import Broker
from alchemiser.settings import AlpacaConfig, ExecutionConfig
from alchemiser.sim import SimThread
from tests.sim.conftest import fresh_sim, sim

__all__ = ["fresh_sim", "sim"]

TIMEOUT_S = 2.0
BACKOFF_S = 0.01


def alpaca_config(sim: SimThread, secret: str | None = None) -> AlpacaConfig:
    return AlpacaConfig(
        api_key=SecretStr(sim.api_key),
        secret_key=SecretStr(secret or sim.secret_key),
        trading_url=sim.trading_url,
        data_url=sim.data_url,
        stream_url=sim.stream_url,
    )


@pytest.fixture
async def broker(sim: SimThread) -> AsyncIterator[Broker]:
    adapter = Broker(
        alpaca_config(sim),
        ExecutionConfig(order_timeout_seconds=TIMEOUT_S, max_retries=3),
        backoff_seconds=BACKOFF_S,
    )
    yield adapter
    adapter.close()
