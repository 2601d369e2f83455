"""Realistic quotes: spreads in ticks tied to price and liquidity that move during the day,
and quotes set outright (one-sided, locked, crossed, stale) through the real clients."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.models import Quote
from alpaca.data.requests import StockLatestQuoteRequest
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, TradeUpdates

CENT = Decimal("0.01")
OPEN = BASE_NOW.replace(hour=9, minute=30).timestamp()
MINUTES = 390


def spreads(sim: SimThread, symbol: str) -> list[Decimal]:
    """Its spread at each minute of the BASE_NOW session."""

    def all_day(s: object) -> list[Decimal]:
        market = sim.server.sim.market
        quotes = [market.quote(symbol, OPEN + 60 * m + 1) for m in range(MINUTES)]
        return [q.ask - q.bid for q in quotes]

    return sim.call(all_day)


def test_liquid_etfs_are_a_cent_wide_most_of_the_time(sim: SimThread) -> None:
    for symbol in ("SPY", "QQQ", "TQQQ", "SOXL", "TLT"):
        widths = spreads(sim, symbol)
        assert all(w >= CENT and w % CENT == 0 for w in widths)
        assert widths.count(CENT) / len(widths) > 0.75
        assert max(widths) > CENT  # but not always


def test_other_tickers_are_cents_to_tenths_wide_and_move_during_the_day(sim: SimThread) -> None:
    typical = {}
    opening = midday = Decimal(0)
    prices = {"AAPL": 190, "KO": 60, "XOM": 110, "MSFT": 420, "NVDA": 120, "PLTR": 25, "ABCD": 8}
    for symbol, price in prices.items():
        sim.set_price(symbol, price)  # the spread model still decides the width
        widths = spreads(sim, symbol)
        assert len(set(widths)) >= 2  # the spread moves during the day
        opening += sum(widths[:15])
        midday += sum(widths[180:195])
        typical[symbol] = sorted(widths)[len(widths) // 2]
    assert opening > midday  # wider just after the open
    assert min(typical.values()) <= Decimal("0.05")
    assert Decimal("0.05") < max(typical.values()) <= Decimal("1.00")


def latest(data: StockHistoricalDataClient, symbol: str) -> Quote:
    result: Quote = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=symbol))[
        symbol
    ]
    return result


def market(symbol: str, qty: int, side: str) -> MarketOrderRequest:
    return MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide(side), time_in_force=TimeInForce.DAY
    )


def test_quotes_set_outright(
    trading: TradingClient,
    data: StockHistoricalDataClient,
    sim: SimThread,
    updates: TradeUpdates,
) -> None:
    sim.set_quote("KO", bid="60.10", ask="60.05")  # crossed: a buy pays the low ask
    bought = trading.submit_order(market("KO", 5, "buy"))
    assert 60.05 <= updates.wait_event(bought.id, "fill").price < 60.10
    sim.set_quote("KO", bid="60.07", ask="60.07")  # locked
    q = latest(data, "KO")
    assert q.bid_price == q.ask_price == 60.07
    sim.set_quote("KO", bid="0", ask="60.20")  # one-sided: nobody to sell to
    sold = trading.submit_order(market("KO", 5, "sell"))
    updates.wait_event(sold.id, "new")
    sim.advance(30)
    assert trading.get_order_by_id(sold.id).status == OrderStatus.NEW
    assert latest(data, "KO").bid_price == 0
    sim.set_quote("KO", bid="60.00", ask="60.02", stale_seconds=120)  # bids return, 2 min old
    assert 59.95 < updates.wait_event(sold.id, "fill").price <= 60.00
    stamp = latest(data, "KO").timestamp
    now = trading.get_clock().timestamp
    assert now - stamp >= timedelta(seconds=120)
    sim.set_quote("KO")  # cleared: the model quotes again
    assert latest(data, "KO").timestamp > stamp
