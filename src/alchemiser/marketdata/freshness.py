"""Fail closed on missing or stale data: which strategies may be evaluated today.

A strategy may run only when every ticker it names has bars up to the previous
trading day (or `max_data_age_days` sessions back), a live price in "live" mode,
and did not fail in this run's refresh. Otherwise it is skipped, and the problems,
each naming the ticker and its last bar date, go into the run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.market_calendar import previous_trading_day
from alchemiser.marketdata.alpaca import LivePrice
from alchemiser.marketdata.store import Coverage, load_coverage


@dataclass(frozen=True, slots=True)
class DataCheck:
    """One strategy's verdict: ok, or every problem found with its data."""

    strategy_id: str
    problems: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.problems


def oldest_acceptable_bar(as_of: date, max_age_days: int = 1) -> date:
    """The session the newest bar must reach: `max_age_days` sessions before `as_of`."""
    day = as_of
    for _ in range(max_age_days):
        day = previous_trading_day(day)
    return day


async def check_freshness(
    engine: AsyncEngine,
    strategy_tickers: Mapping[str, Iterable[str]],
    as_of: date,
    *,
    max_age_days: int = 1,
    today_prices: Mapping[str, LivePrice] | None = None,
    refresh_failures: Mapping[str, str] | None = None,
) -> dict[str, DataCheck]:
    """Per strategy id: ok, or the list of data problems that make it fail closed.

    Pass `today_prices` in "live" mode (a ticker without one is a problem) and the
    refresh report's failures (a ticker whose refresh failed may hold stale or
    un-healed prices).
    """
    by_strategy = {sid: sorted(set(ts)) for sid, ts in strategy_tickers.items()}
    everything = {t for ts in by_strategy.values() for t in ts}
    coverage = await load_coverage(engine, everything)
    required = oldest_acceptable_bar(as_of, max_age_days)
    problems = {
        t: ticker_problems(t, coverage.get(t), required, today_prices, refresh_failures or {})
        for t in everything
    }
    return {
        sid: DataCheck(sid, tuple(p for t in ts for p in problems[t]))
        for sid, ts in by_strategy.items()
    }


def ticker_problems(
    ticker: str,
    coverage: Coverage | None,
    required: date,
    today_prices: Mapping[str, LivePrice] | None,
    refresh_failures: Mapping[str, str],
) -> list[str]:
    found: list[str] = []
    if coverage is None:
        found.append(f"{ticker}: no price data in the bar store")
    elif coverage.last_date < required:
        found.append(
            f"{ticker}: last bar {coverage.last_date} is older than the previous trading day "
            f"{required}"
        )
    if ticker in refresh_failures:
        found.append(f"{ticker}: refresh failed: {refresh_failures[ticker]}")
    if today_prices is not None and ticker not in today_prices:
        found.append(f"{ticker}: no live price (no trade and no quote)")
    return found
