"""`alchemiser run`: the long-lived daemon, in one event loop.

Start-up, in order (any step that fails stops the start with one clear line):
the health server binds its port → the database is migrated (`db.run`) → the
broker's clock is read and the trade-update stream started (`open_services`) →
the books are reconciled with the broker (the gate's own check; a run refuses to
trade while they disagree) → the scheduler starts → systemd hears READY=1.

The schedule follows the broker's clock and calendar. An APScheduler interval job
(`daemon.check_seconds`) reads the broker's clock, which gives the offset broker
time minus local time, and the calendar; it starts the day's run when the broker's
time is inside the day's slot, or records a missed run when the slot has closed
unrun. The next run instant and the overnight bar refresh are also placed as
APScheduler date jobs at `broker instant - offset` in local time, so they fire on
time between checks; a simulator clock that jumps or runs fast is followed at the
next check.

SIGTERM/SIGINT: no new orders (the ledger's `accepting_orders`), working walks get
`daemon.grace_seconds`, then the run is cancelled, its orders at the broker are
cancelled and booked (`settle_sent_orders`) and the run is recorded as interrupted;
the next start resumes it (`daily_run` finds the day's run again).
"""

from __future__ import annotations

import asyncio
import ctypes
import errno
import gc
import logging
import signal
import time
from contextlib import suppress
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser import db
from alchemiser.books import ledger
from alchemiser.books.kinds import RunStatus
from alchemiser.books.models import Run
from alchemiser.books.reconcile import ReconcileResult
from alchemiser.books.retry import transact
from alchemiser.daemon import schedule
from alchemiser.daemon.health import health_app
from alchemiser.daemon.systemd import Notifier
from alchemiser.errors import KEYS_HELP, AlpacaKeysRejected, AlpacaUnreachable, UserError
from alchemiser.execution.errors import BrokerAuthError, BrokerError, TemporaryBrokerError
from alchemiser.execution.resume import settle_sent_orders
from alchemiser.logging import get_logger
from alchemiser.market_calendar import NEW_YORK, Session
from alchemiser.marketdata.commands import require_keys
from alchemiser.marketdata.refresh import refresh_bars
from alchemiser.notify import notify_problem, notify_run
from alchemiser.run.daily import DAILY, GateRefused, check_books, daily_run
from alchemiser.run.evaluation import parse_strategies
from alchemiser.run.services import Services, open_services
from alchemiser.settings import Settings

log = get_logger(__name__)

MISSED = "missed: the daemon was not running while the run could start"
INTERRUPTED = "interrupted: the daemon stopped during the run; the next start resumes it"
# A run that failed for a reason other than the gate (the broker or the database
# away) is tried again at the next checks, this many times in all.
ATTEMPTS = 3
# APScheduler warns each time a check is skipped because the last one still waits
# (behind a busy run's requests, within Alpaca's rate limit): expected, not a problem.
logging.getLogger("apscheduler").setLevel(logging.ERROR)
# A date job this close to where it should be is left alone (the offset jitters).
PLACEMENT_SLACK = timedelta(seconds=1)


def run_daemon(settings: Settings) -> None:
    """`alchemiser run`, until SIGTERM or SIGINT; everyday failures become a UserError."""
    require_keys(settings)

    async def serve(engine: AsyncEngine) -> None:
        await Daemon(settings, engine).serve()

    try:
        db.run(serve, db.database_url(settings), migrate=True)
    except BrokerAuthError as exc:
        raise AlpacaKeysRejected(f"Alpaca refused the keys ({exc.reason}): {KEYS_HELP}") from None
    except TemporaryBrokerError as exc:
        raise AlpacaUnreachable(f"Alpaca did not answer after retries: {exc}") from None
    except BrokerError as exc:
        raise UserError(f"Alpaca refused the daemon's start: {exc}") from None


class Daemon:
    def __init__(self, settings: Settings, engine: AsyncEngine) -> None:
        self.settings = settings
        self.engine = engine
        self.notifier = Notifier()
        self.stopping = asyncio.Event()
        self.scheduler = AsyncIOScheduler(timezone=UTC)
        self.services: Services | None = None
        self.sessions: list[Session] = []
        self.calendar_day: date | None = None  # the broker's day the calendar was read on
        self.run_task: asyncio.Task[None] | None = None
        self.running_day: date | None = None
        # What became of each day's run in this process: a day is run (or missed) once.
        self.days: dict[date, str] = {}
        self.attempts: dict[date, int] = {}
        self.next_run: datetime | None = None
        self.broker_seen_at: float | None = None  # time.monotonic() of the last clock read
        self.broker_problem: str | None = None
        self.reconciled: ReconcileResult | None = None
        self.reconciled_at: float | None = None
        self.bars_through: date | None = None  # the last overnight refresh's session
        self._tick_lock = asyncio.Lock()

    # --- start and stop ------------------------------------------------------------------

    async def serve(self) -> None:
        runner = await self._start_health()
        try:
            async with open_services(self.settings, self.engine) as services:
                self.services = services
                self._note_reconciled(await check_books(self.settings, services))
                self._handle_signals()
                self._start_scheduler()
                self.notifier.send("READY=1")
                log.info("daemon ready", health=self._health_address())
                watchdog = asyncio.create_task(self.notifier.watchdog(), name="watchdog")
                await self.stopping.wait()
                self.notifier.send("STOPPING=1")
                await self._stop()
                watchdog.cancel()
        finally:
            await runner.cleanup()
            self._release_signals()
        log.info("daemon stopped")

    async def _start_health(self) -> web.AppRunner:
        runner = web.AppRunner(health_app(self), access_log=None)
        await runner.setup()
        host, port = self.settings.daemon.health_host, self.settings.health_port
        try:
            await web.TCPSite(runner, host, port).start()
        except OSError as exc:
            await runner.cleanup()
            if exc.errno == errno.EADDRINUSE:
                raise UserError(
                    f"health port {port} on {host} is in use (another daemon?): set "
                    "health_port in the configuration or ALCHEMISER_HEALTH_PORT"
                ) from None
            raise UserError(f"cannot serve health checks on {host}:{port}: {exc}") from None
        self.health_runner = runner
        return runner

    def _health_address(self) -> str:
        return f"http://{self.settings.daemon.health_host}:{self.bound_port()}"

    def bound_port(self) -> int:
        """The health server's port (the configured one, or the one picked for port 0)."""
        for site in self.health_runner.sites:
            server = getattr(site, "_server", None)
            if server is not None and server.sockets:
                return int(server.sockets[0].getsockname()[1])
        return self.settings.health_port

    def _handle_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._signalled, sig)

    def _release_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)

    def _signalled(self, sig: signal.Signals) -> None:
        log.info("stopping", signal=sig.name, grace_seconds=self.settings.daemon.grace_seconds)
        self.stopping.set()

    def _start_scheduler(self) -> None:
        daemon = self.settings.daemon
        common: dict[str, Any] = {"max_instances": 1, "coalesce": True, "misfire_grace_time": None}
        self.scheduler.add_job(
            self._tick,
            IntervalTrigger(seconds=daemon.check_seconds),
            id="check",
            next_run_time=datetime.now(UTC),
            **common,
        )
        self.scheduler.add_job(
            self._recheck_books,
            IntervalTrigger(seconds=daemon.reconcile_max_age_seconds / 2),
            id="reconcile",
            **common,
        )
        self.scheduler.start()

    async def _stop(self) -> None:
        """No new orders; the walks get the grace period; then cancel, settle, record."""
        self.scheduler.shutdown(wait=False)
        services, task, day = self.services, self.run_task, self.running_day
        if services is None or task is None or task.done() or day is None:
            return
        services.booker.accepting_orders.clear()
        await asyncio.wait({task}, timeout=self.settings.daemon.grace_seconds)
        if task.done():
            return
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
        working = await settle_sent_orders(services.booker, services.broker)
        await self._record_interrupted(day)
        log.warning("run interrupted", trading_day=str(day), still_working=working)

    # --- the schedule --------------------------------------------------------------------

    async def _tick(self) -> None:
        async with self._tick_lock:
            now = await self._read_broker_time()
            if now is None or self.stopping.is_set():
                return
            today = schedule.today_slot(now, self.sessions, self.settings.schedule)
            upcoming = schedule.next_slot(now, self.sessions, self.settings.schedule, self.days)
            self.next_run = upcoming.at if upcoming else None
            if today is not None and today.day not in self.days and not self.running():
                due = schedule.due(now, today)
                if due == "run":
                    self._start_run(today.day)
                elif due == "missed":
                    await self._record_missed(today.day)
            if upcoming is not None:
                self._place("run", upcoming.at, now, self._tick)
            bars_at = schedule.next_daily(now, self.settings.daemon.bars_refresh_time)
            self._place("bars", bars_at, now, self._refresh_bars)

    async def _read_broker_time(self) -> datetime | None:
        """The broker's time (the offset is kept by Services), and its calendar around it."""
        assert self.services is not None
        try:
            now = await self.services.sync_clock()
            today = now.astimezone(NEW_YORK).date()
            if today != self.calendar_day:  # once a (broker) day, or when its clock jumps
                self.sessions = await self.services.broker.calendar(
                    today - schedule.CALENDAR_BEHIND, today + schedule.CALENDAR_AHEAD
                )
                self.calendar_day = today
        except BrokerError as exc:
            self.broker_problem = str(exc)
            log.warning("broker clock unreadable", reason=str(exc))
            return None
        self.broker_seen_at, self.broker_problem = time.monotonic(), None
        return now

    def _place(self, job_id: str, at: datetime, now: datetime, job: Any) -> None:
        """A date job at the broker's instant `at`, in local time (broker now ↔ local now)."""
        if at <= now:
            return
        local = datetime.now(UTC) + (at - now)
        placed = self.scheduler.get_job(job_id)
        if placed is not None and abs(placed.next_run_time - local) < PLACEMENT_SLACK:
            return
        self.scheduler.add_job(
            job, DateTrigger(run_date=local), id=job_id, replace_existing=True, coalesce=True
        )

    def running(self) -> bool:
        return self.run_task is not None and not self.run_task.done()

    # --- the run -------------------------------------------------------------------------

    def _start_run(self, day: date) -> None:
        self.days[day] = "running"
        self.running_day = day
        self.run_task = asyncio.create_task(self._run(day), name="daily-run")

    async def _run(self, day: date) -> None:
        assert self.services is not None
        log.info("daily run starting", trading_day=str(day))
        try:
            report = await daily_run(self.settings, self.services)
        except GateRefused as exc:
            self.days[day] = "refused"
            log.error("daily run refused", trading_day=str(day), reason=str(exc))
            await notify_problem(self.settings, f"the daily run of {day} traded nothing", str(exc))
            return
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            self.attempts[day] = self.attempts.get(day, 0) + 1
            if self.attempts[day] < ATTEMPTS:
                del self.days[day]  # tried again at the next check
            else:
                self.days[day] = "failed"
            log.exception("daily run failed", trading_day=str(day), attempt=self.attempts[day])
            await notify_problem(self.settings, f"the daily run of {day} failed", reason)
            return
        self.days[day] = report.status
        if report.reconciliation is not None:
            self._note_reconciled(report.reconciliation)
        log.info("daily run ended", trading_day=str(day), status=report.status)
        await notify_run(self.settings, report)  # never raises
        del report
        _give_back_memory()

    async def _record_missed(self, day: date) -> None:
        """A runs row says the day was missed, unless its run completed or failed already."""

        async def write(conn: AsyncConnection) -> bool:
            run = await ledger.start_run(conn, day, DAILY)
            if run.resumed and run.status in (RunStatus.COMPLETED, RunStatus.FAILED):
                return False
            await ledger.set_run_status(conn, run.id, RunStatus.FAILED, error=MISSED)
            return True

        recorded = await transact(self.engine, write)
        self.days[day] = "missed"
        if recorded:
            log.error("daily run missed", trading_day=str(day))
            await notify_problem(self.settings, f"the daily run of {day} was missed", MISSED)

    async def _record_interrupted(self, day: date) -> None:
        async def write(conn: AsyncConnection) -> None:
            await conn.execute(
                update(Run)
                .where(
                    Run.trading_day == day,
                    Run.kind == DAILY,
                    Run.status != RunStatus.COMPLETED,
                )
                .values(status=RunStatus.FAILED, error=INTERRUPTED)
            )

        await transact(self.engine, write)

    # --- the books and the bars ----------------------------------------------------------

    def _note_reconciled(self, result: ReconcileResult) -> None:
        self.reconciled, self.reconciled_at = result, time.monotonic()

    async def _recheck_books(self) -> None:
        if self.services is None or self.running():
            return
        try:
            self._note_reconciled(await check_books(self.settings, self.services))
        except Exception as exc:  # the next check tries again; /readyz shows the age
            log.warning("books not checked", reason=f"{type(exc).__name__}: {exc}")

    async def _refresh_bars(self) -> None:
        """Overnight: every configured strategy's bars up to the last closed session."""
        if self.services is None or self.running():
            return
        through = schedule.last_closed_session(self.services.now(), self.sessions)
        parsed = await parse_strategies(self.settings.strategies)
        tickers = sorted({t for s in parsed.strategies.values() for t in s.tickers})
        if through is None or not tickers:
            return
        try:
            report = await refresh_bars(
                self.engine,
                self.services.data,
                tickers,
                through=through,
                config=self.settings.marketdata,
            )
        except Exception as exc:  # the run's own incremental refresh catches up
            log.warning("bars not refreshed", reason=f"{type(exc).__name__}: {exc}")
            return
        self.bars_through = through
        log.info("bars refreshed", through=str(through), failed=len(report.failed))


def _give_back_memory() -> None:
    """After a run: collect its garbage and hand freed heap back to the OS (glibc), so
    the daemon idles small until the next day's run."""
    gc.collect()
    with suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6").malloc_trim(0)
