"""When the daily run starts: 3:30 PM ET, earlier on early-close days."""

from __future__ import annotations

from datetime import date, datetime, time

import pytest

from alchemiser.market_calendar import NEW_YORK, daily_run_at, latest_trading_day


def test_run_time_on_a_full_day() -> None:
    assert daily_run_at(date(2026, 11, 20), time(15, 30), 30) == datetime(
        2026, 11, 20, 15, 30, tzinfo=NEW_YORK
    )


def test_run_moves_before_an_early_close() -> None:
    # The day after Thanksgiving closes at 13:00, so the run starts 30 minutes before.
    assert daily_run_at(date(2026, 11, 27), time(15, 30), 30) == datetime(
        2026, 11, 27, 12, 30, tzinfo=NEW_YORK
    )


def test_no_run_on_a_holiday() -> None:
    with pytest.raises(ValueError, match="not a trading day"):
        daily_run_at(date(2026, 11, 26), time(15, 30), 30)


def test_latest_trading_day_steps_back_over_weekends_and_holidays() -> None:
    assert latest_trading_day(date(2026, 11, 20)) == date(2026, 11, 20)
    assert latest_trading_day(date(2026, 11, 22)) == date(2026, 11, 20)  # Sunday
    assert latest_trading_day(date(2026, 11, 26)) == date(2026, 11, 25)  # Thanksgiving
