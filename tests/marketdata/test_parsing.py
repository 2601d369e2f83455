"""Alpaca's raw JSON → store rows and live prices (pure functions)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

from alchemiser.marketdata.alpaca import bar_date, bar_rows, live_price

QUOTE = {"t": "2026-11-18T20:29:59.123456789Z", "bp": 100.01, "ap": 100.04, "bs": 1, "as": 2}
TRADE = {"t": "2026-11-18T20:30:00Z", "p": 100.02, "s": 100}


def test_a_daily_bar_is_dated_by_its_new_york_session() -> None:
    assert bar_date("2026-11-18T05:00:00Z") == date(2026, 11, 18)  # EST midnight
    assert bar_date("2026-07-01T04:00:00Z") == date(2026, 7, 1)  # EDT midnight


def test_bars_after_through_are_dropped() -> None:
    bars = [
        {"t": "2026-11-17T05:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.5, "v": 10},
        {"t": "2026-11-18T05:00:00Z", "o": 1, "h": 2, "l": 0.5, "c": 1.7, "v": 10},
    ]
    assert bar_rows("SPY", bars, date(2026, 11, 17)) == [
        ("SPY", date(2026, 11, 17), 1.0, 2.0, 0.5, 1.5, 10.0)
    ]


def test_live_price_prefers_the_latest_trade_then_the_quote_mid() -> None:
    traded = live_price("SPY", {"latestTrade": TRADE, "latestQuote": QUOTE})
    quoted = live_price("SPY", {"latestTrade": None, "latestQuote": QUOTE})

    assert traded is not None and quoted is not None
    assert (traded.price, traded.source) == (Decimal("100.02"), "trade")
    assert traded.at == datetime(2026, 11, 18, 20, 30, tzinfo=UTC)
    assert (quoted.price, quoted.source) == (Decimal("100.025"), "quote_mid")
    assert quoted.at == datetime(2026, 11, 18, 20, 29, 59, 123456, tzinfo=UTC)
    assert live_price("SPY", {"latestQuote": {**QUOTE, "bp": 0}}) is None
    assert live_price("SPY", {}) is None
