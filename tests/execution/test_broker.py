"""The broker adapter against the simulator, through the unmodified alpaca-py client."""

from __future__ import annotations

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
    assert sim.call(lambda s: s.broker.faults.error_count) == 0


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
