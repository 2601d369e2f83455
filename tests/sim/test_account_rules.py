"""Account rules and wire details: margin buying power, pattern-day-trader protection, a
trading halt, plain-decimal quantities on the stream, sub-dollar price increments and the
length of a client order id."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.requests import StockLatestQuoteRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import LimitOrderRequest, MarketOrderRequest
from websockets.sync.client import connect

from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, WAIT_S, TradeUpdates, wait_until


def order(
    symbol: str, qty: float, side: str = "buy", limit: float | None = None, **kw: Any
) -> MarketOrderRequest | LimitOrderRequest:
    common: dict[str, Any] = {
        "symbol": symbol,
        "qty": qty,
        "side": OrderSide(side),
        "time_in_force": TimeInForce.DAY,
        **kw,
    }
    if limit is None:
        return MarketOrderRequest(**common)
    return LimitOrderRequest(limit_price=limit, **common)


def filled(trading: TradingClient, req: Any) -> Any:
    placed = trading.submit_order(req)
    wait_until(lambda: trading.get_order_by_id(placed.id).status == OrderStatus.FILLED)
    return trading.get_order_by_id(placed.id)


def api_error(call: Any, *args: Any) -> APIError:
    with pytest.raises(APIError) as info:
        call(*args)
    return info.value


def test_margin_buying_power_exceeds_cash(trading: TradingClient, sim: SimThread) -> None:
    sim.reset(cash=10000)
    sim.set_price("KO", "50.00", spread_bps=2)
    account = trading.get_account()
    assert account.multiplier == "2"
    assert Decimal(account.buying_power) == 20000  # a client sizing buys from it spends margin
    assert Decimal(account.non_marginable_buying_power) == 10000
    done = filled(trading, order("KO", 300))  # $15,000 of stock on $10,000 of cash
    assert Decimal(trading.get_account().cash) == 10000 - 300 * Decimal(done.filled_avg_price)
    assert Decimal(trading.get_account().cash) < 0
    err = api_error(trading.submit_order, order("KO", 300))
    assert (err.status_code, err.code) == (403, 40310000)
    sim.configure(margin_multiplier=1)  # a cash account
    assert Decimal(trading.get_account().buying_power) == 0


def test_pattern_day_trader_protection(trading: TradingClient, sim: SimThread) -> None:
    sim.reset(cash=20000)
    sim.configure(pdt_protection=True)
    sim.set_price("XOM", "50.00", spread_bps=2)
    for _ in range(3):  # three round trips in one session: three day trades
        filled(trading, order("XOM", 2))
        filled(trading, order("XOM", 2, side="sell"))
    assert trading.get_account().daytrade_count == 3
    filled(trading, order("XOM", 2))
    err = api_error(trading.submit_order, order("XOM", 2, side="sell"))
    assert (err.status_code, err.code) == (403, 40310100)
    assert "pattern day trading" in err.message
    sim.set_clock(now=BASE_NOW.replace(day=19))  # a sell the next day is no day trade
    filled(trading, order("XOM", 2, side="sell"))


def test_trading_halt(
    trading: TradingClient,
    data: StockHistoricalDataClient,
    sim: SimThread,
    updates: TradeUpdates,
) -> None:
    sim.set_price("KO", "60.00", spread_bps=20)
    resting = trading.submit_order(order("KO", 2, limit=59.0))
    updates.wait_event(resting.id, "new")
    sim.halt("KO")
    before = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="KO"))["KO"]
    sim.set_price("KO", "55.00")  # the price runs through the limit, but KO is halted
    sim.advance(60)
    after = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="KO"))["KO"]
    assert (after.bid_price, after.ask_price) == (before.bid_price, before.ask_price)  # frozen
    assert trading.get_order_by_id(resting.id).status == OrderStatus.NEW  # open, not filled
    err = api_error(trading.submit_order, order("KO", 1))
    assert err.status_code == 422 and "halted" in err.message
    sim.halt("KO", halted=False)
    updates.wait_event(resting.id, "fill")


def test_stream_quantities_are_plain_decimals(trading: TradingClient, sim: SimThread) -> None:
    """Read off the raw wire: alpaca-py would turn "1E+2" into 100.0 and hide the bug."""
    with connect(sim.stream_url, open_timeout=WAIT_S) as ws:
        keys = {"key_id": sim.api_key, "secret_key": sim.secret_key}
        ws.send(json.dumps({"action": "authenticate", "data": keys}))
        assert json.loads(ws.recv(WAIT_S))["data"]["status"] == "authorized"
        ws.send(json.dumps({"action": "listen", "data": {"streams": ["trade_updates"]}}))
        ws.recv(WAIT_S)
        trading.submit_order(order("BIL", 100))
        while True:
            data = json.loads(ws.recv(WAIT_S))["data"]
            if data["event"] == "fill":
                break
    assert (data["qty"], data["position_qty"], data["order"]["filled_qty"]) == ("100",) * 3


def test_sub_dollar_assets_tick_in_hundredths_of_a_cent(
    trading: TradingClient, sim: SimThread
) -> None:
    sim.set_price("PENY", "0.4512")
    assert trading.get_asset("PENY").price_increment == pytest.approx(0.0001)
    assert trading.get_asset("SPY").price_increment == pytest.approx(0.01)


def test_client_order_id_is_at_most_128_characters(trading: TradingClient) -> None:
    trading.submit_order(order("SPY", 1, limit=1.0, client_order_id="c" * 128))
    err = api_error(trading.submit_order, order("SPY", 1, limit=1.0, client_order_id="c" * 129))
    assert err.status_code == 422 and "128" in err.message
