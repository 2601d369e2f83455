"""Faults with side effects: targeted HTTP faults (before or after the handler), resets,
hangs, the rate limit; and the trade stream down, half-open, dropping, duplicating,
delaying and reordering updates."""

from __future__ import annotations

import functools
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import GetOrdersRequest, LimitOrderRequest, MarketOrderRequest

from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, TradeUpdates, wait_until

SHORT_TIMEOUT_S = 0.3


def buy(symbol: str = "SPY", qty: int = 1, cid: str | None = None) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force="day", client_order_id=cid
    )


def resting(symbol: str = "SPY") -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol, qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.DAY, limit_price=1.0
    )


def impatient(sim: SimThread) -> TradingClient:
    client = TradingClient(sim.api_key, sim.secret_key, url_override=sim.trading_url)
    client._retry = 0
    client._session.request = functools.partial(  # type: ignore[method-assign]
        client._session.request, timeout=SHORT_TIMEOUT_S
    )
    return client


def test_lost_post_answer_then_the_retry_meets_a_unique_client_order_id(
    trading: TradingClient, sim: SimThread
) -> None:
    sim.set_faults(status=504, count=1, method="POST", path="/v2/orders", after=True)
    with pytest.raises(APIError) as info:
        trading.submit_order(buy(cid="lost-answer-1"))  # alpaca-py retries a 504 by itself
    assert (info.value.status_code, info.value.code) == (422, 40010001)
    assert "client_order_id must be unique" in info.value.message
    order = trading.get_order_by_client_id("lost-answer-1")  # the first POST did create it
    every = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL))
    assert [o.id for o in every] == [order.id]


def test_faults_target_a_method_and_path(trading: TradingClient, sim: SimThread) -> None:
    sim.set_faults(status=500, count=1, method="GET", path="/v2/account")
    assert trading.get_clock() is not None  # another route: untouched
    order = trading.submit_order(resting())
    with pytest.raises(APIError) as info:
        trading.get_account()
    assert info.value.status_code == 500
    assert trading.get_account().status == "ACTIVE"
    assert trading.get_order_by_id(order.id).symbol == "SPY"


def test_connection_reset_and_hang(sim: SimThread) -> None:
    client = impatient(sim)
    sim.set_faults(action="reset", method="GET", path="/v2/clock")
    with pytest.raises(requests.exceptions.ConnectionError):
        client.get_clock()
    sim.set_faults(action="hang", method="GET", path="/v2/clock", hang_ms=60_000)
    with pytest.raises(requests.exceptions.ReadTimeout):
        client.get_clock()
    assert client.get_clock() is not None


def test_order_posted_before_a_reset_exists(trading: TradingClient, sim: SimThread) -> None:
    client = impatient(sim)
    sim.set_faults(action="reset", method="POST", path="/v2/orders", after=True)
    with pytest.raises(requests.exceptions.ConnectionError):
        client.submit_order(buy(cid="reset-after-1"))
    assert trading.get_order_by_client_id("reset-after-1").qty == "1"


def test_rate_limit_answers_429_as_alpaca_does(trading: TradingClient, sim: SimThread) -> None:
    sim.set_faults(rate_limit_per_minute=5)
    headers = {"APCA-API-KEY-ID": sim.api_key, "APCA-API-SECRET-KEY": sim.secret_key}
    answers = [
        requests.get(f"{sim.trading_url}/v2/clock", headers=headers, timeout=10) for _ in range(6)
    ]
    assert [a.status_code for a in answers] == [200] * 5 + [429]
    assert answers[-1].json()["code"] == 42910000
    assert answers[-1].headers["X-RateLimit-Limit"] == "5"
    with pytest.raises(APIError) as info:
        trading.get_account()  # alpaca-py retries 429 three times, then gives up
    assert info.value.status_code == 429
    sim.set_faults(rate_limit_per_minute=0)
    assert trading.get_account().status == "ACTIVE"


def marker_arrives(trading: TradingClient, updates: TradeUpdates) -> None:
    """An order whose fill arrives: everything published before it has been delivered."""
    order = trading.submit_order(buy("QQQ"))
    updates.wait_event(order.id, "fill")


def test_stream_down_for_a_while_loses_what_happened(
    trading: TradingClient, sim: SimThread, updates: TradeUpdates
) -> None:
    assert sim.stream_down(1.5)["dropped"] >= 1
    missed = trading.submit_order(buy())
    wait_until(lambda: trading.get_order_by_id(missed.id).status == OrderStatus.FILLED)
    wait_until(lambda: sim.state()["trade_listeners"] >= 1)  # alpaca-py got back in
    marker_arrives(trading, updates)
    assert updates.events(missed.id) == []  # not replayed: REST catch-up is the only way


def test_half_open_stream_stays_up_and_says_nothing(
    trading: TradingClient, sim: SimThread, updates: TradeUpdates
) -> None:
    assert sim.stream_silent()["silenced"] >= 1
    unheard = trading.submit_order(buy())
    wait_until(lambda: trading.get_order_by_id(unheard.id).status == OrderStatus.FILLED)
    assert sim.state()["trade_listeners"] >= 1  # still connected
    wait_until(lambda: sim.state()["stream_swallowed"] >= 2)  # new, fill
    sim.drop_websockets()  # what a client's ping timeout would end up doing
    wait_until(lambda: sim.state()["trade_listeners"] >= 1)
    marker_arrives(trading, updates)
    assert updates.events(unheard.id) == []


@pytest.fixture
def frozen(sim: SimThread, updates: TradeUpdates) -> TradeUpdates:
    sim.set_clock(now=BASE_NOW, virtual=True)
    sim.configure(auto_fill=False)
    return updates


def test_next_updates_dropped_duplicated_and_reordered(
    trading: TradingClient, sim: SimThread, frozen: TradeUpdates
) -> None:
    sim.stream_fault("duplicate", 1)
    twice = trading.submit_order(resting())
    sim.advance(1)
    sim.fill(twice.id)
    frozen.wait_event(twice.id, "fill")
    assert frozen.events(twice.id) == ["new", "new", "fill"]

    sim.stream_fault("drop", 1)
    dropped = trading.submit_order(resting())
    sim.advance(1)
    sim.fill(dropped.id)
    frozen.wait_event(dropped.id, "fill")
    assert frozen.events(dropped.id) == ["fill"]

    reordered = trading.submit_order(LimitOrderRequest(**{**resting().model_dump(), "qty": 3}))
    sim.advance(1)
    frozen.wait_event(reordered.id, "new")
    sim.stream_fault("reorder", 2)
    sim.fill(reordered.id, qty=1)
    sim.fill(reordered.id)
    frozen.wait_event(reordered.id, "partial_fill")
    assert frozen.events(reordered.id) == ["new", "fill", "partial_fill"]
    assert Decimal(frozen.wait_event(reordered.id, "fill").order.filled_qty) == 3


def test_a_delayed_update_is_overtaken(
    trading: TradingClient, sim: SimThread, frozen: TradeUpdates
) -> None:
    order = trading.submit_order(resting())
    sim.stream_fault("delay", 1, delay_ms=1000)
    sim.advance(1)  # `new`, held back
    sim.fill(order.id)  # `fill`, sent at once
    frozen.wait_event(order.id, "new")
    assert frozen.events(order.id) == ["fill", "new"]
