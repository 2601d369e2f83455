"""Refreshing the bar store from the simulator through the real alpaca-py client."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
from alpaca.data.enums import Adjustment, DataFeed
from alpaca.data.historical.stock import StockHistoricalDataClient
from alpaca.data.requests import StockBarsRequest
from alpaca.data.timeframe import TimeFrame
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.market_calendar import NEW_YORK, get_calendar
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.marketdata.refresh import history_start, refresh_bars
from alchemiser.marketdata.store import load_coverage, read_bars
from alchemiser.settings import AlpacaConfig, MarketDataConfig
from alchemiser.sim import SimThread
from tests.marketdata.conftest import AS_OF, RUN_AT, THROUGH, config

# Two sessions later: Friday 20 November 2026 at 3:30 PM.
LATER = RUN_AT + timedelta(days=2)
LATER_THROUGH = date(2026, 11, 19)


def sessions(start: date, end: date) -> list[date]:
    return [s.day for s in get_calendar().sessions_between(start, end)]


def reference_closes(sim: SimThread, ticker: str, start: date, end: date) -> dict[date, float]:
    """The simulator's adjusted closes through alpaca-py's own models (an independent read)."""
    client = StockHistoricalDataClient(sim.api_key, sim.secret_key, url_override=sim.data_url)
    client._retry = 0
    request = StockBarsRequest(
        symbol_or_symbols=ticker,
        timeframe=TimeFrame.Day,
        start=datetime.combine(start, datetime.min.time(), NEW_YORK),
        end=datetime.combine(end, datetime.max.time().replace(microsecond=0), NEW_YORK),
        adjustment=Adjustment.ALL,
        feed=DataFeed.IEX,
    )
    bars: Any = client.get_stock_bars(request)
    return {b.timestamp.astimezone(NEW_YORK).date(): b.close for b in bars[ticker]}


async def closes(engine: AsyncEngine, ticker: str) -> dict[date, float]:
    frame = await read_bars(engine, [ticker], before=date.max)
    return dict(zip(frame["date"].to_list(), frame["close"].to_list(), strict=True))


async def test_first_fetch_loads_the_whole_configured_history(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig, sim: SimThread
) -> None:
    report = await refresh_bars(engine, client, ["spy", "QQQ"], through=THROUGH, config=md_config)

    assert report.ok, report.failed
    start = history_start(THROUGH, md_config.history_years)
    expected_days = sessions(start, THROUGH)
    coverage = await load_coverage(engine)
    assert set(coverage) == {"SPY", "QQQ"}
    for ticker in ("SPY", "QQQ"):
        assert report.results[ticker].action == "loaded"
        assert coverage[ticker].first_date == expected_days[0]
        assert coverage[ticker].last_date == THROUGH
        assert coverage[ticker].bar_count == len(expected_days)
        assert coverage[ticker].requested_from == start
        assert await closes(engine, ticker) == reference_closes(sim, ticker, start, THROUGH)


async def test_top_up_fetches_only_the_new_sessions(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig, sim: SimThread
) -> None:
    await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)
    before = (await load_coverage(engine))["SPY"]
    sim.set_clock(now=LATER, speed=0.0)

    report = await refresh_bars(engine, client, ["SPY"], through=LATER_THROUGH, config=md_config)

    result = report.results["SPY"]
    assert (result.action, result.bars_written, result.last_date) == ("topped_up", 2, LATER_THROUGH)
    after = (await load_coverage(engine))["SPY"]
    assert after.bar_count == before.bar_count + 2
    assert after.last_date == LATER_THROUGH
    assert after.full_fetch_at == before.full_fetch_at
    assert after.refreshed_at > before.refreshed_at
    start = history_start(THROUGH, md_config.history_years)
    assert await closes(engine, "SPY") == reference_closes(sim, "SPY", start, LATER_THROUGH)


async def test_refreshing_again_the_same_day_changes_nothing(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)
    stored = await closes(engine, "SPY")

    report = await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)

    assert (report.results["SPY"].action, report.results["SPY"].bars_written) == ("topped_up", 0)
    assert await closes(engine, "SPY") == stored


async def test_refreshing_through_an_older_session_keeps_the_newer_bars(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig
) -> None:
    await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)
    stored = await closes(engine, "SPY")

    report = await refresh_bars(
        engine, client, ["SPY"], through=date(2026, 11, 2), config=md_config
    )

    # The earlier window start backfills older sessions; nothing stored is lost.
    assert report.ok
    after = await closes(engine, "SPY")
    assert {d: after[d] for d in stored} == stored
    assert max(after) == THROUGH
    assert min(after) < min(stored)


@pytest.mark.parametrize(
    ("split_ratio", "dividend"), [(2.0, 0.0), (1.0, 25.0)], ids=["split", "dividend"]
)
async def test_a_retroactive_adjustment_is_detected_and_healed(
    engine: AsyncEngine,
    client: DataClient,
    md_config: MarketDataConfig,
    sim: SimThread,
    split_ratio: float,
    dividend: float,
) -> None:
    await refresh_bars(engine, client, ["SPY", "QQQ"], through=THROUGH, config=md_config)
    old = await closes(engine, "SPY")
    untouched = await closes(engine, "QQQ")
    # Effective today: every stored SPY bar (all before it) is re-adjusted by Alpaca.
    sim.corporate_action("SPY", AS_OF, split_ratio=split_ratio, dividend=dividend)

    report = await refresh_bars(engine, client, ["SPY", "QQQ"], through=THROUGH, config=md_config)

    assert report.results["SPY"].action == "healed"
    assert report.results["QQQ"].action == "topped_up"
    healed = await closes(engine, "SPY")
    start = history_start(THROUGH, md_config.history_years)
    assert healed == reference_closes(sim, "SPY", start, THROUGH)
    assert healed.keys() == old.keys()
    first = min(old)
    assert healed[first] == pytest.approx(old[first] * healed[THROUGH] / old[THROUGH], rel=1e-3)
    assert healed[THROUGH] < old[THROUGH]
    assert await closes(engine, "QQQ") == untouched


async def test_pagination_merges_every_page_of_a_multi_symbol_request(
    engine: AsyncEngine, alpaca: AlpacaConfig
) -> None:
    # 20 years of four tickers is ~20,000 bars: alpaca-py follows next_page_token (10,000 a page).
    md_config = config(history_years=20)
    client = DataClient(alpaca, md_config)
    tickers = ["SPY", "QQQ", "TLT", "AAA"]

    report = await refresh_bars(engine, client, tickers, through=THROUGH, config=md_config)

    assert report.ok, report.failed
    expected = sessions(history_start(THROUGH, 20), THROUGH)
    assert len(expected) * len(tickers) > 10_000
    frame = await read_bars(engine, tickers, before=AS_OF)
    assert frame.height == len(expected) * len(tickers)
    for ticker in tickers:
        assert frame.filter(symbol=ticker)["date"].to_list() == expected


@pytest.mark.parametrize("status", [429, 500])
async def test_rate_limits_and_server_errors_are_retried(
    engine: AsyncEngine,
    client: DataClient,
    md_config: MarketDataConfig,
    sim: SimThread,
    status: int,
) -> None:
    sim.set_faults(status=status, count=md_config.max_retries)  # one fewer than our attempts

    report = await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)

    assert report.ok, report.failed
    assert report.results["SPY"].action == "loaded"
    assert sim.set_faults()["error_count"] == 0  # every injected fault was met


async def test_a_refresh_that_fails_midway_leaves_nothing_half_written(
    engine: AsyncEngine, alpaca: AlpacaConfig, sim: SimThread
) -> None:
    # One request at a time, four tickers a request: the faults exhaust the first batch's
    # retries, the second batch goes through.
    md_config = config(concurrency=1)
    client = DataClient(alpaca, md_config)
    first, second = ["AAA", "BBB", "CCC", "DDD"], ["EEE", "FFF", "GGG", "HHH"]
    await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)
    before = await closes(engine, "SPY")
    coverage_before = (await load_coverage(engine))["SPY"]
    sim.set_clock(now=LATER, speed=0.0)
    sim.set_faults(status=500, count=2 * (md_config.max_retries + 1))

    report = await refresh_bars(
        engine, client, ["SPY", *first, *second], through=LATER_THROUGH, config=md_config
    )

    # The top-up of SPY and the first new batch failed: nothing of theirs changed.
    assert set(report.failed) == {"SPY", *first}
    assert "HTTP 500" in report.failed["AAA"]
    assert await closes(engine, "SPY") == before
    coverage = await load_coverage(engine)
    assert coverage["SPY"] == coverage_before
    assert not set(first) & set(coverage)
    assert (await read_bars(engine, first, before=date.max)).is_empty()
    assert all(coverage[t].last_date == LATER_THROUGH for t in second)

    healed = await refresh_bars(
        engine, client, ["SPY", *first], through=LATER_THROUGH, config=md_config
    )
    assert healed.ok
    assert (await load_coverage(engine))["SPY"].last_date == LATER_THROUGH


async def test_a_ticker_unknown_to_the_data_api_fails_with_a_clear_error(
    engine: AsyncEngine, client: DataClient, md_config: MarketDataConfig, sim: SimThread
) -> None:
    sim.set_unknown("ZZZQ")

    report = await refresh_bars(engine, client, ["SPY", "ZZZQ"], through=THROUGH, config=md_config)

    assert report.results["SPY"].action == "loaded"
    assert report.results["ZZZQ"].action == "failed"
    assert report.failed["ZZZQ"].startswith("ZZZQ: the data API returned no bars")
    assert "ZZZQ" not in await load_coverage(engine)


async def test_a_non_retryable_error_is_not_retried(
    engine: AsyncEngine, md_config: MarketDataConfig, sim: SimThread
) -> None:
    wrong = AlpacaConfig.model_validate(
        {"api_key": "nope", "secret_key": "nope", "data_url": sim.data_url}
    )
    client = DataClient(wrong, md_config)

    report = await refresh_bars(engine, client, ["SPY"], through=THROUGH, config=md_config)

    assert "HTTP 401" in report.failed["SPY"]
    assert "nope" not in report.failed["SPY"]


async def test_a_stalled_data_api_times_out_and_fails_the_ticker(
    engine: AsyncEngine, alpaca: AlpacaConfig, sim: SimThread
) -> None:
    # Every answer comes after 3 s; the client gives up after 0.2 s each attempt.
    md_config = config(request_timeout_seconds=0.2, max_retries=1)
    sim.set_faults(latency_ms=3000)

    report = await refresh_bars(
        engine, DataClient(alpaca, md_config), ["SPY"], through=THROUGH, config=md_config
    )

    assert "ReadTimeout" in report.failed["SPY"]
    assert "SPY" not in await load_coverage(engine)
