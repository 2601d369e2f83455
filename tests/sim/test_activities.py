"""GET /v2/account/activities through alpaca-py's TradingClient.get: FILL, FEE, DIV, SPLIT,
with the contract's shapes, filters and paging (see docs/simulator.md)."""

from __future__ import annotations

import re
from datetime import date, datetime
from decimal import ROUND_CEILING, Decimal
from typing import Any

import pytest
from alpaca.common.exceptions import APIError
from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, OrderStatus, TimeInForce
from alpaca.trading.requests import MarketOrderRequest

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimThread
from tests.sim.conftest import wait_until

HEX = "[0-9a-f]"
ID_FORMAT = re.compile(
    rf"^\d{{17}}::{HEX}{{8}}-{HEX}{{4}}-4{HEX}{{3}}-[89ab]{HEX}{{3}}-{HEX}{{12}}$"
)
AFTER_CLOSE = datetime(2026, 11, 18, 16, 0, 1, tzinfo=NEW_YORK)
NEXT_OPEN = datetime(2026, 11, 19, 9, 30, 1, tzinfo=NEW_YORK)


def activities(trading: TradingClient, **params: str) -> list[dict[str, Any]]:
    rows = trading.get("/account/activities", params)
    assert isinstance(rows, list)
    return rows


def trade(trading: TradingClient, symbol: str, qty: int, side: str) -> str:
    request = MarketOrderRequest(
        symbol=symbol, qty=qty, side=OrderSide(side), time_in_force=TimeInForce.DAY
    )
    order = trading.submit_order(request)
    wait_until(lambda: trading.get_order_by_id(order.id).status == OrderStatus.FILLED)
    return str(order.id)


def test_fills_and_end_of_day_fee(trading: TradingClient, sim: SimThread) -> None:
    sim.set_price("SPY", Decimal("500.00"), spread_bps=2)
    bought = trade(trading, "SPY", 10, "buy")
    sold = trade(trading, "SPY", 4, "sell")
    fills = activities(trading, activity_types="FILL", direction="asc")
    assert [f["order_id"] for f in fills] == [bought, sold]
    sell = fills[1]
    assert set(sell) == {
        "id",
        "activity_type",
        "transaction_time",
        "type",
        "price",
        "qty",
        "side",
        "symbol",
        "leaves_qty",
        "order_id",
        "cum_qty",
        "order_status",
    }
    assert ID_FORMAT.match(sell["id"])
    assert re.match(r"^2026-11-18T16:\d\d:\d\d\.\d{3}Z$", sell["transaction_time"])
    assert (sell["type"], sell["side"], sell["qty"], sell["cum_qty"]) == ("fill", "sell", "4", "4")
    assert (sell["leaves_qty"], sell["order_status"]) == ("0", "filled")
    assert activities(trading, activity_types="FEE") == []  # fees post at the close

    cash_before = Decimal(trading.get_account().cash)
    sim.set_clock(now=AFTER_CLOSE)
    fees = activities(trading, activity_types="FEE")
    proceeds = Decimal(sell["price"]) * 4
    expected = (proceeds * Decimal("0.0000278") + 4 * Decimal("0.000166")).quantize(
        Decimal("0.01"), rounding=ROUND_CEILING
    )
    assert [(f["symbol"], f["qty"], f["date"], f["net_amount"]) for f in fees] == [
        ("SPY", "4", "2026-11-18", str(-expected))
    ]
    assert fees[0]["description"] == "REG/TAF fee" and fees[0]["status"] == "executed"
    assert Decimal(trading.get_account().cash) == cash_before - expected
    sim.set_clock(now=datetime(2026, 11, 19, 16, 0, 1, tzinfo=NEW_YORK))
    assert len(activities(trading, activity_types="FEE")) == 1  # posted once


def test_dividend_and_split_post_on_the_ex_date(trading: TradingClient, sim: SimThread) -> None:
    trade(trading, "KO", 10, "buy")
    trade(trading, "XOM", 5, "buy")
    sim.corporate_action("KO", date(2026, 11, 19), dividend=0.51)
    sim.corporate_action("XOM", date(2026, 11, 19), split_ratio=0.1)  # 1-for-10 reverse
    assert activities(trading, activity_types="DIV,SPLIT") == []  # not yet ex-date
    cash = Decimal(trading.get_account().cash)
    sim.set_clock(now=NEXT_OPEN)
    div, split = activities(trading, activity_types="DIV,SPLIT", direction="asc")
    assert div["activity_type"] == "DIV" and split["activity_type"] == "SPLIT"
    assert (div["symbol"], div["date"], div["qty"], div["per_share_amount"]) == (
        "KO",
        "2026-11-19",
        "10",
        "0.51",
    )
    assert div["net_amount"] == "5.1" and div["status"] == "executed"
    assert Decimal(trading.get_account().cash) == cash + Decimal("5.1")
    assert (split["symbol"], split["qty"], split["per_share_amount"], split["net_amount"]) == (
        "XOM",
        "-4.5",
        "0.1",
        "0",
    )
    assert Decimal(sim.state()["positions"]["XOM"]) == Decimal("0.5")
    sim.set_clock(now=datetime(2026, 11, 20, 10, 0, tzinfo=NEW_YORK))
    assert len(activities(trading, activity_types="DIV,SPLIT")) == 2  # applied once


def test_filters_paging_and_errors(trading: TradingClient, sim: SimThread) -> None:
    for _ in range(3):
        trade(trading, "IWM", 1, "buy")
    sim.set_clock(now=NEXT_OPEN)
    trade(trading, "IWM", 2, "sell")
    every = activities(trading)
    assert [r["activity_type"] for r in every] == ["FILL"] * 4  # desc by default
    assert every == sorted(every, key=lambda r: r["id"], reverse=True)
    first = activities(trading, page_size="3")
    second = activities(trading, page_size="3", page_token=first[-1]["id"])
    assert first + second == every
    ascending = activities(trading, direction="asc", page_size="2")
    assert ascending == every[::-1][:2]
    assert len(activities(trading, date="2026-11-18")) == 3
    assert len(activities(trading, after="2026-11-18")) == 1
    assert len(activities(trading, until="2026-11-18")) == 3
    assert len(activities(trading, after="2026-11-19T09:30:00-05:00")) == 1
    assert len(activities(trading, until="2026-11-19T09:00:00-05:00")) == 3
    for bad in ({"activity_types": "NOPE"}, {"page_size": "101"}, {"direction": "up"}):
        with pytest.raises(APIError) as info:
            activities(trading, **bad)
        assert info.value.status_code == 422
