"""The simulator of tests/sim (reset before each test) and settings pointed at it."""

from __future__ import annotations

from decimal import Decimal

from pydantic import SecretStr

from alchemiser.db import PROJECT_ROOT
from alchemiser.settings import (
    AlpacaConfig,
    ExecutionConfig,
    MarketDataConfig,
    Settings,
    StrategyConfig,
)
from alchemiser.sim import SimThread
from tests.sim.conftest import fresh_sim, sim

__all__ = ["fresh_sim", "sim"]

EXAMPLES = PROJECT_ROOT / "strategies"
BOOKS = (
    ("spy-trend", "spy_trend.clj", "30000"),
    ("tqqq-rsi-guard", "tqqq_rsi_guard.clj", "20000"),
    ("risk-parity", "risk_parity_blend.clj", "25000"),
)


def settings_for(sim: SimThread, database_url: str, **overrides: object) -> Settings:
    strategies = tuple(
        StrategyConfig(id=sid, file=EXAMPLES / file, allocation=Decimal(0), capital=Decimal(cap))
        for sid, file, cap in BOOKS
    )
    values: dict[str, object] = {
        "database_url": SecretStr(database_url),
        "strategies": strategies,
        "alpaca": AlpacaConfig(
            api_key=SecretStr(sim.api_key),
            secret_key=SecretStr(sim.secret_key),
            trading_url=sim.trading_url,
            data_url=sim.data_url,
            stream_url=sim.stream_url,
        ),
        "marketdata": MarketDataConfig(
            history_years=1, max_retries=2, retry_backoff_seconds=0.01, concurrency=2
        ),
        "execution": ExecutionConfig(step_interval_seconds=0.1, order_timeout_seconds=2.0),
    }
    return Settings(**(values | overrides))
