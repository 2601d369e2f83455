"""The broker adapter against the simulator, through the unmodified alpaca-py client."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from alchemiser.execution.broker import Broker, OrderRequest
from alchemiser.execution.errors import (
    BrokerAuthError,
    InsufficientBuyingPower,
    InsufficientQuantity,
    OrderNotFound,
    RateLimited,
    TemporaryBrokerError,
)
from alchemiser.settings import ExecutionConfig
from alchemiser.sim import SimThread
from tests.execution.conftest import BACKOFF_S, alpaca_config
from tests.sim.conftest import WAIT_S

POLL_S = 0.01
# Far below the market: rests without filling.
RESTING_BUY = OrderRequest("t-2026-11-18-spy-buy-1", "SPY", "buy", Decimal(3), Decimal("1.00"))


def orders_with(sim: SimThread, client_order_id: str) -> int:
    return sim.call(
        lambda s: sum(o.client_order_id == client_order_id for o in s.broker.orders.values())
    )


async def test_submit_answers_in_decimals_and_is_found_by_client_order_id(broker: Broker) -> None:
    sent = await broker.submit(RESTING_BUY)
    assert (sent.symbol, sent.side, sent.qty) == ("SPY", "buy", Decimal(3))
    assert sent.limit_price == Decimal("1.00")
    assert sent.filled_qty == Decimal(0) and sent.filled_avg_price is None
    assert sent.is_open
    found = await broker.find_order(RESTING_BUY.client_order_id)
    assert found is not None and found.id == sent.id
    assert await broker.find_order("never-sent") is None


async def test_a_second_submit_of_one_client_order_id_returns_the_first_order(
    broker: Broker, sim: SimThread
) -> None:
    first = await broker.submit(RESTING_BUY)
    again = await broker.submit(RESTING_BUY)  # the broker answers 422 "must be unique"
    assert again.id == first.id
    assert orders_with(sim, RESTING_BUY.client_order_id) == 1


async def test_429s_are_retried_and_the_order_is_sent_once(broker: Broker, sim: SimThread) -> None:
    sim.set_faults(status=429, count=2)
    sent = await broker.submit(RESTING_BUY)
    assert sent.client_order_id == RESTING_BUY.client_order_id
    assert orders_with(sim, RESTING_BUY.client_order_id) == 1


async def test_server_errors_past_the_retries_say_what_was_asked(
    broker: Broker, sim: SimThread
) -> None:
    sim.set_faults(status=500, count=broker.attempts)
    with pytest.raises(TemporaryBrokerError) as info:
        await broker.account()
    assert str(info.value) == "read the account: HTTP 500: internal error"
    assert (await broker.account()).status == "ACTIVE"  # the burst is over


async def test_a_rate_limit_that_outlasts_the_retries_is_typed(
    broker: Broker, sim: SimThread
) -> None:
    sim.set_faults(status=429, count=broker.attempts)
    with pytest.raises(RateLimited):
        await broker.clock()


async def test_rejections_are_typed_and_not_retried(broker: Broker, sim: SimThread) -> None:
    with pytest.raises(InsufficientBuyingPower):
        await broker.submit(OrderRequest("too-big", "SPY", "buy", Decimal(100000)))
    with pytest.raises(InsufficientQuantity):
        await broker.submit(OrderRequest("not-held", "SPY", "sell", Decimal(1)))
    with pytest.raises(OrderNotFound):
        await broker.order("00000000-0000-4000-8000-000000000000")
    assert orders_with(sim, "too-big") + orders_with(sim, "not-held") == 0


async def test_wrong_keys_are_an_auth_error(sim: SimThread) -> None:
    adapter = Broker(
        alpaca_config(sim, secret="wrong"), ExecutionConfig(), backoff_seconds=BACKOFF_S
    )
    try:
        with pytest.raises(BrokerAuthError) as info:
            await adapter.account()
        assert "HTTP 401" in str(info.value)
        assert "wrong" not in str(info.value)
    finally:
        adapter.close()


async def test_account_cash_and_buying_power_are_distinct_decimals(broker: Broker) -> None:
    account = await broker.account()
    assert account.cash == Decimal(100000)
    assert isinstance(account.buying_power, Decimal)


async def test_a_replace_refuses_a_fractional_quantity_before_sending(broker: Broker) -> None:
    with pytest.raises(ValueError, match="fractional"):
        await broker.replace("any", Decimal("1.5"), Decimal(1), "t-step-2")


@pytest.mark.parametrize("action", ["status", "reset"])
async def test_a_post_whose_answer_is_lost_is_retried_and_sent_once(
    broker: Broker, sim: SimThread, action: str
) -> None:
    # The handler runs (the order exists), then the answer is a 500 or a reset.
    sim.set_faults(status=500, action=action, method="POST", path="/v2/orders", after=True)
    sent = await broker.submit(RESTING_BUY)
    assert sent.client_order_id == RESTING_BUY.client_order_id
    assert orders_with(sim, RESTING_BUY.client_order_id) == 1


async def test_a_hung_post_times_out_and_the_order_is_found_not_resent(
    sim: SimThread, broker: Broker
) -> None:
    sim.set_faults(action="hang", hang_ms=60_000, method="POST", path="/v2/orders", after=True)
    sent = await broker.submit(RESTING_BUY)  # times out, retries, meets "must be unique"
    assert sent.client_order_id == RESTING_BUY.client_order_id
    assert orders_with(sim, RESTING_BUY.client_order_id) == 1


async def test_orders_and_activities_are_read_in_decimals(broker: Broker, sim: SimThread) -> None:
    first = await broker.submit(OrderRequest("read-1", "SPY", "buy", Decimal(2)))
    second = await broker.submit(RESTING_BUY)
    after = datetime(2026, 11, 18, tzinfo=UTC)
    listed = {o.client_order_id: o for o in await broker.orders("all", after)}
    assert {first.client_order_id, second.client_order_id} <= set(listed)
    assert listed[second.client_order_id].limit_price == Decimal("1.00")
    await _until_filled(broker, first.id)
    fills = await broker.activities(("FILL",))
    assert sum(Decimal(f["qty"]) for f in fills if f["order_id"] == first.id) == Decimal(2)


async def _until_filled(broker: Broker, order_id: str) -> None:
    for _ in range(int(WAIT_S / POLL_S)):
        if (await broker.order(order_id)).status == "filled":
            return
        await asyncio.sleep(POLL_S)
    raise AssertionError(f"order {order_id} never filled")


async def test_orders_sharing_a_timestamp_across_a_page_boundary_are_all_listed(
    broker: Broker, sim: SimThread
) -> None:
    sim.set_clock(virtual=True)  # the clock stands still until advanced
    for instant, count in enumerate((2, 2, 1)):  # submitted_at: T0 T0 | T1 T1 | T2
        for i in range(count):
            order = OrderRequest(f"page-{instant}-{i}", "SPY", "buy", Decimal(1), Decimal("1.00"))
            await broker.submit(order)
        sim.set_clock(advance=1.0)
    # Pages of 3: the first ends inside T1, whose second order must not be lost.
    listed = await broker.orders("all", datetime(2026, 11, 18, tzinfo=UTC), page=3)
    assert sorted(o.client_order_id for o in listed) == [
        "page-0-0",
        "page-0-1",
        "page-1-0",
        "page-1-1",
        "page-2-0",
    ]
