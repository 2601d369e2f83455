"""The daily run end to end: real Postgres, the simulator, the real alpaca-py clients."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.market_calendar import NEW_YORK
from alchemiser.run.daily import GateRefused, RunReport, daily_run
from alchemiser.run.services import open_services
from alchemiser.settings import Settings
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
