"""An order's whole life over the real TradingStream: new, partial fills, fill, replace, cancel,
expiry at the close, queueing outside the session, rejections and dropped connections."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest, ReplaceOrderRequest

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.sim.conftest import TradeUpdates, wait_until


def buy_market(symbol: str, qty: float) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide.BUY, time_in_force=TimeInForce.DAY
    )


def buy_limit(symbol: str, qty: float, price: Decimal | float) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide.BUY,
        time_in_force=TimeInForce.DAY,
        limit_price=float(price),
    )


def quote_of(sim: SimThread, symbol: str) -> tuple[Decimal, Decimal]:
    q = sim.call(lambda s: s.broker.quote(symbol))
    return q.bid, q.ask


def test_large_market_order_new_partials_fill(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.configure(partial_fill_notional=Decimal(5000))
    order = trading.submit_order(buy_market("SPY", 60))
    fill = updates.wait_event(order.id, "fill")
    events = updates.events(order.id)
    assert events[0] == "new"
    assert events.count("partial_fill") >= 1
    assert events[-1] == "fill"
    executions = [u for u in updates.for_order(order.id) if u.event in ("partial_fill", "fill")]
    assert sum(Decimal(str(u.qty)) for u in executions) == 60
    assert len({u.execution_id for u in executions}) == len(executions)
    assert all(u.execution_id is not None and u.price for u in executions)
    assert Decimal(str(fill.position_qty)) == 60
    assert fill.order.status == OrderStatus.FILLED
    assert Decimal(fill.order.filled_qty) == 60


def test_market_order_fills_at_far_side(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.set_price("XOM", Decimal("50.00"), spread_bps=20)
    bid, ask = quote_of(sim, "XOM")
    order = trading.submit_order(buy_market("XOM", 1))
    fill = updates.wait_event(order.id, "fill")
    assert Decimal(str(fill.price)) >= ask > bid


def test_limit_inside_spread_fills_at_its_price(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.set_price("KO", Decimal("60.00"), spread_bps=50)
    bid, ask = quote_of(sim, "KO")
    inside = (bid + (ask - bid) * Decimal("0.75")).quantize(Decimal("0.01"))
    assert bid < inside < ask
    order = trading.submit_order(buy_limit("KO", 3, inside))
    fill = updates.wait_event(order.id, "fill")
    assert Decimal(str(fill.price)) == inside
    assert updates.events(order.id)[0] == "new"


def test_marketable_limit_fills_at_once_below_its_limit(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.set_price("KO", Decimal("60.00"), spread_bps=10)
    _, ask = quote_of(sim, "KO")
    order = trading.submit_order(buy_limit("KO", 2, ask + 1))
    fill = updates.wait_event(order.id, "fill")
    assert ask <= Decimal(str(fill.price)) < ask + 1


def test_replace_emits_replaced_for_old_order(
    trading: TradingClient, updates: TradeUpdates
) -> None:
    old = trading.submit_order(buy_limit("SPY", 2, 1.0))
    updates.wait_event(old.id, "new")
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=1.01))
    replaced = updates.wait_event(old.id, "replaced")
    assert replaced.order.status == OrderStatus.REPLACED
    assert str(replaced.order.replaced_by) == str(new.id)
    assert updates.wait_event(new.id, "new").order.replaces is not None


def test_walk_the_book_replace_then_fill(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.set_price("MSFT", Decimal("400.00"), spread_bps=25)
    bid, ask = quote_of(sim, "MSFT")
    old = trading.submit_order(buy_limit("MSFT", 1, bid - 1))  # behind the book: waits
    updates.wait_event(old.id, "new")
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(limit_price=float(ask)))
    updates.wait_event(old.id, "replaced")
    fill = updates.wait_event(new.id, "fill")
    assert Decimal(str(fill.price)) <= ask
    assert "fill" not in updates.events(old.id)


def test_cancel_emits_canceled(trading: TradingClient, updates: TradeUpdates) -> None:
    order = trading.submit_order(buy_limit("SPY", 1, 1.0))
    updates.wait_event(order.id, "new")
    trading.cancel_order_by_id(order.id)
    assert updates.wait_event(order.id, "canceled").order.status == OrderStatus.CANCELED


def test_day_order_expires_at_the_close(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    day = trading.submit_order(buy_limit("SPY", 1, 1.0))
    gtc = trading.submit_order(
        LimitOrderRequest(
            symbol="QQQ", qty=1, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=1
        )
    )
    updates.wait_event(day.id, "new")
    sim.set_clock(now=datetime(2026, 11, 18, 16, 0, 1, tzinfo=NEW_YORK))
    expired = updates.wait_event(day.id, "expired")
    assert expired.order.status == OrderStatus.EXPIRED
    assert trading.get_order_by_id(gtc.id).status == OrderStatus.NEW


def test_order_after_close_waits_for_the_open(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.set_clock(now=datetime(2026, 11, 18, 18, 0, tzinfo=NEW_YORK))
    order = trading.submit_order(buy_market("SPY", 1))
    assert order.status == OrderStatus.ACCEPTED
    sim.set_clock(now=datetime(2026, 11, 19, 9, 30, 5, tzinfo=NEW_YORK))
    fill = updates.wait_event(order.id, "fill")
    assert updates.events(order.id)[0] == "new"
    assert fill.order.filled_at is not None
    assert fill.order.filled_at >= datetime(2026, 11, 19, 9, 30, tzinfo=NEW_YORK)


def test_rejected_next_order(trading: TradingClient, updates: TradeUpdates, sim: SimThread) -> None:
    sim.set_faults(reject_orders=1)
    order = trading.submit_order(buy_market("SPY", 1))
    rejected = updates.wait_event(order.id, "rejected")
    assert rejected.order.status == OrderStatus.REJECTED
    assert trading.get_order_by_id(order.id).status == OrderStatus.REJECTED
    second = trading.submit_order(buy_market("SPY", 1))  # only the next one is rejected
    updates.wait_event(second.id, "fill")


def test_dropped_stream_reconnects_and_resumes(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    assert sim.drop_websockets()["dropped"] >= 1
    wait_until(lambda: sim.state()["trade_listeners"] >= 1)  # alpaca-py reconnects by itself
    order = trading.submit_order(buy_market("SPY", 1))
    updates.wait_event(order.id, "fill")


def test_gtc_limit_does_not_fill_overnight_but_at_the_open(
    trading: TradingClient, updates: TradeUpdates, sim: SimThread
) -> None:
    sim.set_price("KO", Decimal("60.00"), spread_bps=10)
    order = trading.submit_order(
        LimitOrderRequest(
            symbol="KO", qty=2, side=OrderSide.BUY, time_in_force=TimeInForce.GTC, limit_price=50
        )
    )
    updates.wait_event(order.id, "new")
    sim.set_clock(now=datetime(2026, 11, 18, 17, 0, tzinfo=NEW_YORK))
    sim.set_price("KO", Decimal("45.00"))  # now marketable, but the market is closed
    sim.call(lambda s: s.broker.on_tick())
    assert trading.get_order_by_id(order.id).status == OrderStatus.NEW
    sim.set_clock(now=datetime(2026, 11, 19, 9, 30, 1, tzinfo=NEW_YORK))
    fill = updates.wait_event(order.id, "fill")
    assert Decimal(str(fill.price)) <= 50
    assert fill.order.filled_at >= datetime(2026, 11, 19, 9, 30, tzinfo=NEW_YORK)


def test_trade_stream_rejects_bad_keys(sim: SimThread, updates: TradeUpdates) -> None:
    import threading

    from alpaca.trading.stream import TradingStream

    before = sim.state()
    stream = TradingStream("wrong", "keys", url_override=sim.stream_url)

    async def on_update(update: object) -> None:
        pass

    stream.subscribe_trade_updates(on_update)
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        wait_until(lambda: sim.state()["stream_auth_failures"] > before["stream_auth_failures"])
        assert sim.state()["trade_listeners"] == before["trade_listeners"]
    finally:
        stream.stop()
        thread.join(10)
