"""Keep the bar store current: full history for new tickers, top-ups for known ones.

A known ticker's refresh re-reads its newest stored bars along with the new ones.
Alpaca rewrites past prices after a split or dividend, so when a re-read close has
moved, that ticker's whole history is fetched again and replaces what was stored.

Each batch of tickers is fetched completely (all pages, with retries) before one
transaction writes its bars and then its refresh state: a refresh that fails part
way leaves every ticker either fully refreshed or exactly as it was.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Literal

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.logging import get_logger
from alchemiser.market_calendar import get_calendar
from alchemiser.marketdata.alpaca import BarRow, DataApiError, DataClient, bar_rows
from alchemiser.marketdata.store import (
    Coverage,
    StoreError,
    TickerWrite,
    load_coverage,
    recent_closes,
    write_bars,
)
from alchemiser.settings import MarketDataConfig

log = get_logger(__name__)

# Symbols per request. Full histories (~5,000 bars each) page at 10,000 bars, so a few
# per request keeps requests parallel; top-ups are a handful of bars per symbol, and
# a few hundred symbols keep the URL under common server limits (8 KB).
FULL_BATCH = 4
TOPUP_BATCH = 200
# A re-read close that differs by more than this (relative) means Alpaca re-adjusted.
CLOSE_TOLERANCE = 1e-6

Action = Literal["loaded", "topped_up", "healed", "failed"]


@dataclass(frozen=True, slots=True)
class TickerResult:
    ticker: str
    action: Action
    bars_written: int = 0
    last_date: date | None = None
    error: str | None = None


@dataclass(slots=True)
class RefreshReport:
    through: date
    results: dict[str, TickerResult] = field(default_factory=dict)
    # The failure that stopped the refresh (rejected keys, API unreachable), if any.
    stopped: DataApiError | None = None

    @property
    def failed(self) -> dict[str, str]:
        return {t: r.error or "" for t, r in self.results.items() if r.action == "failed"}

    @property
    def ok(self) -> bool:
        return not self.failed


def last_completed_session(now: datetime | None = None) -> date:
    """The newest session whose close is past: its bar is final."""
    now = now or datetime.now(UTC)
    cal = get_calendar()
    return cal.days[cal.completed_sessions(now.timestamp()) - 1]


def history_start(through: date, years: int) -> date:
    try:
        return through.replace(year=through.year - years)
    except ValueError:  # 29 February
        return through.replace(year=through.year - years, day=28)


async def refresh_bars(
    engine: AsyncEngine,
    client: DataClient,
    tickers: Iterable[str],
    *,
    through: date,
    config: MarketDataConfig,
    progress: Callable[[int], None] | None = None,
) -> RefreshReport:
    """Bring the bars of `tickers` up to the session `through` (inclusive).

    Never raises for a ticker's data problem: each failure is in the report.
    """
    wanted = sorted({t.strip().upper() for t in tickers if t.strip()})
    job = _Refresh(engine, client, config, through, progress or (lambda _: None))
    coverage = await load_coverage(engine, wanted)
    stored = await recent_closes(engine, list(coverage), config.adjustment_check_bars)
    start = history_start(through, config.history_years)
    known = [t for t in wanted if t in stored and coverage[t].requested_from <= start]
    full = [t for t in wanted if t not in known]
    await job.top_up(known, stored, coverage)
    await job.load_full(full, coverage, start)
    log.info(
        "bars refreshed",
        through=str(through),
        tickers=len(wanted),
        failed=len(job.report.failed),
        bars=sum(r.bars_written for r in job.report.results.values()),
    )
    return job.report


class _Refresh:
    def __init__(
        self,
        engine: AsyncEngine,
        client: DataClient,
        config: MarketDataConfig,
        through: date,
        progress: Callable[[int], None],
    ) -> None:
        self.engine = engine
        self.client = client
        self.config = config
        self.through = through
        self.progress = progress
        self.report = RefreshReport(through)
        self.healing: list[str] = []
        self.probed = False

    async def top_up(
        self,
        tickers: Sequence[str],
        stored: dict[str, dict[date, float]],
        coverage: dict[str, Coverage],
    ) -> None:
        """Fetch from each ticker's oldest re-read bar on; heal those whose closes moved."""
        by_start: dict[date, list[str]] = {}
        for t in tickers:
            since = min(stored[t])
            if since > self.through:  # already holds bars past `through`: nothing to add
                self.report.results[t] = TickerResult(t, "topped_up", 0, coverage[t].last_date)
                self.progress(1)
            else:
                by_start.setdefault(since, []).append(t)
        batches = [
            (group[i : i + TOPUP_BATCH], since)
            for since, group in sorted(by_start.items())
            for i in range(0, len(group), TOPUP_BATCH)
        ]
        await self._gather(self._top_up_batch(b, since, stored, coverage) for b, since in batches)

    async def load_full(
        self, tickers: Sequence[str], coverage: dict[str, Coverage], start: date
    ) -> None:
        """Whole histories: new tickers, longer `history_years`, and healed adjustments.

        A stored ticker is re-read through its newest bar at least: a replacement
        never loses bars, even when `through` is older than they are.
        """
        todo: list[tuple[str, date, Action]] = [(t, start, "loaded") for t in tickers]
        todo += [(t, min(start, coverage[t].requested_from), "healed") for t in self.healing]
        groups: dict[tuple[date, date, Action], list[str]] = {}
        for t, since, action in todo:
            until = max(self.through, coverage[t].last_date) if t in coverage else self.through
            groups.setdefault((since, until, action), []).append(t)
        batches = [
            (group[i : i + FULL_BATCH], *key)
            for key, group in sorted(groups.items())
            for i in range(0, len(group), FULL_BATCH)
        ]
        await self._gather(self._full_batch(b, s, u, a) for b, s, u, a in batches)

    async def _gather(self, jobs: Iterable[Coroutine[Any, Any, None]]) -> None:
        """Run the jobs `concurrency` at a time, the very first one alone.

        Rejected keys or an unreachable API fail the first request, and then
        nothing else is sent (see `_fetch`).
        """
        gate = asyncio.Semaphore(self.config.concurrency)

        async def run(job: Coroutine[Any, Any, None]) -> None:
            async with gate:
                await job

        pending = list(jobs)
        if pending and not self.probed:
            self.probed = True
            await pending.pop(0)
        await asyncio.gather(*(run(j) for j in pending))

    async def _top_up_batch(
        self,
        batch: list[str],
        since: date,
        stored: dict[str, dict[date, float]],
        coverage: dict[str, Coverage],
    ) -> None:
        fetched = await self._fetch(batch, since, self.through)
        if fetched is None:
            return
        writes: list[TickerWrite] = []
        for t in batch:
            rows = fetched.get(t)
            if not rows:
                self._fail([t], _no_data(t, since, self.through))
            elif _moved(stored[t], rows):
                log.info("retroactive adjustment detected", ticker=t)
                self.healing.append(t)
            else:
                last = coverage[t].last_date
                new = [r for r in rows if r[1] > last]
                writes.append(TickerWrite(t, coverage[t].requested_from, False, new))
        await self._write(writes, "topped_up")
        self.progress(len(batch) - sum(1 for t in batch if t in self.healing))

    async def _full_batch(self, batch: list[str], since: date, until: date, action: Action) -> None:
        fetched = await self._fetch(batch, since, until)
        if fetched is None:
            return
        writes: list[TickerWrite] = []
        for t in batch:
            rows = fetched.get(t)
            if rows:
                writes.append(TickerWrite(t, since, True, rows))
            else:
                self._fail([t], _no_data(t, since, until))
        await self._write(writes, action)
        self.progress(len(batch))

    async def _fetch(
        self, batch: list[str], since: date, until: date
    ) -> dict[str, list[BarRow]] | None:
        """The batch's rows; None when it failed (or the refresh has stopped)."""
        stopped = self.report.stopped
        if stopped is not None:  # every other request would fail the same way
            self._fail(batch, str(stopped), quiet=True)
            self.progress(len(batch))
            return None
        try:
            raw = await self.client.daily_bars(batch, since, until)
        except DataApiError as exc:
            if exc.fatal and self.report.stopped is None:
                self.report.stopped = exc
            self._fail(batch, str(exc))
            self.progress(len(batch))
            return None
        return {t: bar_rows(t, bars, until) for t, bars in raw.items()}

    async def _write(self, writes: list[TickerWrite], action: Action) -> None:
        if not writes:
            return
        try:
            await write_bars(self.engine, writes, datetime.now(UTC))
        except (StoreError, asyncpg.UniqueViolationError) as exc:
            # Another refresh wrote these tickers meanwhile; the next refresh settles them.
            self._fail([w.ticker for w in writes], f"not written: {exc}")
            return
        for w in writes:
            last = w.rows[-1][1] if w.rows else None
            self.report.results[w.ticker] = TickerResult(w.ticker, action, len(w.rows), last)

    def _fail(self, tickers: Sequence[str], error: str, *, quiet: bool = False) -> None:
        if not quiet:
            log.warning("bar refresh failed", tickers=",".join(tickers), error=error)
        for t in tickers:
            self.report.results[t] = TickerResult(t, "failed", error=error)


def _moved(stored: dict[date, float], rows: Sequence[BarRow]) -> bool:
    """True when a re-read bar's close differs from the stored one (or vanished)."""
    fetched = {r[1]: r[5] for r in rows}
    for day, close in stored.items():
        new = fetched.get(day)
        if new is None or abs(new - close) > CLOSE_TOLERANCE * max(abs(close), 1.0):
            return True
    return False


def _no_data(ticker: str, since: date, through: date) -> str:
    return (
        f"{ticker}: the data API returned no bars from {since} to {through}"
        " (unknown or delisted ticker?)"
    )
