"""Alpaca's races, reproduced exactly in virtual time: asynchronous replace and cancel (the
old order fills while pending), replace quantities as Alpaca does them, and scripted fills."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest

from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, TradeUpdates

WINDOW_S = 2.0  # simulated seconds a replace or cancel stays pending


@pytest.fixture
def scripted(sim: SimThread, updates: TradeUpdates) -> TradeUpdates:
    """Virtual time, orders fill only when the test says so, replaces and cancels pending
    for WINDOW_S; SPY at $500.00."""
    sim.set_clock(now=BASE_NOW, virtual=True)
    sim.configure(auto_fill=False, replace_latency_s=WINDOW_S, cancel_latency_s=WINDOW_S)
    sim.set_price("SPY", "500.00", spread_bps=2)
    return updates


def limit(qty: float, price: float, side: str = "buy", symbol: str = "SPY") -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide(side),
        time_in_force=TimeInForce.DAY,
        limit_price=price,
    )


def live(trading: TradingClient, sim: SimThread, updates: TradeUpdates, req: Any) -> Any:
    """Submit; the POST answers pending_new; `new` follows once the clock moves."""
    order = trading.submit_order(req)
    assert order.status == OrderStatus.PENDING_NEW
    assert trading.get_order_by_id(order.id).status == OrderStatus.PENDING_NEW  # clock frozen
    sim.advance(1)
    updates.wait_event(order.id, "new")
    return order


def api_error(call: Any, *args: Any) -> APIError:
    with pytest.raises(APIError) as info:
        call(*args)
    return info.value


def position(sim: SimThread, symbol: str) -> Decimal:
    return Decimal(sim.state()["positions"].get(symbol, "0"))


def test_fill_racing_a_replace_rejects_the_replace(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    old = live(trading, sim, scripted, limit(10, 499.0))
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(qty=10, limit_price=499.5))
    assert new.status == OrderStatus.PENDING_NEW and str(new.replaces) == str(old.id)
    scripted.wait_event(old.id, "pending_replace")
    assert trading.get_order_by_id(old.id).status == OrderStatus.PENDING_REPLACE
    again = api_error(trading.replace_order_by_id, old.id, ReplaceOrderRequest(limit_price=499.7))
    assert again.status_code == 422  # Alpaca: no replace while pending_*
    sim.fill(old.id, qty=4)  # the old order fills in the window, partly, then fully
    sim.fill(old.id)
    sim.advance(WINDOW_S)
    rejected = scripted.wait_event(old.id, "order_replace_rejected")
    assert rejected.order.status == OrderStatus.FILLED
    assert scripted.events(old.id) == [
        "new",
        "pending_replace",
        "partial_fill",
        "fill",
        "order_replace_rejected",
    ]
    assert trading.get_order_by_id(new.id).status == OrderStatus.REJECTED  # never lived
    assert scripted.events(new.id) == []
    assert position(sim, "SPY") == 10  # nothing lost, nothing extra


def test_partial_fill_in_the_window_then_the_replace_goes_through(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    old = live(trading, sim, scripted, limit(10, 499.0))
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(qty=6, limit_price=499.5))
    sim.fill(old.id, qty=4)
    sim.advance(WINDOW_S)
    replaced = scripted.wait_event(old.id, "replaced")
    assert replaced.order.status == OrderStatus.REPLACED
    assert Decimal(replaced.order.filled_qty) == 4
    assert str(replaced.order.replaced_by) == str(new.id)
    scripted.wait_event(new.id, "new")
    sim.fill(new.id)
    scripted.wait_event(new.id, "fill")
    assert position(sim, "SPY") == 10


def test_cancel_is_pending_and_a_fill_in_the_window_rejects_it(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    calm = live(trading, sim, scripted, limit(1, 400.0))
    assert trading.cancel_order_by_id(calm.id) is None  # 204
    assert trading.get_order_by_id(calm.id).status == OrderStatus.PENDING_CANCEL
    sim.advance(WINDOW_S)
    assert scripted.wait_event(calm.id, "canceled").order.status == OrderStatus.CANCELED

    raced = live(trading, sim, scripted, limit(3, 499.0))
    trading.cancel_order_by_id(raced.id)
    sim.fill(raced.id)
    sim.advance(WINDOW_S)
    rejected = scripted.wait_event(raced.id, "order_cancel_rejected")
    assert rejected.order.status == OrderStatus.FILLED
    assert "canceled" not in scripted.events(raced.id)
    assert position(sim, "SPY") == 3


def test_accepted_and_pending_new_orders_cannot_be_replaced(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    order = trading.submit_order(limit(1, 400.0))
    assert order.status == OrderStatus.PENDING_NEW
    err = api_error(trading.replace_order_by_id, order.id, ReplaceOrderRequest(limit_price=401))
    assert err.status_code == 422
    sim.set_clock(now=BASE_NOW.replace(hour=18))  # after the close: queued until the open
    queued = trading.submit_order(limit(1, 400.0, symbol="QQQ"))
    assert queued.status == OrderStatus.ACCEPTED
    err = api_error(trading.replace_order_by_id, queued.id, ReplaceOrderRequest(limit_price=401))
    assert err.status_code == 422


def test_replace_without_qty_after_a_partial_fill_overfills_as_alpaca_does(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    old = live(trading, sim, scripted, limit(10, 499.0))
    sim.fill(old.id, qty=4)
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=499.5))
    assert Decimal(new.qty) == 10  # the ORIGINAL quantity, not the 6 that remain
    sim.advance(WINDOW_S)
    scripted.wait_event(new.id, "new")
    sim.fill(new.id)
    scripted.wait_event(new.id, "fill")
    assert position(sim, "SPY") == 14  # asked for 10, got 14


def test_replace_without_qty_of_a_partly_filled_sell_is_refused(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    buy = live(trading, sim, scripted, limit(10, 499.0))
    sim.fill(buy.id)
    sell = live(trading, sim, scripted, limit(10, 501.0, side="sell"))
    sim.fill(sell.id, qty=4)
    err = api_error(trading.replace_order_by_id, sell.id, ReplaceOrderRequest(limit_price=500.5))
    assert (err.status_code, err.code) == (403, 40310000)
    assert "insufficient qty available for order (requested: 10, available: 6)" in err.message
    ok = trading.replace_order_by_id(sell.id, ReplaceOrderRequest(qty=6, limit_price=500.5))
    assert Decimal(ok.qty) == 6


def test_fractional_qty_and_notional_orders_cannot_be_replaced(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    sim.set_asset("SPY", fractionable=True)
    frac = live(trading, sim, scripted, limit(1.5, 400.0))
    err = api_error(trading.replace_order_by_id, frac.id, ReplaceOrderRequest(qty=2))
    assert err.status_code == 422
    price_only = trading.replace_order_by_id(frac.id, ReplaceOrderRequest(limit_price=401))
    assert Decimal(price_only.qty) == Decimal("1.5")
    notional = live(
        trading,
        sim,
        scripted,
        MarketOrderRequest(
            symbol="QQQ", notional=100, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
        ),
    )
    err = api_error(trading.replace_order_by_id, notional.id, ReplaceOrderRequest(qty=1))
    assert err.status_code == 422


def test_scripted_fill_at_a_price_and_its_errors(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    order = live(trading, sim, scripted, limit(5, 499.0))
    sim.fill(order.id, qty=2, price="498.50")
    part = scripted.wait_event(order.id, "partial_fill")
    assert (Decimal(str(part.price)), Decimal(str(part.qty))) == (Decimal("498.50"), 2)
    assert part.timestamp == BASE_NOW.replace(second=1)  # virtual: the clock has not moved
    too_much = requests.post(  # over HTTP, as any client drives the admin API
        f"{sim.trading_url}/_sim/fill", json={"order_id": str(order.id), "qty": "4"}, timeout=10
    )
    assert too_much.status_code == 422  # more than remains: refused, never an overfill
    done = sim.fill(client_order_id=order.client_order_id)  # the rest, at the limit
    assert done["status"] == "filled" and done["filled_avg_price"] == "498.8"


def test_a_replacement_canceled_before_it_lives_stays_canceled(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    old = live(trading, sim, scripted, limit(2, 499.0))
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=499.5))
    trading.cancel_order_by_id(new.id)  # still pending_new: gone at once
    sim.advance(WINDOW_S)
    scripted.wait_event(old.id, "replaced")
    assert trading.get_order_by_id(new.id).status == OrderStatus.CANCELED
    assert scripted.events(new.id) == ["canceled"]
    assert sim.state()["open_orders"] == 0


def test_the_close_during_a_pending_replace_expires_both_orders(
    trading: TradingClient, sim: SimThread, scripted: TradeUpdates
) -> None:
    sim.set_clock(now=BASE_NOW.replace(hour=15, minute=59, second=58))
    old = live(trading, sim, scripted, limit(2, 499.0))
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=499.5))
    sim.advance(WINDOW_S)  # the close (16:00) falls inside the window
    scripted.wait_event(old.id, "order_replace_rejected")
    assert scripted.events(old.id) == [
        "new",
        "pending_replace",
        "expired",
        "order_replace_rejected",
    ]
    assert trading.get_order_by_id(new.id).status == OrderStatus.EXPIRED
    assert sim.state()["open_orders"] == 0
