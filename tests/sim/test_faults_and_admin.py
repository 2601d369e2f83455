"""Fault injection and the admin HTTP API, seen through the real clients."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
import requests
from alpaca.common.exceptions import APIError
from alpaca.data.enums import Adjustment
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.models import Bar
from alpaca.data.requests import StockBarsRequest, StockLatestQuoteRequest, StockLatestTradeRequest
from alpaca.data.timeframe import TimeFrame
from alpaca.trading.client import TradingClient

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.sim.conftest import fast_client

ADMIN_TIMEOUT_S = 10


def admin(sim: SimThread, path: str, body: dict[str, object] | None = None) -> dict[str, object]:
    url = f"{sim.trading_url}/_sim/{path}"
    if body is None:
        response = requests.get(url, timeout=ADMIN_TIMEOUT_S)
    else:
        response = requests.post(url, json=body, timeout=ADMIN_TIMEOUT_S)
    response.raise_for_status()
    result: dict[str, object] = response.json()
    return result


def test_client_retries_429_and_succeeds(trading: TradingClient, sim: SimThread) -> None:
    sim.set_faults(status=429, count=2)
    assert trading.get_account().status == "ACTIVE"  # alpaca-py's own retry (3 attempts)
    assert sim.call(lambda s: s.broker.faults.summary()["error_count"]) == 0


def test_too_many_429s_surface_as_api_error(trading: TradingClient, sim: SimThread) -> None:
    sim.set_faults(status=429, count=10)
    with pytest.raises(APIError) as info:
        trading.get_clock()
    assert info.value.status_code == 429
    assert info.value.code == 42910000
    sim.clear_faults()
    assert trading.get_clock() is not None


def test_500_is_not_retried_and_data_api_is_affected_too(
    data: StockHistoricalDataClient, sim: SimThread
) -> None:
    sim.set_faults(status=500, count=1)
    with pytest.raises(APIError) as info:
        data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="SPY"))
    assert info.value.status_code == 500
    assert "SPY" in data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="SPY"))


def test_latency_injection_trips_a_client_timeout(sim: SimThread) -> None:
    client = TradingClient(sim.api_key, sim.secret_key, url_override=sim.trading_url)
    session = client._session
    original = session.request
    session.request = lambda *a, **kw: original(*a, **{**kw, "timeout": 0.2})
    sim.set_faults(latency_ms=3000)
    try:
        with pytest.raises(requests.exceptions.ReadTimeout):
            client.get_clock()
    finally:
        sim.clear_faults()
    assert client.get_clock() is not None


def daily_bars(
    data: StockHistoricalDataClient, symbol: str, start: datetime, adjustment: Adjustment
) -> list[Bar]:
    request = StockBarsRequest(
        symbol_or_symbols=symbol, timeframe=TimeFrame.Day, start=start, adjustment=adjustment
    )
    result: list[Bar] = data.get_stock_bars(request).data[symbol]
    return result


def test_admin_http_clock_fund_price_and_reset(
    trading: TradingClient, data: StockHistoricalDataClient, sim: SimThread
) -> None:
    state = admin(sim, "clock", {"now": "2026-11-23T10:00:00-05:00", "speed": 0})
    assert state["speed"] == 0
    assert trading.get_clock().timestamp == datetime(2026, 11, 23, 10, 0, tzinfo=NEW_YORK)
    admin(sim, "clock", {"advance_seconds": 3600})
    assert trading.get_clock().timestamp == datetime(2026, 11, 23, 11, 0, tzinfo=NEW_YORK)
    admin(sim, "fund", {"amount": "2500.50"})
    assert Decimal(trading.get_account().cash) == Decimal("102500.50")
    admin(sim, "price", {"symbol": "SPY", "price": "432.10", "spread_bps": 10})
    trade = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="SPY"))["SPY"]
    assert trade.price == pytest.approx(432.10)
    quote = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols="SPY"))["SPY"]
    assert quote.bid_price < 432.10 < quote.ask_price
    assert quote.ask_price - quote.bid_price == pytest.approx(432.10 * 10 / 10_000, abs=0.02)
    admin(sim, "reset", {"cash": "5000"})
    assert Decimal(trading.get_account().cash) == Decimal(5000)
    assert admin(sim, "state")["cash"] == "5000"


def test_admin_http_faults_assets_and_unknown(
    trading: TradingClient, data: StockHistoricalDataClient, sim: SimThread
) -> None:
    admin(sim, "faults", {"status": 500, "count": 1})
    with pytest.raises(APIError):
        trading.get_account()
    admin(sim, "asset", {"symbol": "NVDA", "fractionable": False, "tradable": True})
    assert trading.get_asset("NVDA").fractionable is False
    admin(sim, "unknown", {"symbol": "NVDA"})
    with pytest.raises(APIError) as info:
        trading.get_asset("NVDA")
    assert info.value.status_code == 404
    admin(sim, "config", {"fill_wait_scale": 0.002})
    assert sim.state()["fill_wait_scale"] == 0.002
    start = datetime(2026, 11, 2, tzinfo=NEW_YORK)
    raw = daily_bars(data, "KO", start, Adjustment.RAW)
    admin(sim, "corporate_action", {"symbol": "KO", "date": "2026-11-10", "split_ratio": 2})
    adjusted = daily_bars(data, "KO", start, Adjustment.SPLIT)
    raw_after = daily_bars(data, "KO", start, Adjustment.RAW)
    action_day = date(2026, 11, 10)
    days = [b.timestamp.astimezone(NEW_YORK).date() for b in adjusted]
    assert days[0] < action_day <= days[-1]
    for old, adj, new, day in zip(raw, adjusted, raw_after, days, strict=True):
        if day < action_day:  # traded before the 2-for-1 split: adjusted bars are halved
            assert new.close == old.close
            assert adj.close == pytest.approx(old.close / 2, abs=1e-4)
        else:  # traded after it: raw prices are post-split already, adjusted equals raw
            assert new.close == pytest.approx(old.close / 2, abs=0.006)
            assert adj.close == pytest.approx(new.close, abs=1e-4)
    response = requests.delete(f"{sim.trading_url}/_sim/faults", timeout=ADMIN_TIMEOUT_S)
    assert response.json()["error_count"] == 0


def test_unknown_route_answers_json_404(sim: SimThread) -> None:
    client = fast_client(TradingClient(sim.api_key, sim.secret_key, url_override=sim.trading_url))
    response = client._session.get(
        f"{sim.trading_url}/v2/nothing-here",
        headers={"APCA-API-KEY-ID": sim.api_key, "APCA-API-SECRET-KEY": sim.secret_key},
    )
    assert response.status_code == 404
    assert response.json()["code"] == 40410000
