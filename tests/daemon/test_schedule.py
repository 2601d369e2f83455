"""The scheduler's choice of run time, from the simulator's calendar read through the Broker."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest

from alchemiser.daemon import schedule
from alchemiser.execution.broker import Broker
from alchemiser.market_calendar import NEW_YORK, Session
from alchemiser.settings import ExecutionConfig, ScheduleConfig
from alchemiser.sim import SimThread
from tests.run.conftest import settings_for

USUAL = ScheduleConfig()  # 15:30 ET, or 30 minutes before an early close


@pytest.fixture
async def sessions(sim: SimThread) -> list[Session]:
    """November 2026 as the broker's calendar has it (Thanksgiving, its early close)."""
    broker = Broker(settings_for(sim, "postgresql://unused").alpaca, ExecutionConfig())
    try:
        return await broker.calendar(date(2026, 11, 16), date(2026, 12, 4))
    finally:
        broker.close()


def at(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=NEW_YORK)


async def test_a_normal_day_runs_at_half_past_three(sessions: list[Session]) -> None:
    today = schedule.today_slot(at(18, 9), sessions, USUAL)
    assert today is not None
    assert (today.at, today.until) == (at(18, 15, 30), at(18, 15, 59))
    assert schedule.due(at(18, 15, 29), today) == "wait"
    assert schedule.due(at(18, 15, 30), today) == "run"
    assert schedule.due(at(18, 15, 58), today) == "run"
    assert schedule.due(at(18, 15, 59), today) == "missed"


async def test_the_day_after_thanksgiving_runs_half_an_hour_before_its_early_close(
    sessions: list[Session],
) -> None:
    today = schedule.today_slot(at(27, 9), sessions, USUAL)
    assert today is not None
    assert (today.at, today.until) == (at(27, 12, 30), at(27, 12, 59))
    assert schedule.due(at(27, 13, 30), today) == "missed"
    later = ScheduleConfig(run_time=time(12, 0), minutes_before_close=15)
    assert schedule.today_slot(at(27, 9), sessions, later) == schedule.Slot(
        date(2026, 11, 27), at(27, 12), at(27, 12, 59)
    )


async def test_a_holiday_has_no_run_and_the_next_is_the_next_session(
    sessions: list[Session],
) -> None:
    thanksgiving = at(26, 15, 30)
    assert schedule.today_slot(thanksgiving, sessions, USUAL) is None
    assert schedule.due(thanksgiving, None) == "wait"
    upcoming = schedule.next_slot(thanksgiving, sessions, USUAL)
    assert upcoming is not None and upcoming.at == at(27, 12, 30)


async def test_a_day_done_or_closed_gives_way_to_the_next(sessions: list[Session]) -> None:
    inside = at(18, 15, 45)
    assert schedule.next_slot(inside, sessions, USUAL).day == date(2026, 11, 18)  # type: ignore[union-attr]
    done = schedule.next_slot(inside, sessions, USUAL, {date(2026, 11, 18)})
    assert done is not None and done.at == at(19, 15, 30)
    assert schedule.next_slot(at(18, 16), sessions, USUAL).day == date(2026, 11, 19)  # type: ignore[union-attr]
    assert schedule.last_closed_session(at(18, 16), sessions) == date(2026, 11, 18)
    assert schedule.last_closed_session(at(18, 15, 59), sessions) == date(2026, 11, 17)


def test_the_overnight_refresh_is_the_next_such_time_in_new_york() -> None:
    assert schedule.next_daily(at(18, 3), time(4)) == at(18, 4)
    assert schedule.next_daily(at(18, 4), time(4)) == at(18, 4) + timedelta(days=1)
