"""The daily run end to end: real Postgres, the simulator, the real alpaca-py clients."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from datetime import datetime
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.books import halts
from alchemiser.books.report import render_report
from alchemiser.market_calendar import NEW_YORK
from alchemiser.run.daily import GateRefused, RunReport, daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import RiskConfig, Settings
from alchemiser.sim import SimThread
from tests.run.conftest import settings_for

SATURDAY = datetime(2026, 11, 21, 12, 0, tzinfo=NEW_YORK)
PREFIX = "alch-20261118-"


async def run_once(settings: Settings, engine: AsyncEngine, **kwargs: object) -> RunReport:
    async with open_services(settings, engine) as services:
        return await daily_run(settings, services, **kwargs)  # type: ignore[arg-type]


def client_order_ids(sim: SimThread) -> list[str]:
    return sim.call(lambda s: [o.client_order_id for o in s.broker.orders.values()])


@pytest.fixture
def settings(sim: SimThread, db_url: str) -> Settings:
    return settings_for(sim, db_url)


async def test_a_run_trades_every_book_and_the_books_equal_the_account(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    report = await run_once(settings, engine)
    assert report.status == "completed"
    assert {sid: o.error for sid, o in report.outcomes.items()} == dict.fromkeys(
        ("risk-parity", "spy-trend", "tqqq-rsi-guard")
    )
    assert report.execution is not None and report.execution.buys
    assert all(o.result.outcome == "filled" for o in report.execution.buys)
    assert report.reconciliation is not None and report.reconciliation.ok
    ids = client_order_ids(sim)
    assert ids and all(i.startswith(PREFIX + "daily-") for i in ids)
    assert max(Counter(ids).values()) == 1
    async with engine.connect() as conn:
        status = await conn.scalar(
            text("SELECT status FROM runs WHERE id = :i"), {"i": report.run_id}
        )
    assert status == "completed"
    await assert_execution_quality(engine, report)


async def assert_execution_quality(engine: AsyncEngine, report: RunReport) -> None:
    """One row per walk, measured from the quote its first order was priced from."""
    async with engine.connect() as conn:
        rows = (await conn.execute(text("SELECT * FROM execution_quality"))).mappings().all()
        firsts = (
            await conn.execute(
                text(
                    "SELECT DISTINCT ON (symbol, side) symbol, side, quote_bid, quote_ask,"
                    " sent_at FROM broker_orders ORDER BY symbol, side, step"
                )
            )
        ).mappings()
        first = {(r["symbol"], r["side"]): r for r in firsts}
    assert report.execution is not None
    walked = {(o.order.symbol, o.order.side) for o in report.execution.buys}
    assert {(r["symbol"], r["side"]) for r in rows} == walked
    for row in rows:
        quote = first[(row["symbol"], row["side"])]
        assert quote["quote_bid"] is not None and quote["sent_at"] is not None
        mid = (quote["quote_bid"] + quote["quote_ask"]) / 2
        assert row["arrival_mid"] == round(mid, 6)
        assert row["spread_bps"] == round(
            10000 * (quote["quote_ask"] - quote["quote_bid"]) / mid, 2
        )
        sign = 1 if row["side"] == "buy" else -1
        paid = 10000 * sign * (row["average_price"] - mid) / mid
        assert abs(row["slippage_bps"] - paid) < Decimal("0.01"), row
        assert row["last_status"] == "filled" and row["time_to_fill"] is not None
    shown = await render_report(engine, "execution", fmt="json")
    assert {(r["symbol"], r["side"]) for r in json.loads(shown)} == walked


async def test_a_second_run_the_same_day_sends_nothing(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    await run_once(settings, engine)
    sent = len(client_order_ids(sim))
    again = await run_once(settings, engine)
    assert again.status == "already completed"
    assert len(client_order_ids(sim)) == sent


async def test_a_dry_run_saves_the_plan_and_sends_nothing_then_the_run_trades_it(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    planned = await run_once(settings, engine, dry_run=True)
    assert planned.status == "planned (dry run)"
    assert planned.intents and planned.netted is not None and planned.netted.orders
    assert client_order_ids(sim) == []
    done = await run_once(settings, engine)
    assert done.status == "completed" and done.resumed
    assert done.intents == planned.intents  # the plan is written once
    assert done.reconciliation is not None and done.reconciliation.ok


async def test_a_closed_market_trades_nothing(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    sim.set_clock(now=SATURDAY)
    with pytest.raises(GateRefused, match="market is closed"):
        await run_once(settings, engine)
    assert client_order_ids(sim) == []


async def test_books_that_disagree_with_the_broker_trade_nothing(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    await run_once(settings, engine, dry_run=True)  # the ledger adopts the account
    sim.fund(1000)  # cash the books do not know of
    with pytest.raises(GateRefused, match=r"disagree.*cash"):
        await run_once(settings, engine, kind="second")
    assert client_order_ids(sim) == []


async def test_the_fees_of_a_day_with_sells_are_booked_before_the_next_run(
    settings: Settings, engine: AsyncEngine, sim: SimThread, db_url: str
) -> None:
    await run_once(settings, engine)
    sim.set_clock(now=datetime(2026, 11, 19, 11, 0, tzinfo=NEW_YORK))
    fewer = settings_for(sim, db_url, strategies=settings.strategies[:2])  # one book is sold
    sold = await run_once(fewer, engine)
    assert sold.execution is not None and sold.execution.sells
    sim.set_clock(now=datetime(2026, 11, 20, 11, 0, tzinfo=NEW_YORK))  # fees posted at the close
    after = await run_once(fewer, engine)
    assert after.status == "completed"  # the gate's reconciliation passed, to the cent
    async with engine.connect() as conn:
        fees = await conn.scalar(text("SELECT sum(amount) FROM cash_entries WHERE kind = 'fee'"))
    assert fees is not None and fees < 0


async def test_the_kill_switch_refuses_the_run_and_stops_orders_already_walking(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    async with engine.begin() as conn:
        await halts.halt(conn, reason="going on holiday")
    with pytest.raises(GateRefused, match="going on holiday"):
        await run_once(settings, engine)
    assert client_order_ids(sim) == []
    async with engine.begin() as conn:
        assert await halts.resume(conn)
    sim.configure(auto_fill=False)  # orders rest: the walks are still working

    async def halt_when_an_order_is_out() -> None:
        for _ in range(6000):
            if client_order_ids(sim):
                break
            await asyncio.sleep(0.01)
        async with engine.begin() as conn:
            await halts.halt(conn)

    halting = asyncio.create_task(halt_when_an_order_is_out())
    report = await asyncio.wait_for(run_once(settings, engine), 60)
    await halting
    assert report.execution is not None
    outcomes = {o.result.outcome for o in report.execution.buys}
    assert outcomes == {"rejected"}, report.execution.buys
    statuses = sim.call(lambda s: [o.status for o in s.broker.orders.values()])
    assert not any(s in ("new", "pending_new", "accepted") for s in statuses)


async def test_a_halted_strategy_holds_its_book_and_the_others_trade(
    settings: Settings, engine: AsyncEngine, sim: SimThread
) -> None:
    async with engine.begin() as conn:
        await halts.halt(conn, "spy-trend", "reviewing it")
    report = await run_once(settings, engine)
    assert report.status == "completed"
    assert report.outcomes["spy-trend"].error == "halted (reviewing it)"
    assert not any(i.strategy_id == "spy-trend" for i in report.intents)
    assert any(i.strategy_id == "risk-parity" for i in report.intents)


async def test_a_plan_over_the_risk_limits_is_not_traded(
    sim: SimThread, db_url: str, engine: AsyncEngine
) -> None:
    tight = settings_for(sim, db_url, risk=RiskConfig(max_run_traded_share=Decimal("0.1")))
    with pytest.raises(GateRefused, match="max_run_traded_share"):
        await run_once(tight, engine)
    assert client_order_ids(sim) == []
    limit = Decimal(10_000)
    small = settings_for(sim, db_url, risk=RiskConfig(max_order_value=limit))
    report = await run_once(small, engine, kind="small")
    assert report.execution is not None
    buys = report.execution.buys
    too_big = [o for o in buys if o.order.quantity * o.order.reference_price > limit]
    assert too_big and all(o.result.outcome == "rejected" for o in too_big)
    assert all("max_order_value" in (o.result.reason or "") for o in too_big)
    sent = {cid.split("-")[3] for cid in client_order_ids(sim)}
    assert sent == {o.order.symbol for o in buys if o not in too_big}
