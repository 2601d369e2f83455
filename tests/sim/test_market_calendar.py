"""The NYSE calendar wrapper the simulator (and later the daemon's scheduler) uses."""

from __future__ import annotations

from datetime import date, datetime

from alchemiser import market_calendar as mc
from alchemiser.market_calendar import NEW_YORK, get_calendar


def test_holidays_weekends_and_early_closes() -> None:
    assert mc.is_trading_day(date(2026, 11, 25))
    assert not mc.is_trading_day(date(2026, 11, 26))  # Thanksgiving
    assert not mc.is_trading_day(date(2026, 11, 28))  # Saturday
    assert not mc.is_trading_day(date(2025, 12, 25))
    assert mc.session_close(date(2026, 11, 27)) == datetime(2026, 11, 27, 13, 0, tzinfo=NEW_YORK)
    assert mc.session_open(date(2026, 11, 27)) == datetime(2026, 11, 27, 9, 30, tzinfo=NEW_YORK)
    assert mc.session_close(date(2026, 11, 26)) is None
    session = get_calendar().session(date(2026, 11, 27))
    assert session is not None and session.is_early_close


def test_next_and_previous_trading_day() -> None:
    assert mc.next_trading_day(date(2026, 11, 25)) == date(2026, 11, 27)
    assert mc.previous_trading_day(date(2026, 11, 30)) == date(2026, 11, 27)
    assert mc.previous_trading_day(date(2026, 11, 27)) == date(2026, 11, 25)


def test_open_and_next_open_close() -> None:
    cal = get_calendar()
    friday_evening = datetime(2026, 11, 20, 18, 0, tzinfo=NEW_YORK)
    assert not cal.is_open(friday_evening)
    assert cal.next_open(friday_evening) == datetime(2026, 11, 23, 9, 30, tzinfo=NEW_YORK)
    assert cal.next_close(friday_evening) == datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK)
    assert cal.is_open(datetime(2026, 11, 23, 9, 30, tzinfo=NEW_YORK))
    assert not cal.is_open(datetime(2026, 11, 23, 16, 0, tzinfo=NEW_YORK))
    assert cal.first_day <= date(2000, 1, 3)
