"""Walk-the-book against the simulator: real alpaca-py REST and trade-update stream.

The ledger's side is a recorder of the order snapshots the walk reports (booking
them is the ledger's own tested job); everything else is real.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from alchemiser.execution.broker import Broker, OrderRequest, OrderSnapshot
from alchemiser.execution.errors import TradingHalted
from alchemiser.execution.quotes import latest_quote
from alchemiser.execution.stream import TradeStream
from alchemiser.execution.walk import (
    StepOrder,
    Walk,
    WalkConfig,
    WalkPlan,
    WalkResult,
    WalkRouter,
)
from alchemiser.market_calendar import NEW_YORK
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.settings import MarketDataConfig
from alchemiser.sim import SimThread
from tests.execution.conftest import alpaca_config
from tests.sim.conftest import FILL_WAIT_SCALE, WAIT_S

STEPS = (Decimal("0.75"), Decimal("0.85"), Decimal("0.95"))
FAST = WalkConfig(STEPS, 0.15, confirm_timeout_seconds=2.0, quote_max_age=timedelta(minutes=5))
CLOSE = datetime(2026, 11, 18, 16, 0, 1, tzinfo=NEW_YORK)
POLL_S = 0.01
RACE_WINDOW_S = 0.5  # how long a replace stays pending in the race test


class RecordingLedger:
    """The walk's side of the ledger, recorded (the real one is tested with the run)."""

    def __init__(self) -> None:
        self.recorded: list[tuple[str, StepOrder]] = []
        self.progressed: list[OrderSnapshot] = []
        self.rejections: list[tuple[str, str]] = []

    async def record(self, order: StepOrder) -> str:
        client_order_id = f"walk-{order.symbol}-{order.side}-{len(self.recorded) + 1}"
        self.recorded.append((client_order_id, order))
        return client_order_id

    async def progress(self, order: OrderSnapshot) -> None:
        self.progressed.append(order)

    async def rejected(self, client_order_id: str, reason: str) -> None:
        self.rejections.append((client_order_id, reason))


@dataclass
class Desk:
    """What a walk needs, wired as the run wires it."""

    broker: Broker
    data: DataClient
    router: WalkRouter
    sim: SimThread
    ledger: RecordingLedger
    offset: timedelta

    @property
    def progress(self) -> list[OrderSnapshot]:
        return self.ledger.progressed

    def walk(self, plan: WalkPlan, config: WalkConfig = FAST) -> Walk:
        return Walk(
            plan,
            self.broker,
            quote=lambda symbol: latest_quote(self.data, symbol),
            ledger=self.ledger,
            config=config,
            now=lambda: datetime.now(UTC) + self.offset,
            router=self.router,
        )

    def broker_orders(self, symbol: str) -> list[tuple[str, str, Decimal, Decimal, Decimal]]:
        """(status, type, qty, filled, limit) of every order of `symbol`, oldest first."""
        return self.sim.call(
            lambda s: [
                (o.status, o.type, o.qty, o.filled_qty, o.limit_price)
                for o in sorted(s.broker.orders.values(), key=lambda o: o.created_at)
                if o.symbol == symbol
            ]
        )

    def live_id(self, symbol: str, order_type: str) -> str | None:
        return self.sim.call(
            lambda s: next(
                (
                    o.id
                    for o in s.broker.orders.values()
                    if o.symbol == symbol and o.type == order_type and o.status == "new"
                ),
                None,
            )
        )

    async def fill_market_order(self, symbol: str) -> None:
        """Scripted fills (auto_fill off): the walk's market order fills once it is live."""
        await until(lambda: self.live_id(symbol, "market") is not None)
        self.sim.fill(self.live_id(symbol, "market"))

    def position(self, symbol: str) -> Decimal:
        return self.sim.call(
            lambda s: s.broker.positions[symbol].qty if symbol in s.broker.positions else Decimal(0)
        )


@pytest.fixture
async def desk(sim: SimThread, broker: Broker) -> AsyncIterator[Desk]:
    config = alpaca_config(sim)
    data = DataClient(config, MarketDataConfig(max_retries=2, retry_backoff_seconds=0.01))
    router = WalkRouter()

    async def caught_up() -> None:
        return None

    stream = TradeStream(config, router.on_event, caught_up)
    stream.start()
    await stream.connected.wait()
    offset = sim.call(lambda s: s.clock.now()) - datetime.now(UTC)
    yield Desk(broker, data, router, sim, RecordingLedger(), offset)
    await stream.stop()


def wide(sim: SimThread, symbol: str) -> None:
    """A 40-cent spread held still: the steps price at 100.30, 100.34, 100.38 (buys),
    and nothing fills unless the test fills it."""
    sim.set_quote(symbol, bid="100.00", ask="100.40")
    sim.configure(auto_fill=False)


async def walk_with_market_fill(desk: Desk, walk: Walk) -> WalkResult:
    filler = asyncio.create_task(desk.fill_market_order(walk.plan.symbol))
    result = await asyncio.wait_for(walk.run(), WAIT_S)
    await asyncio.wait_for(filler, WAIT_S)
    return result


async def until(predicate: Callable[[], bool]) -> None:
    for _ in range(int(WAIT_S / POLL_S)):
        if predicate():
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError("condition not reached")


async def test_a_walk_that_fills_at_its_first_step_sends_one_order(
    desk: Desk, sim: SimThread
) -> None:
    sim.set_quote("SPY", bid="100.00", ask="100.01")  # one cent: 75 % is the ask
    result = await desk.walk(WalkPlan("SPY", "buy", Decimal(5), fractionable=True)).run()
    assert result.outcome == "filled", result
    assert result.filled == Decimal(5)
    assert desk.position("SPY") == Decimal(5)
    assert [(s, t) for s, t, _, _, _ in desk.broker_orders("SPY")] == [("filled", "limit")]


async def test_a_walk_moves_through_every_step_then_takes_the_market(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "QQQ")
    walk = desk.walk(WalkPlan("QQQ", "buy", Decimal(4), fractionable=True))
    result = await walk_with_market_fill(desk, walk)
    assert result.outcome == "filled", result
    # Three limits, each replaced by the next; the last cancelled for the market order.
    assert desk.broker_orders("QQQ") == [
        ("replaced", "limit", Decimal(4), Decimal(0), Decimal("100.30")),
        ("replaced", "limit", Decimal(4), Decimal(0), Decimal("100.34")),
        ("canceled", "limit", Decimal(4), Decimal(0), Decimal("100.38")),
        ("filled", "market", Decimal(4), Decimal(4), None),
    ]
    assert desk.position("QQQ") == Decimal(4)
    recorded = desk.ledger.recorded
    assert [o.replaces for _, o in recorded] == [None] + [cid for cid, _ in recorded[:-1]]
    assert [o.limit_price for _, o in recorded][-1] is None  # the market order


async def test_partial_fills_shrink_what_each_next_step_asks_for(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "QQQ")
    walk = desk.walk(WalkPlan("QQQ", "buy", Decimal(10), fractionable=True))
    running = asyncio.create_task(walk_with_market_fill(desk, walk))
    await until(lambda: [s for s, *_ in desk.broker_orders("QQQ")] == ["new"])
    sim.fill(client_order_id="walk-QQQ-buy-1", qty=3)  # before the first move
    result = await asyncio.wait_for(running, WAIT_S)
    assert result.outcome == "filled" and result.filled == Decimal(10)
    assert [(s, q, f) for s, _, q, f, _ in desk.broker_orders("QQQ")] == [
        ("replaced", Decimal(10), Decimal(3)),
        ("replaced", Decimal(7), Decimal(0)),  # the remainder, stated explicitly
        ("canceled", Decimal(7), Decimal(0)),
        ("filled", Decimal(7), Decimal(7)),
    ]
    assert desk.position("QQQ") == Decimal(10)


async def test_a_fill_racing_a_replace_is_counted_and_never_overfills(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "QQQ")
    sim.configure(replace_latency_s=RACE_WINDOW_S / FILL_WAIT_SCALE)
    walk = desk.walk(WalkPlan("QQQ", "buy", Decimal(6), fractionable=True))
    running = asyncio.create_task(walk.run())
    await until(lambda: any(s == "pending_replace" for s, *_ in desk.broker_orders("QQQ")))
    sim.fill(client_order_id="walk-QQQ-buy-1")  # the old order fills while pending_replace
    result = await asyncio.wait_for(running, WAIT_S)
    assert result.outcome == "filled" and result.filled == Decimal(6)
    statuses = [s for s, *_ in desk.broker_orders("QQQ")]
    assert statuses[0] == "filled"  # the replace lost the race and was rejected
    assert "filled" not in statuses[1:]
    assert desk.position("QQQ") == Decimal(6)  # never more than asked


async def test_a_fractional_remainder_is_cancelled_and_sent_again_never_replaced(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "TLT")
    walk = desk.walk(WalkPlan("TLT", "buy", Decimal("2.5"), fractionable=True))
    result = await walk_with_market_fill(desk, walk)
    assert result.outcome == "filled", result
    statuses = [s for s, *_ in desk.broker_orders("TLT")]
    assert statuses == ["canceled", "canceled", "canceled", "filled"]
    assert desk.position("TLT") == Decimal("2.5")


async def test_a_sell_concedes_the_spread_step_by_step(desk: Desk, sim: SimThread) -> None:
    sim.set_quote("SPY", bid="100.00", ask="100.01")
    await desk.walk(WalkPlan("SPY", "buy", Decimal(3), fractionable=True)).run()
    wide(sim, "SPY")
    walk = desk.walk(WalkPlan("SPY", "sell", Decimal(3), fractionable=True))
    result = await walk_with_market_fill(desk, walk)
    assert result.outcome == "filled", result
    assert desk.position("SPY") == Decimal(0)
    sells = [price for s, t, q, f, price in desk.broker_orders("SPY")[1:] if t == "limit"]
    assert sells == [Decimal("100.10"), Decimal("100.06"), Decimal("100.02")]


async def test_a_rejected_order_stops_the_walk_with_the_reason(desk: Desk) -> None:
    result = await desk.walk(WalkPlan("SPY", "buy", Decimal(100000), fractionable=True)).run()
    assert result.outcome == "rejected"
    assert result.reason is not None and "buying power" in result.reason
    assert result.filled == Decimal(0)
    assert desk.broker_orders("SPY") == []
    [(client_order_id, reason)] = desk.ledger.rejections
    assert client_order_id == desk.ledger.recorded[0][0] and "buying power" in reason


async def test_a_capped_buy_never_prices_above_its_cap_and_ends_at_the_close(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "SPY")
    cap = Decimal("100.20")  # below every step's price: each limit sits at the cap
    walk = desk.walk(WalkPlan("SPY", "buy", Decimal(2), fractionable=True, price_cap=cap))
    running = asyncio.create_task(walk.run())
    await until(lambda: len(desk.broker_orders("SPY")) >= 1)
    await asyncio.sleep(FAST.step_interval_seconds * 4)  # into its last step, at the cap
    sim.set_clock(now=CLOSE)  # the close expires the working DAY order
    result = await asyncio.wait_for(running, WAIT_S)
    assert result.outcome == "expired"
    assert result.filled == Decimal(0)
    orders = desk.broker_orders("SPY")
    assert {price for *_, price in orders} == {cap}
    assert orders[-1][0] == "expired"


async def test_a_halt_mid_walk_stops_it_with_nothing_filled_and_nothing_left_working(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "SPY")
    running = asyncio.create_task(
        desk.walk(WalkPlan("SPY", "buy", Decimal(5), fractionable=True)).run()
    )
    await until(lambda: [s for s, *_ in desk.broker_orders("SPY")] == ["new"])
    sim.halt("SPY")  # the next step's replace is refused
    result = await asyncio.wait_for(running, WAIT_S)
    assert result.outcome == "halted", result
    assert result.reason is not None and "halted" in result.reason
    assert result.filled == Decimal(0)
    assert not any(s in ("new", "pending_new") for s, *_ in desk.broker_orders("SPY"))
    with pytest.raises(TradingHalted):
        await desk.broker.submit(OrderRequest("after-halt", "SPY", "buy", Decimal(1)))


async def test_a_broker_failure_mid_walk_leaves_nothing_working(desk: Desk, sim: SimThread) -> None:
    wide(sim, "QQQ")
    running = asyncio.create_task(
        desk.walk(WalkPlan("QQQ", "buy", Decimal(5), fractionable=True)).run()
    )
    await until(lambda: [s for s, *_ in desk.broker_orders("QQQ")] == ["new"])
    sim.set_faults(status=500, count=100, method="PATCH")  # every move fails, for good
    result = await asyncio.wait_for(running, WAIT_S)
    sim.clear_faults()
    assert result.outcome == "error", result
    assert [s for s, *_ in desk.broker_orders("QQQ")] == ["canceled"]


async def test_a_replace_whose_answer_was_lost_is_found_not_sent_again(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "QQQ")
    running = asyncio.create_task(
        walk_with_market_fill(desk, desk.walk(WalkPlan("QQQ", "buy", Decimal(5), True)))
    )
    await until(lambda: [s for s, *_ in desk.broker_orders("QQQ")] == ["new"])
    # The first move is applied, its answer lost; the retry meets an order already replaced.
    sim.set_faults(status=500, method="PATCH", after=True)
    result = await asyncio.wait_for(running, WAIT_S)
    assert result.outcome == "filled", result
    orders = desk.broker_orders("QQQ")
    assert sum(filled for *_, filled, _ in orders) == Decimal(5)
    assert desk.position("QQQ") == Decimal(5)


async def test_a_partial_fill_racing_a_replace_shrinks_the_replacement_never_overfills(
    desk: Desk, sim: SimThread
) -> None:
    wide(sim, "QQQ")
    sim.configure(replace_latency_s=RACE_WINDOW_S / FILL_WAIT_SCALE)
    walk = desk.walk(WalkPlan("QQQ", "buy", Decimal(6), fractionable=True))
    running = asyncio.create_task(walk_with_market_fill(desk, walk))
    await until(lambda: any(s == "pending_replace" for s, *_ in desk.broker_orders("QQQ")))
    sim.fill(client_order_id="walk-QQQ-buy-1", qty=2)  # part of the old order, in the window
    result = await asyncio.wait_for(running, WAIT_S)
    assert result.outcome == "filled" and result.filled == Decimal(6)
    assert desk.position("QQQ") == Decimal(6)  # the replacement asked for 6: never 8


async def test_a_one_sided_quote_is_priced_from_the_last_trade_within_the_band(
    desk: Desk, sim: SimThread
) -> None:
    sim.set_quote("QQQ", bid="0", ask="100.40")  # no bid: the spread means nothing
    sim.configure(auto_fill=False)
    last = (await latest_quote(desk.data, "QQQ")).last
    assert last is not None
    band = Decimal("0.002")
    config = replace(FAST, last_trade_band=band)
    walk = desk.walk(WalkPlan("QQQ", "buy", Decimal(2), fractionable=True), config)
    result = await walk_with_market_fill(desk, walk)
    assert result.outcome == "filled", result
    limits = [o for _, o in desk.ledger.recorded if o.limit_price is not None]
    assert len(limits) == len(STEPS)
    for order in limits:
        assert order.quote is not None and order.quote.last == last
        assert order.quote.bid >= last * (1 - band) - Decimal("0.01")
        assert order.quote.ask <= last * (1 + band) + Decimal("0.01")
        assert order.quote.bid < order.limit_price < order.quote.ask  # inside the band
    prices = [o.limit_price for o in limits]
    assert prices == sorted(prices, key=Decimal)  # up through the band
    assert desk.ledger.recorded[-1][1].limit_price is None  # then the market


async def test_without_a_band_a_one_sided_quote_sends_nothing(desk: Desk, sim: SimThread) -> None:
    sim.set_quote("QQQ", bid="0", ask="100.40")
    result = await desk.walk(WalkPlan("QQQ", "buy", Decimal(2), fractionable=True)).run()
    assert result.outcome == "expired" and "no usable quote" in str(result.reason)
    assert desk.broker_orders("QQQ") == [] and desk.ledger.recorded == []
