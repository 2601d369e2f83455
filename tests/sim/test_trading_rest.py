"""Trading REST through the real TradingClient: every endpoint parses into alpaca-py's models."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, QueryOrderStatus, TimeInForce
from alpaca.trading.models import Asset, Calendar, Clock, Order, Position, TradeAccount
from alpaca.trading.requests import (
    ClosePositionRequest,
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, wait_until


def market(
    symbol: str, qty: float | None = None, side: str = "buy", **kw: object
) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide(side), time_in_force=TimeInForce.DAY, **kw
    )


def limit(
    symbol: str, qty: float, price: float, side: str = "buy", **kw: object
) -> LimitOrderRequest:
    return LimitOrderRequest(
        symbol=symbol,
        qty=qty,
        side=OrderSide(side),
        time_in_force=TimeInForce.DAY,
        limit_price=price,
        **kw,
    )


def filled(trading: TradingClient, order_id: object) -> Order:
    wait_until(lambda: trading.get_order_by_id(order_id).status == OrderStatus.FILLED)
    return trading.get_order_by_id(order_id)


def api_error(call: object, *args: object) -> APIError:
    with pytest.raises(APIError) as info:
        call(*args)  # type: ignore[operator]
    return info.value


def test_account_parses_with_starting_cash(trading: TradingClient) -> None:
    account = trading.get_account()
    assert isinstance(account, TradeAccount)
    assert Decimal(account.cash) == Decimal(100000)
    assert Decimal(account.equity) == Decimal(100000)
    assert account.status == "ACTIVE"


def test_clock_is_open_mid_session_and_closed_at_weekend(
    trading: TradingClient, sim: SimThread
) -> None:
    clock = trading.get_clock()
    assert isinstance(clock, Clock)
    assert clock.is_open
    assert clock.next_close == datetime(2026, 11, 18, 16, 0, tzinfo=NEW_YORK)
    sim.set_clock(now=datetime(2026, 11, 21, 12, 0, tzinfo=NEW_YORK))  # Saturday
    clock = trading.get_clock()
    assert not clock.is_open
    assert clock.next_open == datetime(2026, 11, 23, 9, 30, tzinfo=NEW_YORK)


def test_calendar_has_holidays_and_early_closes(trading: TradingClient) -> None:
    days = trading.get_calendar(
        GetCalendarRequest(start=date(2026, 11, 23), end=date(2026, 11, 30))
    )
    assert all(isinstance(d, Calendar) for d in days)
    by_date = {d.date: d for d in days}
    assert date(2026, 11, 26) not in by_date  # Thanksgiving
    assert by_date[date(2026, 11, 27)].close == datetime(2026, 11, 27, 13, 0)  # early close
    assert by_date[date(2026, 11, 30)].open == datetime(2026, 11, 30, 9, 30)
    assert sorted(by_date) == [date(2026, 11, d) for d in (23, 24, 25, 27, 30)]


def test_assets_fractionable_settable_and_unknown_is_404(
    trading: TradingClient, sim: SimThread
) -> None:
    asset = trading.get_asset("SPY")
    assert isinstance(asset, Asset)
    assert asset.symbol == "SPY" and asset.tradable
    sim.set_asset("SPY", fractionable=False)
    assert trading.get_asset("SPY").fractionable is False
    sim.set_asset("SPY", fractionable=True)
    assert trading.get_asset("SPY").fractionable is True
    sim.set_unknown("ZZZZ")
    assert api_error(trading.get_asset, "ZZZZ").status_code == 404
    flags = {
        trading.get_asset(s).fractionable
        for s in (
            "SPY",
            "QQQ",
            "TQQQ",
            "SOXL",
            "UVXY",
            "TLT",
            "BIL",
            "GLD",
            "IWM",
            "TMF",
            "SQQQ",
            "AAPL",
            "MSFT",
            "KO",
            "XOM",
        )
    }
    assert flags == {True, False}  # most fractionable, some not (deterministic per seed)


def test_market_buy_fills_at_ask_and_books_position_and_cash(trading: TradingClient) -> None:
    order = trading.submit_order(market("SPY", 10, client_order_id="buy-1"))
    assert isinstance(order, Order) and order.client_order_id == "buy-1"
    done = filled(trading, order.id)
    price = Decimal(done.filled_avg_price)
    assert Decimal(done.filled_qty) == 10
    position = trading.get_open_position("SPY")
    assert isinstance(position, Position)
    assert Decimal(position.qty) == 10
    assert Decimal(position.avg_entry_price) == price
    assert Decimal(trading.get_account().cash) == Decimal(100000) - 10 * price
    assert [p.symbol for p in trading.get_all_positions()] == ["SPY"]


def test_notional_and_fractional_orders(trading: TradingClient, sim: SimThread) -> None:
    sim.set_asset("QQQ", fractionable=True)
    order = trading.submit_order(market("QQQ", notional=1000.5))
    done = filled(trading, order.id)
    qty = Decimal(done.filled_qty)
    assert qty != qty.to_integral_value()
    assert qty * Decimal(done.filled_avg_price) <= Decimal("1000.5")
    frac = filled(trading, trading.submit_order(market("QQQ", 1.25)).id)
    assert Decimal(frac.filled_qty) == Decimal("1.25")
    assert Decimal(trading.get_open_position("QQQ").qty) == qty + Decimal("1.25")


def test_fractional_on_non_fractionable_is_422(trading: TradingClient, sim: SimThread) -> None:
    sim.set_asset("KO", fractionable=False)
    err = api_error(trading.submit_order, market("KO", 1.5))
    assert err.status_code == 422


def test_client_order_id_lookup_and_uniqueness(trading: TradingClient) -> None:
    order = trading.submit_order(limit("SPY", 1, 1.0, client_order_id="cid-unique"))
    assert trading.get_order_by_client_id("cid-unique").id == order.id
    err = api_error(trading.submit_order, limit("SPY", 1, 1.0, client_order_id="cid-unique"))
    assert err.status_code == 422
    assert api_error(trading.get_order_by_client_id, "nope").status_code == 404


def test_list_orders_filters(trading: TradingClient) -> None:
    resting = trading.submit_order(limit("SPY", 1, 1.0))
    done = filled(trading, trading.submit_order(market("QQQ", 1)).id)
    open_ids = {o.id for o in trading.get_orders()}
    assert open_ids == {resting.id}
    closed = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.CLOSED))
    assert {o.id for o in closed} == {done.id}
    every = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, symbols=["QQQ"]))
    assert {o.id for o in every} == {done.id}
    sells = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, side=OrderSide.SELL))
    assert sells == []
    assert len(trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, limit=1))) == 1
    hour_ago = BASE_NOW - timedelta(hours=1)
    after = trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, after=hour_ago))
    assert len(after) == 2
    assert trading.get_orders(GetOrdersRequest(status=QueryOrderStatus.ALL, until=hour_ago)) == []


def test_replace_creates_new_order_and_marks_old_replaced(trading: TradingClient) -> None:
    old = trading.submit_order(limit("SPY", 5, 1.0))
    new = trading.replace_order_by_id(old.id, ReplaceOrderRequest(qty=3, limit_price=1.5))
    assert new.id != old.id
    assert str(new.replaces) == str(old.id)
    assert Decimal(new.qty) == 3 and Decimal(new.limit_price) == Decimal("1.5")
    # Replace and cancel resolve asynchronously (pending_replace, then replaced).
    wait_until(lambda: trading.get_order_by_id(old.id).status == OrderStatus.REPLACED)
    wait_until(lambda: trading.get_order_by_id(new.id).status == OrderStatus.NEW)
    again = trading.get_order_by_id(old.id)
    assert str(again.replaced_by) == str(new.id)
    unchanged = api_error(trading.replace_order_by_id, new.id, ReplaceOrderRequest(limit_price=1.5))
    assert (unchanged.status_code, unchanged.code) == (403, 40310000)


def test_cancel_one_all_and_errors(trading: TradingClient) -> None:
    a = trading.submit_order(limit("SPY", 1, 1.0))
    b = trading.submit_order(limit("QQQ", 1, 1.0))
    c = trading.submit_order(limit("IWM", 1, 1.0))
    for order in (a, b, c):  # POST answers pending_new; only live orders are pending_cancel
        wait_until(lambda o=order: trading.get_order_by_id(o.id).status == OrderStatus.NEW)
    assert trading.cancel_order_by_id(a.id) is None
    wait_until(lambda: trading.get_order_by_id(a.id).status == OrderStatus.CANCELED)
    err = api_error(trading.cancel_order_by_id, a.id)
    assert (err.status_code, err.code) == (422, 42210000)
    missing = api_error(trading.cancel_order_by_id, "00000000-0000-4000-8000-000000000000")
    assert (missing.status_code, missing.code) == (404, 40410000)
    responses = trading.cancel_orders()
    assert {str(r.id) for r in responses} == {str(b.id), str(c.id)}
    wait_until(lambda: trading.get_orders() == [])


def test_close_position_sells_everything(trading: TradingClient) -> None:
    filled(trading, trading.submit_order(market("IWM", 4)).id)
    half = trading.close_position("IWM", ClosePositionRequest(percentage="50"))
    assert Decimal(filled(trading, half.id).filled_qty) == 2
    rest = trading.close_position("IWM")
    assert isinstance(rest, Order) and rest.side == OrderSide.SELL
    filled(trading, rest.id)
    err = api_error(trading.get_open_position, "IWM")
    assert (err.status_code, err.code) == (404, 40410000)


def test_insufficient_buying_power(trading: TradingClient) -> None:
    err = api_error(trading.submit_order, market("SPY", 100000))
    assert (err.status_code, err.code) == (403, 40310000)
    assert "insufficient buying power" in err.message


def test_insufficient_qty_available(trading: TradingClient) -> None:
    filled(trading, trading.submit_order(market("SPY", 2)).id)
    err = api_error(trading.submit_order, market("SPY", 3, side="sell"))
    assert (err.status_code, err.code) == (403, 40310000)
    assert "insufficient qty available" in err.message


def test_wash_trade_detected(trading: TradingClient) -> None:
    filled(trading, trading.submit_order(market("SPY", 2)).id)
    trading.submit_order(limit("SPY", 1, 100000.0, side="sell"))
    err = api_error(trading.submit_order, market("SPY", 1))
    assert (err.status_code, err.code) == (403, 40310000)
    assert "wash trade" in err.message


def test_sub_penny_limit_is_422(trading: TradingClient) -> None:
    err = api_error(trading.submit_order, limit("SPY", 1, 10.123))
    assert err.status_code == 422
    assert "sub-penny" in err.message
    ok = trading.submit_order(limit("SPY", 1, 0.1234))  # sub-dollar prices take 4 decimals
    assert Decimal(ok.limit_price) == Decimal("0.1234")


def test_bad_keys_are_401(sim: SimThread) -> None:
    client = TradingClient("wrong", "keys", url_override=sim.trading_url)
    err = api_error(client.get_account)
    assert (err.status_code, err.code) == (401, 40110000)


def test_close_all_positions_and_list_assets(trading: TradingClient) -> None:
    filled(trading, trading.submit_order(market("SPY", 1)).id)
    filled(trading, trading.submit_order(market("QQQ", 2)).id)
    responses = trading.close_all_positions()
    assert {r.symbol for r in responses} == {"SPY", "QQQ"}
    wait_until(lambda: trading.get_all_positions() == [])
    assets = trading.get_all_assets()
    assert all(isinstance(a, Asset) for a in assets)
    assert {"SPY", "TQQQ", "SOXL", "UVXY"} <= {a.symbol for a in assets}


def test_order_for_unknown_symbol_is_422(trading: TradingClient, sim: SimThread) -> None:
    sim.set_unknown("GONE")
    err = api_error(trading.submit_order, market("GONE", 1))
    assert (err.status_code, err.code) == (422, 40010001)
    assert "not found" in err.message


def test_fractional_gtc_and_extended_hours_market_are_422(
    trading: TradingClient, sim: SimThread
) -> None:
    sim.set_asset("QQQ", fractionable=True)
    gtc = MarketOrderRequest(
        symbol="QQQ", qty=0.5, side=OrderSide.BUY, time_in_force=TimeInForce.GTC
    )
    assert api_error(trading.submit_order, gtc).status_code == 422
    extended = market("QQQ", 1, extended_hours=True)
    assert api_error(trading.submit_order, extended).status_code == 422
    ok = trading.submit_order(limit("QQQ", 1, 1.0, extended_hours=True))
    assert ok.extended_hours is True
