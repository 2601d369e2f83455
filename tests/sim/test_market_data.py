"""Market data through the real StockHistoricalDataClient and StockDataStream."""

from __future__ import annotations

import itertools
import threading
from datetime import date, datetime
from decimal import Decimal

import pytest
from alpaca.data.enums import Adjustment
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.data.live import StockDataStream
from alpaca.data.models import Bar, Quote, Snapshot, Trade
from alpaca.data.requests import (
    StockBarsRequest,
    StockLatestQuoteRequest,
    StockLatestTradeRequest,
    StockSnapshotRequest,
)
from alpaca.data.timeframe import TimeFrame

from alchemiser.market_calendar import NEW_YORK, get_calendar
from alchemiser.sim import SimThread
from tests.sim.conftest import BASE_NOW, WAIT_S, fast_client

HISTORY_START = datetime(2000, 1, 1, tzinfo=NEW_YORK)


def bars(
    data: StockHistoricalDataClient,
    symbols: list[str],
    start: datetime = HISTORY_START,
    end: datetime | None = None,
    adjustment: Adjustment = Adjustment.ALL,
) -> dict[str, list[Bar]]:
    request = StockBarsRequest(
        symbol_or_symbols=symbols,
        timeframe=TimeFrame.Day,
        start=start,
        end=end,
        adjustment=adjustment,
    )
    return dict(data.get_stock_bars(request).data)


def sessions(start: date, end_exclusive: date) -> list[date]:
    return [d for d in get_calendar().days if start <= d < end_exclusive]


def test_bars_paginate_across_pages_for_several_symbols(data: StockHistoricalDataClient) -> None:
    symbols = ["SPY", "TQQQ", "BIL"]  # 3 × ~6,700 bars: more than one 10,000-bar page
    got = bars(data, symbols)
    expected_days = sessions(date(2000, 1, 3), BASE_NOW.date())  # completed sessions only
    assert sorted(got) == sorted(symbols)
    for symbol in symbols:
        days = [b.timestamp.astimezone(NEW_YORK).date() for b in got[symbol]]
        assert days == expected_days
        assert all(
            b.low <= min(b.open, b.close) and b.high >= max(b.open, b.close) for b in got[symbol]
        )
    assert sum(len(v) for v in got.values()) > 10000


def test_bars_for_a_range_and_descending_limit(data: StockHistoricalDataClient) -> None:
    start, end = datetime(2026, 11, 2, tzinfo=NEW_YORK), datetime(2026, 11, 13, tzinfo=NEW_YORK)
    got = bars(data, ["QQQ"], start, end)["QQQ"]
    assert [b.timestamp.astimezone(NEW_YORK).date() for b in got] == sessions(
        date(2026, 11, 2), date(2026, 11, 14)
    )
    newest = data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols="QQQ", timeframe=TimeFrame.Day, start=start, limit=2, sort="desc"
        )
    )["QQQ"]
    assert [b.timestamp.astimezone(NEW_YORK).date() for b in newest] == [
        date(2026, 11, 17),
        date(2026, 11, 16),
    ]


def test_today_bar_appears_after_the_close_and_matches_the_last_trade(
    data: StockHistoricalDataClient, sim: SimThread
) -> None:
    today = BASE_NOW.date()
    before = bars(data, ["IWM"], datetime(2026, 11, 10, tzinfo=NEW_YORK))["IWM"]
    assert before[-1].timestamp.astimezone(NEW_YORK).date() < today
    sim.set_clock(now=datetime(2026, 11, 18, 15, 59, 59, 900000, tzinfo=NEW_YORK), speed=0)
    near_close = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="IWM"))
    sim.set_clock(now=datetime(2026, 11, 18, 16, 0, 0, tzinfo=NEW_YORK), speed=0)
    at_close = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="IWM"))
    sim.set_clock(now=datetime(2026, 11, 18, 17, 0, tzinfo=NEW_YORK))
    after = bars(data, ["IWM"], datetime(2026, 11, 10, tzinfo=NEW_YORK), adjustment=Adjustment.RAW)
    last = after["IWM"][-1]
    assert last.timestamp.astimezone(NEW_YORK).date() == today
    assert last.close == at_close["IWM"].price
    assert abs(near_close["IWM"].price - last.close) / last.close < 0.01  # continuous path


def test_same_seed_same_history_other_seed_differs(
    data: StockHistoricalDataClient, sim: SimThread
) -> None:
    start = datetime(2024, 1, 1, tzinfo=NEW_YORK)
    mine = bars(data, ["SOXL", "AAPL"], start)
    with (
        SimThread(seed=sim.server.config.seed, now=BASE_NOW) as twin,
        SimThread(seed=sim.server.config.seed + 1, now=BASE_NOW) as other,
    ):
        twin_data = fast_client(
            StockHistoricalDataClient(twin.api_key, twin.secret_key, url_override=twin.data_url)
        )
        other_data = fast_client(
            StockHistoricalDataClient(other.api_key, other.secret_key, url_override=other.data_url)
        )
        assert bars(twin_data, ["SOXL", "AAPL"], start) == mine
        assert bars(other_data, ["SOXL", "AAPL"], start) != mine


def test_leveraged_etfs_move_several_times_the_market(data: StockHistoricalDataClient) -> None:
    got = bars(data, ["SPY", "TQQQ", "SOXL", "UVXY"], datetime(2016, 1, 1, tzinfo=NEW_YORK))

    def vol(symbol: str) -> float:
        closes = [b.close for b in got[symbol]]
        moves = [abs(b / a - 1) for a, b in itertools.pairwise(closes)]
        return sum(moves) / len(moves)

    for leveraged in ("TQQQ", "SOXL", "UVXY"):
        assert vol(leveraged) > 2.5 * vol("SPY")


def test_split_adjusts_past_bars(data: StockHistoricalDataClient, sim: SimThread) -> None:
    start = datetime(2026, 11, 2, tzinfo=NEW_YORK)
    raw_before = bars(data, ["AAPL"], start, adjustment=Adjustment.RAW)["AAPL"]
    sim.corporate_action("AAPL", date(2026, 11, 10), split_ratio=4)
    adjusted = bars(data, ["AAPL"], start, adjustment=Adjustment.SPLIT)["AAPL"]
    raw_after = bars(data, ["AAPL"], start, adjustment=Adjustment.RAW)["AAPL"]
    for old, adj, raw in zip(raw_before, adjusted, raw_after, strict=True):
        day = old.timestamp.astimezone(NEW_YORK).date()
        if day < date(2026, 11, 10):
            assert adj.close == pytest.approx(old.close / 4, abs=1e-4)
            assert raw.close == old.close
            assert adj.volume == pytest.approx(old.volume * 4)
        else:
            assert adj.close == pytest.approx(raw.close, abs=1e-4)
            assert raw.close == pytest.approx(old.close / 4, abs=0.006)


def test_dividend_adjusts_only_with_dividend_adjustment(
    data: StockHistoricalDataClient, sim: SimThread
) -> None:
    start = datetime(2026, 11, 2, tzinfo=NEW_YORK)
    raw = bars(data, ["KO"], start, adjustment=Adjustment.RAW)["KO"]
    sim.corporate_action("KO", date(2026, 11, 10), dividend=1.0)
    adjusted = bars(data, ["KO"], start, adjustment=Adjustment.ALL)["KO"]
    split_only = bars(data, ["KO"], start, adjustment=Adjustment.SPLIT)["KO"]
    first = raw[0].timestamp.astimezone(NEW_YORK).date()
    assert first < date(2026, 11, 10)
    assert adjusted[0].close < raw[0].close
    assert split_only[0].close == pytest.approx(raw[0].close)
    assert adjusted[-1].close == pytest.approx(raw[-1].close)


def test_unknown_ticker_gets_no_bars(data: StockHistoricalDataClient, sim: SimThread) -> None:
    sim.set_unknown("DEAD")
    got = data.get_stock_bars(
        StockBarsRequest(
            symbol_or_symbols=["SPY", "DEAD"],
            timeframe=TimeFrame.Day,
            start=datetime(2026, 11, 2, tzinfo=NEW_YORK),
        )
    )
    assert "SPY" in got.data
    with pytest.raises(KeyError):
        got["DEAD"]
    quotes = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=["SPY", "DEAD"]))
    assert set(quotes) == {"SPY"}


def test_latest_quote_trade_and_snapshot(data: StockHistoricalDataClient, sim: SimThread) -> None:
    quotes = data.get_stock_latest_quote(StockLatestQuoteRequest(symbol_or_symbols=["SPY", "TQQQ"]))
    for quote in quotes.values():
        assert isinstance(quote, Quote)
        assert 0 < quote.bid_price < quote.ask_price
        spread_bps = (quote.ask_price - quote.bid_price) / quote.bid_price * 10000
        assert spread_bps < 25  # a few basis points (plus tick rounding)
    trades = data.get_stock_latest_trade(StockLatestTradeRequest(symbol_or_symbols="SPY"))
    snaps = data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols=["SPY", "BIL"]))
    snap = snaps["SPY"]
    assert isinstance(snap, Snapshot)
    assert snap.latest_trade.price == trades["SPY"].price
    assert snap.latest_quote.bid_price <= snap.latest_trade.price <= snap.latest_quote.ask_price
    assert snap.previous_daily_bar.timestamp.astimezone(NEW_YORK).date() == date(2026, 11, 17)
    sim.set_price("SPY", Decimal("123.45"))
    again = data.get_stock_snapshot(StockSnapshotRequest(symbol_or_symbols="SPY"))
    assert again["SPY"].latest_trade.price == 123.45


def test_data_stream_delivers_msgpack_quotes(sim: SimThread) -> None:
    stream = StockDataStream(sim.api_key, sim.secret_key, url_override=sim.data_stream_url)
    received: list[Quote] = []
    trades: list[Trade] = []
    got_both = threading.Event()

    def check() -> None:
        if {q.symbol for q in received} >= {"SPY", "SOXL"} and trades:
            got_both.set()

    async def on_quote(quote: Quote) -> None:
        received.append(quote)
        check()

    async def on_trade(trade: Trade) -> None:
        trades.append(trade)
        check()

    stream.subscribe_quotes(on_quote, "SPY", "SOXL")
    stream.subscribe_trades(on_trade, "QQQ")
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        assert got_both.wait(WAIT_S)
    finally:
        stream.stop()
        thread.join(10)
    spy = next(q for q in received if q.symbol == "SPY")
    assert spy.timestamp.tzinfo is not None
    assert spy.bid_price < spy.ask_price
    assert trades[0].symbol == "QQQ" and trades[0].price > 0


def test_in_virtual_time_the_data_stream_moves_with_the_clock(sim: SimThread) -> None:
    sim.set_clock(now=BASE_NOW, virtual=True)
    stream = StockDataStream(sim.api_key, sim.secret_key, url_override=sim.data_stream_url)
    received: list[Quote] = []
    arrived = threading.Condition()

    async def on_quote(quote: Quote) -> None:
        with arrived:
            received.append(quote)
            arrived.notify_all()

    stream.subscribe_quotes(on_quote, "SPY")
    thread = threading.Thread(target=stream.run, daemon=True)
    thread.start()
    try:
        with arrived:  # the subscription's first quote, at the frozen time
            assert arrived.wait_for(lambda: received, WAIT_S)
        sim.advance(600)
        later = BASE_NOW.replace(minute=10)
        with arrived:
            assert arrived.wait_for(lambda: received[-1].timestamp == later, WAIT_S)
        assert {q.timestamp for q in received} == {BASE_NOW, later}  # no pushes in between
    finally:
        stream.stop()
        sim.drop_websockets()  # ends the client's receive wait at once
        thread.join(10)
