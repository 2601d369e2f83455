"""Hand-worked backtests of one book: holding, rebalancing, corridors, weeks, costs."""

from __future__ import annotations

from decimal import Decimal

from alchemiser.backtest.engine import BookRun, Costs, run_book
from alchemiser.dsl import PriceHistory, parse_strategy
from alchemiser.dsl.columns import allocations
from tests.dsl.conftest import day, frame

CAPITAL = Decimal(10_000)
TINY = Decimal("1e-20")


def backtest(text: str, closes: dict[str, list[float]], costs: Costs = Costs()) -> BookRun:
    strategy = parse_strategy(text, "t.clj")
    prices = PriceHistory(frame(closes))
    days = range(len(prices.calendar))
    cols = allocations(strategy, prices)
    return run_book(strategy, prices, cols, days, capital=CAPITAL, costs=costs)


def d(x: float) -> Decimal:
    return Decimal(repr(x))


A = [100.0, 103.5, 99.25, 101.0, 110.75, 108.0, 95.5, 97.0, 104.25, 106.5]
B = [50.0, 49.5, 51.25, 52.0, 50.5, 49.0, 50.25, 53.5, 52.75, 51.0]


def test_buy_and_hold_earns_exactly_the_tickers_return() -> None:
    for frequency in ("daily", "none"):
        text = f'(defsymphony "hold" {{:rebalance-frequency :{frequency}}} (asset "AAA"))'
        run = backtest(text, {"AAA": A})
        expected = [CAPITAL * d(c) / d(A[0]) for c in A]
        assert all(abs(v - e) < TINY for v, e in zip(run.values, expected, strict=True))
        assert run.values[-1].quantize(Decimal("0.01")) == Decimal("10650.00")
        assert run.trades == 1 and run.traded_on == [day(0)]  # bought once, then held
        assert run.error is None


def test_daily_fifty_fifty_matches_the_closed_form() -> None:
    text = '(defsymphony "half" {} (weight-equal [(asset "AAA") (asset "BBB")]))'
    run = backtest(text, {"AAA": A, "BBB": B})
    value = CAPITAL
    expected = [value]
    for t in range(1, len(A)):
        growth = (d(A[t]) / d(A[t - 1]) + d(B[t]) / d(B[t - 1])) / 2
        value *= growth
        expected.append(value)
    assert all(abs(v - e) < TINY for v, e in zip(run.values, expected, strict=True))
    # Both tickers drift away from 50/50 every day, so both are traded every day.
    assert run.traded_on == [day(k) for k in range(len(A))]
    assert run.trades == 2 * len(A)


def test_threshold_trades_only_when_the_corridor_is_crossed() -> None:
    text = """(defsymphony "corridor" {:rebalance-frequency :daily, :rebalance-threshold 0.05}
      (weight-equal [(asset "AAA") (asset "BBB")]))"""
    # Worked by hand (BBB flat at 100, AAA's share of the book after each close):
    # day 1: 55 / 105 = 0.524 (inside); day 2: 62.5 / 112.5 = 0.556 (out: trade);
    # day 3: 0.5 (inside); day 4: 45 / 101.25 = 0.444 (out: trade); day 5: 0.5 (inside).
    aaa = [100.0, 110.0, 125.0, 125.0, 100.0, 100.0]
    run = backtest(text, {"AAA": aaa, "BBB": [100.0] * len(aaa)})
    assert run.traded_on == [day(0), day(2), day(4)]
    assert run.trades == 6
    # day 4's trade reset the book to 101.25, half in each; nothing moved on day 5.
    assert abs(run.values[-1] - Decimal("101.25") * CAPITAL / 100) < TINY


def test_weekly_trades_only_on_the_first_session_of_each_week() -> None:
    text = """(defsymphony "weekly" {:rebalance-frequency :weekly}
      (weight-equal [(asset "AAA") (asset "BBB")]))"""
    n = 24  # calendar days from Wednesday 2020-01-01: Mondays are days 5, 12 and 19
    aaa = [100.0 + (k % 5) * 1.5 + k for k in range(n)]
    bbb = [80.0 - (k % 3) * 2.0 + k / 2 for k in range(n)]
    run = backtest(text, {"AAA": aaa, "BBB": bbb})
    assert [x.weekday() for x in run.traded_on[1:]] == [0, 0, 0]
    assert run.traded_on == [day(0), day(5), day(12), day(19)]
    assert run.trades == 8


def test_costs_reduce_the_result_by_exactly_the_modelled_amount() -> None:
    text = '(defsymphony "hold" {:rebalance-frequency :none} (asset "AAA"))'
    costs = Costs(slippage_bps=Decimal(10), fee_per_trade=Decimal("1.50"))
    free = backtest(text, {"AAA": A})
    charged = backtest(text, {"AAA": A}, costs)
    cost = CAPITAL * Decimal("0.001") + Decimal("1.50")  # one buy of the whole book
    assert charged.costs == cost
    assert abs(charged.values[0] - (CAPITAL - cost)) < TINY
    growth = d(A[-1]) / d(A[0])
    assert abs(charged.values[-1] - (CAPITAL - cost) * growth) < TINY
    assert abs((free.values[-1] - charged.values[-1]) - cost * growth) < TINY


def test_costs_on_a_rebalance_charge_each_traded_symbol() -> None:
    text = '(defsymphony "half" {} (weight-equal [(asset "AAA") (asset "BBB")]))'
    costs = Costs(slippage_bps=Decimal(25), fee_per_trade=Decimal(2))
    run = backtest(text, {"AAA": A[:2], "BBB": B[:2]}, costs)
    first = CAPITAL * Decimal("0.0025") + 4  # buy both halves
    after = CAPITAL - first
    held_a, held_b = after / 2 / d(A[0]), after / 2 / d(B[0])
    value = held_a * d(A[1]) + held_b * d(B[1])
    moved = abs(value / 2 - held_a * d(A[1])) + abs(value / 2 - held_b * d(B[1]))
    second = moved * Decimal("0.0025") + 4
    assert abs(run.costs - (first + second)) < TINY
    assert abs(run.values[-1] - (value - second)) < TINY


def test_a_missing_close_stops_the_book_with_the_day_and_ticker() -> None:
    text = '(defsymphony "half" {} (weight-equal [(asset "AAA") (asset "BBB")]))'
    prices = frame({"AAA": A, "BBB": B})
    prices = prices.filter(~((prices["symbol"] == "BBB") & (prices["date"] == day(4))))
    strategy = parse_strategy(text, "t.clj")
    history = PriceHistory(prices)
    cols = allocations(strategy, history)
    run = run_book(
        strategy, history, cols, range(len(history.calendar)), capital=CAPITAL, costs=Costs()
    )
    assert run.error is not None
    assert run.error.startswith(f"{day(4).isoformat()}: BBB")
    assert run.dates == [day(k) for k in range(4)]
