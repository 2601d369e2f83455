"""The market model on its own: the intraday path ends at the bar's close; spreads are small."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from alchemiser.market_calendar import NEW_YORK, get_calendar
from alchemiser.sim.market import MarketModel

START = date(2000, 1, 3)


def model(seed: int = 11) -> MarketModel:
    return MarketModel(seed, get_calendar(), START)


def test_intraday_price_starts_at_open_and_ends_at_close() -> None:
    m = model()
    day = date(2026, 11, 18)
    index = m.index_of_day(day)
    history = m.history("TQQQ")
    open_epoch = datetime(2026, 11, 18, 9, 30, tzinfo=NEW_YORK).timestamp()
    close_epoch = datetime(2026, 11, 18, 16, 0, tzinfo=NEW_YORK).timestamp()
    assert m.mid("TQQQ", open_epoch) == Decimal(str(history.open[index]))
    assert m.mid("TQQQ", close_epoch) == Decimal(str(history.close[index]))
    assert m.mid("TQQQ", close_epoch + 3600) == Decimal(str(history.close[index]))
    # Before the next open, the last trade is still that close.
    next_morning = datetime(2026, 11, 19, 8, 0, tzinfo=NEW_YORK).timestamp()
    assert m.mid("TQQQ", next_morning) == Decimal(str(history.close[index]))
    path = {m.mid("TQQQ", open_epoch + k * 600) for k in range(1, 39)}
    assert len(path) > 10  # the price moves during the day


def test_early_close_day_ends_at_one_pm() -> None:
    m = model()
    index = m.index_of_day(date(2026, 11, 27))
    one_pm = datetime(2026, 11, 27, 13, 0, tzinfo=NEW_YORK).timestamp()
    assert m.mid("SPY", one_pm) == Decimal(str(m.history("SPY").close[index]))


def test_quotes_straddle_the_price_with_a_small_spread() -> None:
    m = model()
    epoch = datetime(2026, 11, 18, 12, 0, tzinfo=NEW_YORK).timestamp()
    for symbol in ("SPY", "QQQ", "SOXL", "BIL", "XYZW"):
        q = m.quote(symbol, epoch)
        assert q.bid <= q.last <= q.ask
        assert q.bid < q.ask
        assert (q.ask - q.bid) / q.last < Decimal("0.003")


def test_history_is_a_function_of_seed_and_ticker_only() -> None:
    a, b, c = model(5), model(5), model(6)
    for symbol in ("SPY", "SOXL"):
        assert (a.history(symbol).close == b.history(symbol).close).all()
        assert not (a.history(symbol).close == c.history(symbol).close).all()
    assert not (a.history("SPY").close == a.history("QQQ").close).all()
