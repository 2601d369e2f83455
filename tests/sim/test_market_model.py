"""The market model on its own: the intraday path ends at the bar's close; spreads are small."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from alchemiser.market_calendar import NEW_YORK, get_calendar
from alchemiser.sim.market import MarketModel
from alchemiser.sim.orders import limit_wait_mean

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


def test_limit_waits_shorten_toward_the_far_side() -> None:
    from alchemiser.sim.market import Quote
    from alchemiser.sim.orders import Order

    quote = Quote(Decimal("100.00"), Decimal("100.20"), 1, 1, Decimal("100.10"))

    def mean_wait(limit: str, side: str = "buy") -> float | None:
        order = Order(
            id="x",
            client_order_id="x",
            symbol="SPY",
            side=side,
            type="limit",
            time_in_force="day",
            qty=Decimal(1),
            notional=None,
            limit_price=Decimal(limit),
            extended_hours=False,
            created_at=0.0,
        )
        return limit_wait_mean(order, quote)

    waits = [mean_wait(p) for p in ("100.00", "100.10", "100.15", "100.17", "100.19")]
    assert all(w is not None for w in waits)
    assert waits == sorted(waits, reverse=True)  # 0 %, 50 %, 75 %, 85 %, 95 % of the spread
    assert mean_wait("99.99") is None  # behind the bid: only a moving market fills it
    assert mean_wait("100.19", side="sell") is not None
    assert mean_wait("100.05", side="sell") < mean_wait("100.15", side="sell")  # type: ignore[operator]
