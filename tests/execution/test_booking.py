"""The execution layer's writes on a real Postgres: group commit, the kill switch, bookings."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import halts, ledger
from alchemiser.books.group_commit import GroupCommit, PostedWriteFailed
from alchemiser.books.planner import Intent
from alchemiser.execution.booking import Booker, LedgerLink, _progress_of
from alchemiser.execution.broker import OrderSnapshot
from alchemiser.execution.errors import KillSwitch
from alchemiser.execution.pricing import Quote
from alchemiser.execution.walk import StepOrder
from alchemiser.settings import StrategyConfig

DAY = date(2026, 11, 18)
AT = datetime(2026, 11, 18, 20, 30, tzinfo=UTC)
TICKERS = [f"T{i:02d}" for i in range(30)]


def count_transactions(engine: AsyncEngine) -> list[int]:
    count = [0]

    def begin(*_: object) -> None:
        count[0] += 1

    event.listen(engine.sync_engine, "begin", begin)
    return count


async def a_run(engine: AsyncEngine) -> int:
    async with engine.begin() as conn:
        await ledger.open_account(conn, Decimal(1_000_000), {})
        book = StrategyConfig(
            id="b", file=Path("b.clj"), allocation=Decimal(0), capital=Decimal(100_000)
        )
        await ledger.sync_strategies(conn, [book], Decimal(1_000_000))
        run = await ledger.start_run(conn, DAY, "daily")
        intents = [Intent("b", t, "buy", Decimal(1), Decimal(10), "test") for t in TICKERS]
        await ledger.record_plan(conn, run.id, intents, "test")
    return run.id


def step(symbol: str, price: str = "10.00") -> StepOrder:
    quote = Quote(Decimal("9.99"), Decimal("10.01"), AT)
    return StepOrder(symbol, "buy", Decimal(1), Decimal(price), quote=quote, at=AT)


async def test_walks_stepping_together_record_their_orders_in_one_transaction(
    engine: AsyncEngine,
) -> None:
    link = LedgerLink(Booker(engine), await a_run(engine), TICKERS)
    transactions = count_transactions(engine)
    first = await asyncio.gather(*(link.record(step(t)) for t in TICKERS))
    assert transactions[0] <= 2  # the first alone, the 29 that came meanwhile together
    assert first == [f"alch-20261118-daily-{t}-buy-0" for t in TICKERS]
    second = await asyncio.gather(*(link.record(step(t, "10.01")) for t in TICKERS))
    assert second == [f"alch-20261118-daily-{t}-buy-1" for t in TICKERS]
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT count(*), count(DISTINCT client_order_id), min(quote_bid),"
                    " max(quote_ask), min(sent_at) FROM broker_orders"
                )
            )
        ).one()
        counted = await conn.scalar(text("SELECT broker_orders FROM runs"))
    assert rows == (60, 60, Decimal("9.99"), Decimal("10.01"), AT)
    assert counted == 60


async def test_the_kill_switch_refuses_every_order_of_a_batch(engine: AsyncEngine) -> None:
    link = LedgerLink(Booker(engine), await a_run(engine), TICKERS)
    await link.record(step("T00"))
    async with engine.begin() as conn:
        await halts.halt(conn)
    results = await asyncio.gather(
        *(link.record(step(t)) for t in TICKERS[1:]), return_exceptions=True
    )
    assert all(isinstance(r, KillSwitch) for r in results), results
    async with engine.connect() as conn:
        assert await conn.scalar(text("SELECT count(*) FROM broker_orders")) == 1


def snapshot(cid: str, status: str, filled: str, price: str | None = None) -> OrderSnapshot:
    return OrderSnapshot(
        id=f"alpaca-{cid}",
        client_order_id=cid,
        symbol=cid.split("-")[3],
        side="buy",
        status=status,
        qty=Decimal(1),
        filled_qty=Decimal(filled),
        filled_avg_price=Decimal(price) if price else None,
        limit_price=Decimal("10.00"),
        replaces=None,
        replaced_by=None,
        updated_at=AT,
    )


async def test_fills_and_statuses_reported_at_once_are_booked_once_statuses_only_forward(
    engine: AsyncEngine,
) -> None:
    booker = Booker(engine)
    link = LedgerLink(booker, await a_run(engine), TICKERS)
    ids = await asyncio.gather(*(link.record(step(t)) for t in TICKERS[:4]))
    filled, replaced, late, twice = ids
    for order in (
        snapshot(filled, "filled", "1", "10.00"),
        snapshot(replaced, "replaced", "0"),
        snapshot(late, "canceled", "0"),
        snapshot(late, "new", "0"),  # an older snapshot after the final one
        snapshot(twice, "partially_filled", "0.5", "10.00"),
    ):
        await booker.progress(order)
    await booker.progress(snapshot(twice, "partially_filled", "0.5", "10.00"))  # a repeat
    await booker.flush()
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT client_order_id, status, filled_quantity FROM broker_orders")
        )
        found = {cid: (status, qty) for cid, status, qty in rows}
        booked = await conn.scalar(text("SELECT sum(quantity) FROM book_fills"))
    assert found == {
        filled: ("filled", Decimal(1)),
        replaced: ("replaced", Decimal(0)),
        late: ("canceled", Decimal(0)),
        twice: ("partially_filled", Decimal("0.5")),
    }
    assert booked == Decimal("1.5")


async def test_a_final_status_with_more_filled_than_booked_books_the_fill_too(
    engine: AsyncEngine,
) -> None:
    """A status-only report must never make an order final without its fills (say the
    fill's own booking failed): the ledger's filled quantity decides, not the cache."""
    link = LedgerLink(Booker(engine), await a_run(engine), TICKERS)
    cid = await link.record(step("T00"))
    filled = snapshot(cid, "filled", "1", "10.00")
    async with engine.begin() as conn:
        await ledger.advance_orders(conn, [_progress_of(filled)])
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT status, filled_quantity FROM broker_orders"))).one()
        booked = await conn.scalar(text("SELECT sum(quantity) FROM book_fills"))
    assert row == ("filled", Decimal(1)) and booked == Decimal(1)


class Numbers:
    """A tiny table written through a group commit; writing 13 fails."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.failed: list[int] = []
        self.writer: GroupCommit[int, int] = GroupCommit(
            engine, self.write_many, "numbers", on_failure=lambda n, _: self.failed.append(n)
        )

    @staticmethod
    async def write_many(conn: AsyncConnection, numbers: Sequence[int]) -> list[int]:
        for n in numbers:
            if n == 13:
                raise ValueError("unlucky")
            await conn.execute(text("INSERT INTO numbers VALUES (:n)"), {"n": n})
        return [n * 2 for n in numbers]


@pytest.fixture
async def numbers(engine: AsyncEngine) -> Numbers:
    async with engine.begin() as conn:
        await conn.execute(text("CREATE TABLE numbers (n int PRIMARY KEY)"))
    return Numbers(engine)


async def stored(engine: AsyncEngine) -> list[int]:
    async with engine.connect() as conn:
        return list(await conn.scalars(text("SELECT n FROM numbers ORDER BY n")))


async def test_one_bad_item_fails_only_its_own_caller(
    engine: AsyncEngine, numbers: Numbers
) -> None:
    results = await asyncio.gather(
        *(numbers.writer.submit(n) for n in range(10, 16)), return_exceptions=True
    )
    assert [r if isinstance(r, int) else type(r) for r in results] == [
        20,
        22,
        24,
        ValueError,
        28,
        30,
    ]
    assert await stored(engine) == [10, 11, 12, 14, 15]


async def test_posted_writes_are_waited_for_by_flush_and_a_failure_is_reported(
    engine: AsyncEngine, numbers: Numbers
) -> None:
    for n in (1, 13, 2):
        numbers.writer.post(n)
    with pytest.raises(PostedWriteFailed, match="1 numbers write"):
        await numbers.writer.flush()  # whoever reads next must know a write is missing
    assert await stored(engine) == [1, 2]
    assert numbers.failed == [13]
    numbers.writer.post(3)
    await numbers.writer.flush()  # reported once
    assert await stored(engine) == [1, 2, 3]
