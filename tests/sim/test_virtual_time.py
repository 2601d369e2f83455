"""Virtual time: the clock moves only when advanced, every due fill fires in order at its own
instant, and the same seed and requests give exactly the same events, prices and times."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest

from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, TradeUpdates, wait_until

SEED = 11


def buy_limit(symbol: str, qty: int, price: Decimal) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        limit_price=float(price),
    )


def quote(sim: SimThread, symbol: str) -> tuple[Decimal, Decimal]:
    q = sim.call(lambda s: s.broker.quote(symbol))
    return q.bid, q.ask


def status(trading: TradingClient, order: Any) -> OrderStatus:
    result: OrderStatus = trading.get_order_by_id(order.id).status
    return result


def test_fills_wait_for_the_clock_and_fire_in_time_order(
    trading: TradingClient, sim: SimThread, updates: TradeUpdates
) -> None:
    sim.set_clock(now=BASE_NOW, virtual=True)
    sim.set_price("KO", Decimal("60.00"), spread_bps=50)
    bid, ask = quote(sim, "KO")
    near = bid + (ask - bid) * Decimal("0.25")
    far = bid + (ask - bid) * Decimal("0.95")
    slow = trading.submit_order(buy_limit("KO", 1, near.quantize(Decimal("0.01"))))
    fast = trading.submit_order(buy_limit("KO", 1, far.quantize(Decimal("0.01"))))
    for _ in range(3):  # wall time passes, simulated time does not: nothing fills
        assert trading.get_clock().timestamp == BASE_NOW
        assert status(trading, slow) == status(trading, fast) == OrderStatus.PENDING_NEW
    sim.advance(6 * 3600)
    first = updates.wait_event(fast.id, "fill")
    second = updates.wait_event(slow.id, "fill")
    assert BASE_NOW < first.timestamp <= second.timestamp  # the closer limit fills sooner
    assert second.timestamp < BASE_NOW.replace(hour=16)  # both within the session
    assert trading.get_clock().timestamp == BASE_NOW.replace(hour=17)


def test_partial_fills_do_not_depend_on_size(
    trading: TradingClient, sim: SimThread, updates: TradeUpdates
) -> None:
    sim.set_clock(now=BASE_NOW, virtual=True)
    sim.configure(partial_fill_probability=1.0)
    order = trading.submit_order(
        MarketOrderRequest(symbol="SPY", qty=2, side=OrderSide.BUY, time_in_force="day")
    )
    sim.advance(60)
    updates.wait_event(order.id, "fill")
    assert updates.events(order.id) == ["new", "partial_fill", "fill"]  # even 2 shares


def test_a_limit_the_market_moved_away_from_stops_filling(
    trading: TradingClient, sim: SimThread, updates: TradeUpdates
) -> None:
    sim.set_clock(now=BASE_NOW, virtual=True)
    sim.configure(partial_fill_probability=1.0)
    sim.set_price("XOM", Decimal("50.00"), spread_bps=40)
    _, ask = quote(sim, "XOM")
    order = trading.submit_order(buy_limit("XOM", 100, ask))  # marketable: fills at once
    sim.advance(1)
    first = updates.wait_event(order.id, "partial_fill")
    filled = Decimal(first.order.filled_qty)
    sim.set_price("XOM", Decimal("55.00"))  # the market runs away from the limit
    sim.advance(3 * 3600)
    assert Decimal(trading.get_order_by_id(order.id).filled_qty) == filled
    assert status(trading, order) == OrderStatus.PARTIALLY_FILLED
    sim.set_price("XOM", Decimal("50.00"))  # and comes back
    sim.advance(600)
    updates.wait_event(order.id, "fill")


def scenario(trading: TradingClient, sim: SimThread, updates: TradeUpdates) -> list[Any]:
    """A small trading morning with random fill times and partial fills."""
    sim.reset(seed=SEED)
    sim.set_clock(now=BASE_NOW, virtual=True)
    sim.configure(partial_fill_probability=0.5)
    start = len(updates.received)
    orders = []
    for symbol in ("KO", "XOM", "IWM", "TLT"):
        bid, ask = quote(sim, symbol)
        price = (bid + (ask - bid) * Decimal("0.75")).quantize(Decimal("0.01"))
        orders.append(trading.submit_order(buy_limit(symbol, 17, price)))
    orders.append(
        trading.submit_order(
            MarketOrderRequest(symbol="SPY", qty=9, side=OrderSide.BUY, time_in_force="day")
        )
    )
    sim.advance(5)
    bid, ask = quote(sim, "TLT")
    if status(trading, orders[3]) in (OrderStatus.NEW, OrderStatus.PARTIALLY_FILLED):
        request = ReplaceOrderRequest(limit_price=float(ask))
        orders.append(trading.replace_order_by_id(orders[3].id, request))
    sim.advance(3600)
    marker = trading.submit_order(buy_limit("GLD", 1, Decimal("1.00")))
    sim.advance(1)
    trading.cancel_order_by_id(marker.id)
    sim.advance(1)
    updates.wait_event(marker.id, "canceled")  # the stream is in order: all earlier arrived
    wait_until(lambda: sim.state()["open_orders"] == 0)
    ours = {str(o.id) for o in [*orders, marker]}  # not a late update of an earlier test
    log = [
        (u.event, str(u.order.id), u.timestamp, u.price, u.qty, u.execution_id, u.order.status)
        for u in updates.received[start:]
        if str(u.order.id) in ours
    ]
    fills = trading.get("/account/activities", {"activity_types": "FILL"})
    return [log, fills, trading.get_account().cash]


def test_the_same_seed_gives_the_same_events(
    trading: TradingClient, sim: SimThread, updates: TradeUpdates
) -> None:
    first = scenario(trading, sim, updates)
    second = scenario(trading, sim, updates)
    assert len(first[0]) > 10
    assert {e[0] for e in first[0]} >= {"new", "partial_fill", "fill", "canceled"}
    assert first == second
