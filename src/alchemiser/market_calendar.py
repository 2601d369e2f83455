"""NYSE trading days, sessions and early closes (a thin wrapper over exchange_calendars XNYS).

Used by the daemon's scheduler and by the simulator. All datetimes returned are
timezone-aware in America/New_York. The underlying calendar is built once per
process (about 0.2 s) for a fixed range wide enough for bar history and scheduling.
"""

from __future__ import annotations

import bisect
import functools
import warnings
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import exchange_calendars

NEW_YORK = ZoneInfo("America/New_York")
EXCHANGE = "XNYS"
CALENDAR_START = date(1990, 1, 2)
# Far enough ahead for any simulated clock; XNYS holiday rules extend indefinitely.
YEARS_AHEAD = 6


@dataclass(frozen=True, slots=True)
class Session:
    """One regular NYSE session: aware ET `open`/`close` (13:00 close on early-close days)."""

    day: date
    open: datetime
    close: datetime

    @property
    def is_early_close(self) -> bool:
        return self.close.hour < 16


class MarketCalendar:
    """Indexable list of sessions with O(log n) lookups by date or instant."""

    def __init__(self, start: date = CALENDAR_START, end: date | None = None) -> None:
        end = end or date(datetime.now(UTC).year + YEARS_AHEAD, 12, 31)
        with warnings.catch_warnings():  # pandas deprecation noise inside exchange_calendars
            warnings.simplefilter("ignore")
            cal = exchange_calendars.get_calendar(
                EXCHANGE, start=start.isoformat(), end=end.isoformat()
            )
            self.days: list[date] = [ts.date() for ts in cal.sessions]
            self.open_epochs: list[float] = [ts.timestamp() for ts in cal.opens]
            self.close_epochs: list[float] = [ts.timestamp() for ts in cal.closes]
        self._index = {d: i for i, d in enumerate(self.days)}
        self.first_day = self.days[0]
        self.last_day = self.days[-1]

    def __len__(self) -> int:
        return len(self.days)

    def session_at(self, index: int) -> Session:
        return Session(
            self.days[index],
            datetime.fromtimestamp(self.open_epochs[index], NEW_YORK),
            datetime.fromtimestamp(self.close_epochs[index], NEW_YORK),
        )

    def is_trading_day(self, day: date) -> bool:
        return day in self._index

    def session(self, day: date) -> Session | None:
        i = self._index.get(day)
        return None if i is None else self.session_at(i)

    def first_index_on_or_after(self, day: date) -> int:
        """Index of the first session on or after `day` (len(self) if none)."""
        return bisect.bisect_left(self.days, day)

    def next_trading_day(self, day: date) -> date:
        return self.days[bisect.bisect_right(self.days, day)]

    def previous_trading_day(self, day: date) -> date:
        return self.days[bisect.bisect_left(self.days, day) - 1]

    def sessions_between(self, start: date, end: date) -> list[Session]:
        lo = bisect.bisect_left(self.days, start)
        hi = bisect.bisect_right(self.days, end)
        return [self.session_at(i) for i in range(lo, hi)]

    def completed_sessions(self, epoch: float) -> int:
        """How many sessions have closed at or before the instant `epoch` (seconds)."""
        return bisect.bisect_right(self.close_epochs, epoch)

    def is_open(self, instant: datetime) -> bool:
        i = self.completed_sessions(instant.timestamp())
        return i < len(self.days) and self.open_epochs[i] <= instant.timestamp()

    def next_open(self, instant: datetime) -> datetime:
        i = bisect.bisect_right(self.open_epochs, instant.timestamp())
        return datetime.fromtimestamp(self.open_epochs[i], NEW_YORK)

    def next_close(self, instant: datetime) -> datetime:
        i = bisect.bisect_right(self.close_epochs, instant.timestamp())
        return datetime.fromtimestamp(self.close_epochs[i], NEW_YORK)


@functools.cache
def get_calendar() -> MarketCalendar:
    """The process-wide NYSE calendar."""
    return MarketCalendar()


def is_trading_day(day: date) -> bool:
    return get_calendar().is_trading_day(day)


def session_open(day: date) -> datetime | None:
    s = get_calendar().session(day)
    return None if s is None else s.open


def session_close(day: date) -> datetime | None:
    s = get_calendar().session(day)
    return None if s is None else s.close


def next_trading_day(day: date) -> date:
    return get_calendar().next_trading_day(day)


def previous_trading_day(day: date) -> date:
    return get_calendar().previous_trading_day(day)


def latest_trading_day(day: date) -> date:
    """`day` itself if the market trades that day, else the trading day before it."""
    return day if is_trading_day(day) else previous_trading_day(day)


def daily_run_at(
    day: date, run_time: time, minutes_before_close: int, close: datetime | None = None
) -> datetime:
    """When the daily run starts on trading day `day`: `run_time` ET, or
    `minutes_before_close` before the close if that is earlier (early-close days).
    `close`: the session's close as the broker's calendar has it (default: ours)."""
    close = close or session_close(day)
    if close is None:
        raise ValueError(f"{day} is not a trading day")
    usual = datetime.combine(day, run_time, NEW_YORK)
    return min(usual, close - timedelta(minutes=minutes_before_close))
