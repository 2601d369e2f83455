"""When the daily run starts, from the broker's clock and calendar (never the host's).

A trading day's *slot* opens at `schedule.run_time` ET, or `minutes_before_close`
before an early close if that is earlier (`market_calendar.daily_run_at`), and
closes a minute before the close (`CLOSE_MARGIN`: no order is sent later). A day
the broker's calendar does not list has no slot. Everything here is a function of
the broker's time and sessions, so the simulator's clock drives it in tests.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Literal

from alchemiser.market_calendar import NEW_YORK, Session, daily_run_at
from alchemiser.run.daily import CLOSE_MARGIN
from alchemiser.settings import ScheduleConfig

# The calendar read around today: back far enough for the last session, ahead for the next.
CALENDAR_BEHIND = timedelta(days=10)
CALENDAR_AHEAD = timedelta(days=14)

Due = Literal["wait", "run", "missed"]


@dataclass(frozen=True)
class Slot:
    """A trading day's run: it may start from `at` until `until` (broker time)."""

    day: date
    at: datetime
    until: datetime


def slot(session: Session, schedule: ScheduleConfig) -> Slot:
    at = daily_run_at(session.day, schedule.run_time, schedule.minutes_before_close, session.close)
    return Slot(session.day, at, session.close - CLOSE_MARGIN)


def today_slot(now: datetime, sessions: list[Session], schedule: ScheduleConfig) -> Slot | None:
    """The slot of the broker's trading day `now` falls on (None on a holiday or weekend)."""
    today = now.astimezone(NEW_YORK).date()
    return next((slot(s, schedule) for s in sessions if s.day == today), None)


def next_slot(
    now: datetime, sessions: list[Session], schedule: ScheduleConfig, done: Container[date] = ()
) -> Slot | None:
    """The first slot that has not closed yet at `now` (today's while it is open), of a
    day not `done` already."""
    slots = (slot(s, schedule) for s in sorted(sessions, key=lambda s: s.day))
    return next((s for s in slots if s.until > now and s.day not in done), None)


def due(now: datetime, today: Slot | None) -> Due:
    """What today's slot asks for at `now`: nothing yet, the run, or a missed run."""
    if today is None or now < today.at:
        return "wait"
    return "run" if now < today.until else "missed"


def last_closed_session(now: datetime, sessions: list[Session]) -> date | None:
    """The newest session whose close is past: its daily bar is final."""
    closed = [s.day for s in sessions if s.close <= now]
    return max(closed) if closed else None


def next_daily(now: datetime, at: time) -> datetime:
    """The next `at` ET after `now` (the overnight bar refresh)."""
    local = now.astimezone(NEW_YORK)
    candidate = datetime.combine(local.date(), at, NEW_YORK)
    if candidate <= local:
        candidate = datetime.combine(local.date() + timedelta(days=1), at, NEW_YORK)
    return candidate
