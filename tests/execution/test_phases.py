"""A run's two phases on a real ledger and the simulator: crosses, sells, then buys."""

from __future__ import annotations

import asyncio
import contextlib
import gc
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.planner import Intent
from alchemiser.books.reconcile import reconcile
from alchemiser.execution.booking import Booker
from alchemiser.execution.broker import Broker
from alchemiser.execution.phases import Desk, execute
from alchemiser.execution.pricing import Quote
from alchemiser.execution.quotes import latest_quote
from alchemiser.execution.resume import settle_sent_orders
from alchemiser.execution.stream import TradeEvent, TradeStream
from alchemiser.execution.walk import WalkConfig, WalkRouter
from alchemiser.execution.watchdog import watching
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.settings import ExecutionConfig, MarketDataConfig
from alchemiser.sim import SimThread
from tests.books.harness import strategy
from tests.execution.conftest import alpaca_config
from tests.sim.conftest import WAIT_S

DAY = date(2026, 11, 18)
STEPS = (Decimal("0.75"), Decimal("0.85"), Decimal("0.95"))
FAST = WalkConfig(STEPS, 0.1, confirm_timeout_seconds=2.0, quote_max_age=timedelta(minutes=5))
TOLERANCE = Decimal("0.01")
BOOKS = [strategy("alpha", "30000"), strategy("beta", "30000"), strategy("gamma", "30000")]


class Wiring:
    def __init__(self, engine: AsyncEngine, broker: Broker, sim: SimThread) -> None:
        self.engine = engine
        self.booker = Booker(engine)
        self.broker = broker
        self.sim = sim
        self.router = WalkRouter()
        config = alpaca_config(sim)
        self.data = DataClient(config, MarketDataConfig(max_retries=2, retry_backoff_seconds=0.01))
        self.stream = TradeStream(config, self.on_event, self.on_connected)
        self.offset = sim.call(lambda s: s.clock.now()) - datetime.now(UTC)
        self.fractionable: frozenset[str] = frozenset({"SPY", "QQQ", "TLT"})

    async def on_event(self, event: TradeEvent) -> None:
        await self.booker.event(event)  # first the books, then the walk (as the run does)
        await self.router.on_event(event)

    async def on_connected(self) -> None:
        await self.booker.catch_up(self.broker, datetime(2026, 11, 18, tzinfo=UTC))

    def desk(self) -> Desk:
        return Desk(
            engine=self.engine,
            booker=self.booker,
            broker=self.broker,
            router=self.router,
            quote=lambda symbol: latest_quote(self.data, symbol),
            config=FAST,
            now=lambda: datetime.now(UTC) + self.offset,
            fractionable=self.fractionable,
            buy_headroom=Decimal("0.005"),
        )

    async def plan(self, kind: str, intents: list[tuple[str, str, str, int]]) -> int:
        """Start a run and save its plan: (book, symbol, side, quantity) at the quote's mid."""
        async with self.engine.begin() as conn:
            run = await ledger.start_run(conn, DAY, kind)
            rows = []
            for book, symbol, side, qty in intents:
                quote = await latest_quote(self.data, symbol)
                mid = ((quote.bid + quote.ask) / 2).quantize(Decimal("0.01"))
                rows.append(Intent(book, symbol, side, Decimal(qty), mid, "target"))  # type: ignore[arg-type]
            await ledger.record_plan(conn, run.id, rows, ledger.input_hash(kind))
        return run.id

    async def reconciled(self) -> bool:
        account = await self.broker.account()
        positions = {p.symbol: p.qty for p in await self.broker.positions()}
        async with self.engine.begin() as conn:
            result = await reconcile(conn, positions, account.cash, TOLERANCE)
        return result.ok


@pytest.fixture
async def wiring(engine: AsyncEngine, broker: Broker, sim: SimThread) -> AsyncIterator[Wiring]:
    wired = Wiring(engine, broker, sim)
    account = await broker.account()
    async with engine.begin() as conn:
        await ledger.open_account(conn, account.cash, {})
        await ledger.sync_strategies(conn, BOOKS, account.equity)
    wired.stream.start()
    await wired.stream.connected.wait()
    yield wired
    await wired.stream.stop()


def sim_orders(sim: SimThread) -> list[tuple[str, str, float, float | None]]:
    """(side, symbol, created_at, ended_at) of every order at the broker."""
    return sim.call(
        lambda s: [
            (o.side, o.symbol, o.created_at, o.filled_at or o.canceled_at or o.expired_at)
            for o in s.broker.orders.values()
        ]
    )


async def test_sells_all_end_before_any_buy_and_the_books_equal_the_account(
    wiring: Wiring, sim: SimThread
) -> None:
    first = await wiring.plan(
        "open",
        [("alpha", "SPY", "buy", 10), ("beta", "QQQ", "buy", 4), ("gamma", "TLT", "buy", 6)],
    )
    opened = await execute(wiring.desk(), first)
    assert [o.result.outcome for o in opened.buys] == ["filled"] * 3
    assert await wiring.reconciled()
    before = len(sim_orders(sim))

    second = await wiring.plan(
        "rotate",
        [
            ("alpha", "SPY", "sell", 10),
            ("alpha", "TLT", "buy", 5),
            ("beta", "QQQ", "sell", 4),
            ("gamma", "TLT", "sell", 3),
        ],
    )
    rotated = await execute(wiring.desk(), second)
    assert rotated.crosses == 1  # TLT: gamma's 3 to alpha inside the house
    assert {(o.order.symbol, o.order.quantity) for o in rotated.sells} == {
        ("SPY", Decimal(10)),
        ("QQQ", Decimal(4)),
    }
    assert [(o.order.symbol, o.order.quantity) for o in rotated.buys] == [("TLT", Decimal(2))]
    orders = sim_orders(sim)[before:]
    last_sell_end = max(end for side, _, _, end in orders if side == "sell" and end)
    first_buy = min(created for side, _, created, _ in orders if side == "buy")
    assert last_sell_end <= first_buy
    assert await wiring.reconciled()
    async with wiring.engine.begin() as conn:
        books = await ledger.load_books(conn)
    assert books["alpha"].positions == {"TLT": Decimal(5)}
    assert books["beta"].positions == {}
    assert books["gamma"].positions == {"TLT": Decimal(3)}


async def test_running_the_phases_again_sends_nothing_new(wiring: Wiring, sim: SimThread) -> None:
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 3)])
    await execute(wiring.desk(), run_id)
    sent = len(sim_orders(sim))
    again = await execute(wiring.desk(), run_id)  # a resume after the run had finished
    assert again.sells == () and again.buys == ()
    assert len(sim_orders(sim)) == sent
    assert await wiring.reconciled()


async def test_fills_missed_while_the_stream_is_down_are_read_back_and_booked_once(
    wiring: Wiring, sim: SimThread
) -> None:
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 10), ("beta", "QQQ", "buy", 4)])
    sim.stream_down(3.0)  # every update of the phase is lost; Alpaca never replays them
    done = await execute(wiring.desk(), run_id)
    assert [o.result.outcome for o in done.buys] == ["filled", "filled"]
    assert await wiring.reconciled()
    await until_connected(wiring)  # the catch-up after the reconnect books nothing new
    assert await wiring.reconciled()


@pytest.mark.parametrize("fault", ["duplicate", "reorder"])
async def test_duplicated_and_reordered_updates_are_booked_once(
    wiring: Wiring, sim: SimThread, fault: str
) -> None:
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 10), ("gamma", "TLT", "buy", 6)])
    sim.stream_fault(fault, count=40)
    done = await execute(wiring.desk(), run_id)
    assert [o.result.outcome for o in done.buys] == ["filled", "filled"]
    assert await wiring.reconciled()
    async with wiring.engine.begin() as conn:
        books = await ledger.load_books(conn)
    assert books["alpha"].positions == {"SPY": Decimal(10)}
    assert books["gamma"].positions == {"TLT": Decimal(6)}


async def until_connected(wiring: Wiring) -> None:
    await until(lambda: wiring.stream.connections >= 2)


async def test_a_silent_stream_is_noticed_by_the_catch_up_and_reconnected(
    wiring: Wiring, sim: SimThread
) -> None:
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 3)])
    sim.stream_silent()  # half-open: the connection stays up and says nothing
    since = datetime(2026, 11, 18, tzinfo=UTC)
    async with watching(wiring.booker, wiring.broker, wiring.stream, lambda: since, 0.2):
        done = await execute(wiring.desk(), run_id)  # the walk polls its order over REST
        await until(lambda: wiring.stream.connections >= 2)
    assert [o.result.outcome for o in done.buys] == ["filled"]
    assert await wiring.reconciled()


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT_S / 0.01)):
        if predicate():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition not reached")


async def test_buys_are_scaled_to_the_cash_the_sells_really_raised_never_to_margin(
    wiring: Wiring, sim: SimThread
) -> None:
    sim.set_quote("SPY", bid="100.00", ask="100.01")
    sim.set_quote("QQQ", bid="100.00", ask="100.01")
    await execute(wiring.desk(), await wiring.plan("open", [("alpha", "SPY", "buy", 10)]))
    # Sell the SPY and put everything into QQQ, planned at today's prices...
    run_id = await wiring.plan(
        "rotate", [("alpha", "SPY", "sell", 10), ("alpha", "QQQ", "buy", 300)]
    )
    sim.set_quote("SPY", bid="95.00", ask="95.01")  # ...but the sell fills 5 % lower
    account = await wiring.broker.account()
    assert account.buying_power > account.cash  # a margin account: sizing from it overspends
    done = await execute(wiring.desk(), run_id)
    [buy] = done.buys
    assert buy.result.outcome == "filled"  # not rejected for buying power
    assert buy.order.quantity < Decimal(300)  # scaled to the cash raised
    async with wiring.engine.begin() as conn:
        books = await ledger.load_books(conn)
    assert books["alpha"].cash >= 0
    assert books["alpha"].positions == {"QQQ": buy.order.quantity}
    assert await wiring.reconciled()


async def test_no_full_collection_stops_the_loop_while_orders_are_worked(wiring: Wiring) -> None:
    """Everything alive when the phases start is set aside from the collector (`gc.freeze`):
    a full collection over it stopped the loop for ~300 ms mid-walk. Released after."""
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 3)])
    desk = wiring.desk()
    set_aside: list[int] = []

    async def quote(symbol: str) -> Quote:
        set_aside.append(gc.get_freeze_count())
        return await desk.quote(symbol)

    await execute(replace(desk, quote=quote), run_id)
    assert set_aside and min(set_aside) > 10_000  # the whole process, not a handful
    assert gc.get_freeze_count() == 0


async def test_an_order_still_on_the_wire_when_a_run_stops_is_settled_not_called_unsent(
    wiring: Wiring, sim: SimThread
) -> None:
    # The daemon's stop: the run is cancelled while its POST is slow on the wire, and the
    # run's orders are settled at once. The POST reaches the broker after the cancel.
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 5)])
    sim.set_faults(action="delay", method="POST", path="/v2/orders", hang_ms=1500)
    run = asyncio.create_task(execute(wiring.desk(), run_id))
    await until(lambda: not sim.call(lambda s: s.broker.faults.http))  # the POST arrived
    assert not sim_orders(sim)  # and is held back
    run.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await run
    assert await settle_sent_orders(wiring.booker, wiring.broker) == []
    await wiring.booker.flush()
    await asyncio.sleep(1.5)  # had the POST still been on the wire, it has landed now
    open_at_broker = sim.call(lambda s: [o.id for o in s.broker.orders.values() if o.is_open])
    assert open_at_broker == []
    async with wiring.engine.begin() as conn:
        statuses = (await conn.execute(text("SELECT status FROM broker_orders"))).scalars()
        assert "rejected" not in list(statuses)
    assert await wiring.reconciled()


async def test_the_phases_start_without_a_full_collection_of_the_process(wiring: Wiring) -> None:
    """Setting the process aside must not first collect all of it: that stopped the
    loop ~150 ms at the start of every run (the walks' lag probe could not see it)."""
    run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 3)])
    full: list[int] = []

    def watch(phase: str, info: dict[str, int]) -> None:
        if phase == "start" and info["generation"] == 2:
            full.append(gc.get_freeze_count())

    gc.callbacks.append(watch)
    try:
        await execute(wiring.desk(), run_id)
    finally:
        gc.callbacks.remove(watch)
    assert not full or full[0] > 0, "a full collection of everything the process holds"


async def test_an_order_whose_post_timed_out_is_looked_for_again_before_called_unsent(
    wiring: Wiring, sim: SimThread
) -> None:
    # The submit's read times out (0.3 s) and is not retried; the broker handles the POST
    # later (0.6 s), after the walk gave up and the orders are settled.
    impatient = Broker(
        alpaca_config(sim), ExecutionConfig(order_timeout_seconds=0.3, max_retries=0)
    )
    wiring.broker = impatient
    try:
        run_id = await wiring.plan("open", [("alpha", "SPY", "buy", 5)])
        sim.set_faults(action="delay", method="POST", path="/v2/orders", hang_ms=600)
        done = await execute(wiring.desk(), run_id)
        assert [o.result.outcome for o in done.buys] == ["error"]
        assert await settle_sent_orders(wiring.booker, impatient) == []
        await wiring.booker.flush()
        open_at_broker = sim.call(lambda s: [o.id for o in s.broker.orders.values() if o.is_open])
        assert open_at_broker == []
        async with wiring.engine.begin() as conn:
            statuses = (await conn.execute(text("SELECT status FROM broker_orders"))).scalars()
            assert "rejected" not in list(statuses)
        assert await wiring.reconciled()
    finally:
        impatient.close()
