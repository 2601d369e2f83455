"""The daily run, once, top to bottom (DESIGN.md, "The daily run").

    gate → books adopt the account → catch up → reconcile → the day's run row →
    data → evaluate → plan (saved once) → [dry run stops here] → settle what a crashed
    run sent → crosses, sells, buys → reconcile → journal

Each step is a function of its inputs plus the database, so running the whole
recipe again after a crash converges: the run row is found again, its plan is read
back, its orders are settled by client order id, and only the remaining work trades.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import polars as pl
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.activities import BOOKED_TYPES
from alchemiser.books.halts import EVERYTHING, halts
from alchemiser.books.kinds import RunStatus
from alchemiser.books.models import Run
from alchemiser.books.netting import Netted
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import ReconcileResult, reconcile
from alchemiser.books.retry import transact
from alchemiser.execution.phases import Desk, Execution, execute
from alchemiser.execution.resume import settle_sent_orders
from alchemiser.execution.walk import WalkConfig
from alchemiser.execution.watchdog import watching
from alchemiser.logging import get_logger
from alchemiser.market_calendar import NEW_YORK
from alchemiser.marketdata.prices import fetch_today_prices
from alchemiser.marketdata.run import RunData, prepare_run_data
from alchemiser.run.evaluation import Outcome, Parsed, strategy_workers
from alchemiser.run.planning import plan_run
from alchemiser.run.services import Services
from alchemiser.settings import Settings

log = get_logger(__name__)

DAILY = "daily"
RUN_LOCK = "alchemiser-daily-run"  # one run at a time per database, whoever starts it
QUOTE_MAX_AGE = timedelta(minutes=2)
# No order is sent this close to the close: a DAY order would fill at tomorrow's open.
CLOSE_MARGIN = timedelta(minutes=1)
# Fees post after the close and dividends days later; older activities were booked already.
ACTIVITIES_LOOKBACK = timedelta(days=30)


class GateRefused(Exception):
    """The run may not trade: the reason says what to fix."""


@dataclass
class RunReport:
    trading_day: date
    run_id: int | None = None
    status: str = "refused"
    resumed: bool = False
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    intents: list[Intent] = field(default_factory=list)
    netted: Netted | None = None
    execution: Execution | None = None
    reconciliation: ReconcileResult | None = None
    timings: dict[str, float] = field(default_factory=dict)


async def daily_run(
    settings: Settings, services: Services, *, kind: str = DAILY, dry_run: bool = False
) -> RunReport:
    engine = services.engine
    as_of = (await services.sync_clock()).astimezone(NEW_YORK).date()
    report = RunReport(as_of)
    started = time.monotonic()
    async with _run_lock(engine):
        close = await _gate_market_open(services)
        halted = await transact(engine, halts)
        if EVERYTHING in halted:
            raise GateRefused(
                f"trading is halted ({halted[EVERYTHING] or 'alchemiser halt'}); "
                "`alchemiser resume` lifts it"
            )
        await _adopt_account(services)
        await services.booker.catch_up(services.broker, services.start_of_day())
        broker_now = services.now()
        run = await transact(
            engine, lambda c: ledger.start_run(c, as_of, kind, broker_started_at=broker_now)
        )
        report.run_id, report.resumed = run.id, run.resumed
        if run.status == RunStatus.COMPLETED:
            report.status = "already completed"
            return report
        await _settle_earlier_orders(services, run.id)
        await _book_activities(services)
        await _gate_reconciled(services, settings, run.id)
        report.timings["gated"] = time.monotonic() - started
        async with strategy_workers(settings.strategies) as workers:
            parsed = await workers.parse()
            report.timings["parsed"] = time.monotonic() - started
            data = await _market_data(services, parsed, as_of, settings)
            report.timings["data"] = time.monotonic() - started
            report.outcomes = await workers.evaluate(data)
        for sid in set(halted) & set(report.outcomes):  # `alchemiser halt SID`: the book holds
            report.outcomes[sid] = Outcome(error=f"halted ({halted[sid] or 'alchemiser halt'})")
        report.timings["evaluated"] = time.monotonic() - started
        log.info(
            "strategies evaluated",
            outcomes={s: o.error or o.weights for s, o in report.outcomes.items()},
        )
        fractionable = await _plan(settings, services, report, data, parsed)
        report.timings["planned"] = time.monotonic() - started
        log.info("plan saved", intents=len(report.intents))
        await _check_run_size(settings, services, report)
        if dry_run:
            report.status = "planned (dry run)"
            return report
        await _set_status(engine, run.id, RunStatus.EXECUTING)
        async with watching(
            services.booker,
            services.broker,
            services.stream,
            services.start_of_day,
            settings.execution.catch_up_interval_seconds,
        ):
            desk = _desk(settings, services, fractionable, close - CLOSE_MARGIN)
            report.execution = await execute(desk, run.id)
        report.timings["executed"] = time.monotonic() - started
        report.reconciliation = await _reconcile(services, settings, run.id)
        await _set_status(engine, run.id, RunStatus.COMPLETED, report.timings, finished=True)
        report.status = "completed"
    return report


async def check_books(settings: Settings, services: Services) -> ReconcileResult:
    """The gate's reconciliation without a run (the daemon's start-up and health checks)."""
    await _adopt_account(services)
    await services.booker.catch_up(services.broker, services.start_of_day())
    await _book_activities(services)
    return await _reconcile(services, settings, None)


# --- the gate ------------------------------------------------------------------------------


@asynccontextmanager
async def _run_lock(engine: AsyncEngine) -> AsyncIterator[None]:
    """A session-level advisory lock: a second `trade-now` (or the daemon) is refused."""
    async with engine.connect() as conn:
        held = await conn.scalar(text("SELECT pg_try_advisory_lock(hashtext(:k))"), {"k": RUN_LOCK})
        await conn.commit()
        if not held:
            raise GateRefused("another run is in progress on this database; try again later")
        try:
            yield
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": RUN_LOCK})
            await conn.commit()


async def _gate_market_open(services: Services) -> datetime:
    """The session's close, when the market is open now."""
    clock = await services.broker.clock()
    if not clock["is_open"]:
        raise GateRefused(f"the market is closed (next open {clock['next_open']})")
    return datetime.fromisoformat(str(clock["next_close"]).replace("Z", "+00:00"))


async def _settle_earlier_orders(services: Services, run_id: int) -> None:
    """Orders an interrupted run left: found by client order id, cancelled, booked."""
    working = await settle_sent_orders(services.booker, services.broker)
    if working:
        error = f"orders of an interrupted run are still working at the broker: {working}"
        await _set_status(services.engine, run_id, RunStatus.FAILED, error=error)
        raise GateRefused(f"{error}; try again in a minute")


async def _adopt_account(services: Services) -> None:
    """On first start the whole account goes to `unallocated` (a no-op afterwards)."""
    account = await services.broker.account()
    positions = {p.symbol: (p.qty, p.avg_entry_price) for p in await services.broker.positions()}

    async def adopt(conn: AsyncConnection) -> None:
        await ledger.open_account(conn, account.cash, positions)

    await transact(services.engine, adopt)


async def _book_activities(services: Services) -> None:
    """Fees, dividends and splits the broker posted since the first run (once each)."""

    async def first_run_start(conn: AsyncConnection) -> datetime | None:
        # The first run adopted the account at its start: what came before is in the
        # opening balance. Broker time, like the activities' own.
        return await conn.scalar(select(func.min(Run.broker_started_at)))

    opening = await transact(services.engine, first_run_start)
    if opening is None:
        return
    after = max(opening, services.now() - ACTIVITIES_LOOKBACK)
    rows = await services.broker.activities(BOOKED_TYPES, after)
    if not rows:
        return
    fractionable = await services.broker.fractionable({str(r["symbol"]) for r in rows})

    async def book(conn: AsyncConnection) -> list[str]:
        return await ledger.book_activities(conn, rows, fractionable=fractionable)

    booked = await transact(services.engine, book)
    if booked:
        log.info("account activities booked", activities=len(booked))


async def _gate_reconciled(services: Services, settings: Settings, run_id: int) -> None:
    check = await _reconcile(services, settings, run_id)
    if not check.ok:
        wrong = [d for d in check.differences if d.beyond_tolerance]
        shown = "; ".join(
            f"{d.symbol or 'cash'}: books {d.books}, broker {d.broker}" for d in wrong
        )
        error = f"the books and the broker disagree, nothing traded: {shown}"
        await _set_status(services.engine, run_id, RunStatus.FAILED, error=error)
        raise GateRefused(error)


async def _reconcile(services: Services, settings: Settings, run_id: int | None) -> ReconcileResult:
    await services.booker.flush()  # everything the stream reported is in the books first
    account = await services.broker.account()
    positions = {p.symbol: p.qty for p in await services.broker.positions()}

    async def check(conn: AsyncConnection) -> ReconcileResult:
        return await reconcile(
            conn, positions, account.cash, settings.risk.reconcile_tolerance, run_id=run_id
        )

    return await transact(services.engine, check)


# --- evaluate and plan ---------------------------------------------------------------------


async def _market_data(
    services: Services, parsed: Parsed, as_of: date, settings: Settings
) -> RunData:
    tickers = {sid: sorted(s.tickers) for sid, s in parsed.strategies.items()}
    return await prepare_run_data(services.engine, services.data, tickers, as_of, settings)


async def _plan(
    settings: Settings, services: Services, report: RunReport, data: RunData, parsed: Parsed
) -> frozenset[str]:
    """Plan every book and save the plan once; the symbols Alpaca trades in fractions."""
    assert report.run_id is not None
    run_id = report.run_id

    async def held(conn: AsyncConnection) -> set[str]:
        books = await ledger.load_books(conn)
        return {s for b in books.values() for s in b.positions}

    holdings = await transact(services.engine, held)
    prices = await _reference_prices(services, data, holdings)
    wanted = {t for o in report.outcomes.values() for t in o.weights} | holdings
    fractionable = frozenset(await services.broker.fractionable(wanted))
    account = await services.broker.account()

    async def write(conn: AsyncConnection) -> tuple[list[Intent], Netted]:
        await ledger.record_prices(conn, prices, run_id=run_id)
        intents = await plan_run(
            conn,
            run_id,
            settings,
            parsed.strategies,
            report.outcomes,
            prices=prices,
            fractionable=fractionable,
            as_of=data.as_of,
            equity=account.equity,
        )
        netted = await ledger.net_run(conn, run_id, fractionable=fractionable)
        await ledger.set_run_status(conn, run_id, RunStatus.PLANNED)
        return intents, netted

    report.intents, report.netted = await transact(services.engine, write)
    return fractionable


async def _reference_prices(
    services: Services, data: RunData, held: set[str]
) -> dict[str, Decimal]:
    """Today's live prices (or, in previous-close mode, each last close), held symbols too."""
    if data.today_prices:
        prices = {t: p.price for t, p in data.today_prices.items()}
    else:
        last = data.frame.sort("date").group_by("symbol").agg(pl.col("close").last())
        prices = {symbol: Decimal(str(close)) for symbol, close in last.iter_rows()}
    missing = sorted(held - set(prices))
    if missing:
        live = await fetch_today_prices(services.data, missing)
        prices.update({t: p.price for t, p in live.items()})
    return prices


async def _check_run_size(settings: Settings, services: Services, report: RunReport) -> None:
    """A plan that trades more of the account than `risk.max_run_traded_share` is refused."""
    assert report.netted is not None and report.run_id is not None
    traded = sum((o.quantity * o.reference_price for o in report.netted.orders), Decimal(0))
    equity = (await services.broker.account()).equity
    limit = settings.risk.max_run_traded_share
    if equity > 0 and traded > equity * limit:
        error = (
            f"the plan trades {traded:,.2f}, {traded / equity:.0%} of the account's "
            f"{equity:,.2f}, over risk.max_run_traded_share {limit}; nothing traded"
        )
        await _set_status(services.engine, report.run_id, RunStatus.FAILED, error=error)
        raise GateRefused(error)


# --- execute and journal -------------------------------------------------------------------


def _desk(
    settings: Settings, services: Services, fractionable: frozenset[str], deadline: datetime
) -> Desk:
    execution = settings.execution
    return Desk(
        engine=services.engine,
        booker=services.booker,
        broker=services.broker,
        router=services.router,
        quote=services.quote,
        config=WalkConfig(
            execution.step_fractions,
            execution.step_interval_seconds,
            confirm_timeout_seconds=execution.order_timeout_seconds,
            quote_max_age=QUOTE_MAX_AGE,
            deadline=deadline,
            last_trade_band=execution.last_trade_band,
        ),
        now=services.now,
        fractionable=fractionable,
        buy_headroom=settings.risk.slippage_allowance,
        max_order_value=settings.risk.max_order_value,
    )


async def _set_status(
    engine: AsyncEngine,
    run_id: int,
    status: str,
    timings: Mapping[str, float] | None = None,
    *,
    finished: bool = False,
    error: str | None = None,
) -> None:
    async def write(conn: AsyncConnection) -> None:
        await ledger.set_run_status(
            conn, run_id, status, timings=timings, finished=finished, error=error
        )

    await transact(engine, write)
