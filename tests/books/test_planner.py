"""The rebalance planner, without a database."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alchemiser.books.planner import (
    REASON_EXIT,
    BookState,
    Intent,
    PlanningError,
    RebalanceOptions,
    is_rebalance_day,
    plan_book,
    plan_liquidation,
)
from alchemiser.settings import RiskConfig

D = Decimal
NO_BUFFER = RiskConfig(cash_buffer=D(0), min_trade_value=D(1))
DAILY = RebalanceOptions()
ALL = frozenset({"SPY", "TLT", "GLD", "BIL", "UVXY"})


def plan(
    book: BookState, targets: dict[str, float], prices: dict[str, Decimal], **kw
) -> list[Intent]:
    return plan_book(
        book,
        targets=targets,
        prices=prices,
        fractionable=kw.get("fractionable", ALL),
        options=kw.get("options", DAILY),
        rebalance_day=kw.get("rebalance_day", True),
        risk=kw.get("risk", NO_BUFFER),
    )


def test_cash_book_buys_fractional_targets_and_keeps_the_buffer() -> None:
    book = BookState("a", D(10_000))
    risk = RiskConfig(cash_buffer=D("0.01"), min_trade_value=D(1))
    intents = plan(book, {"SPY": 0.6, "TLT": 0.4}, {"SPY": D(500), "TLT": D(90)}, risk=risk)
    assert [(i.symbol, i.side) for i in intents] == [("SPY", "buy"), ("TLT", "buy")]
    spy, tlt = intents
    assert spy.quantity == D("11.88")  # 0.6 × 9900 / 500
    assert tlt.quantity == D("44")  # 0.4 × 9900 / 90
    assert spy.quantity * 500 + tlt.quantity * 90 <= D(9_900)


def test_non_fractionable_symbols_get_whole_shares() -> None:
    intents = plan(
        BookState("a", D(1000)), {"UVXY": 1.0}, {"UVXY": D(30)}, fractionable=frozenset()
    )
    assert intents[0].quantity == D(33)


def test_full_exit_sells_exactly_what_the_book_holds_even_dust() -> None:
    book = BookState("a", D(0), {"SPY": D("0.000000123"), "TLT": D("3.5")})
    intents = plan(book, {"TLT": 1.0}, {"SPY": D(500), "TLT": D(100)})
    exit_ = next(i for i in intents if i.symbol == "SPY")
    assert (exit_.side, exit_.quantity, exit_.reason) == ("sell", D("0.000000123"), REASON_EXIT)


def test_never_sells_more_than_held_nor_spends_more_than_cash_plus_own_sells() -> None:
    book = BookState("a", D(5), {"SPY": D(2)})
    intents = plan(book, {"SPY": 0.5, "TLT": 0.5}, {"SPY": D(100), "TLT": D(10)})
    sells = {i.symbol: i.quantity for i in intents if i.side == "sell"}
    buys = {i.symbol: i.quantity for i in intents if i.side == "buy"}
    assert sells == {"SPY": D("0.975")}  # target 102.5 / 2 / 100 = 1.025 → sell 0.975
    assert buys["TLT"] * 10 <= D(5) + D("0.975") * 100


def test_skips_trades_under_the_minimum_value() -> None:
    book = BookState("a", D("0.50"), {"SPY": D(1)})
    risk = RiskConfig(cash_buffer=D(0), min_trade_value=D(1))
    assert plan(book, {"SPY": 1.0}, {"SPY": D(100)}, risk=risk) == []


def test_buys_are_scaled_when_cash_is_short() -> None:
    # Tiny sells are skipped, so the buys would cost more than cash: they are scaled.
    book = BookState("a", D(100), {"SPY": D("1.005")})
    risk = RiskConfig(cash_buffer=D(0), min_trade_value=D(1))
    intents = plan(book, {"SPY": 0.5, "TLT": 0.5}, {"SPY": D(100), "TLT": D(1)}, risk=risk)
    cost = sum(i.quantity * i.reference_price for i in intents if i.side == "buy")
    assert cost <= D(100)


def test_corridor_holds_when_weights_are_within_the_threshold() -> None:
    book = BookState("a", D(0), {"SPY": D(52), "TLT": D(48)})  # weights 0.52 / 0.48
    options = RebalanceOptions(threshold=D("0.05"))
    prices = {"SPY": D(100), "TLT": D(100)}
    assert plan(book, {"SPY": 0.5, "TLT": 0.5}, prices, options=options) == []


def test_corridor_trips_and_brings_everything_back_to_target() -> None:
    book = BookState("a", D(0), {"SPY": D(56), "TLT": D(44)})  # SPY off by 6 points
    options = RebalanceOptions(threshold=D("0.05"))
    prices = {"SPY": D(100), "TLT": D(100)}
    intents = plan(book, {"SPY": 0.5, "TLT": 0.5}, prices, options=options)
    assert [(i.symbol, i.side, i.quantity) for i in intents] == [
        ("SPY", "sell", D(6)),
        ("TLT", "buy", D(6)),
    ]


def test_corridor_trips_when_the_tickers_change() -> None:
    book = BookState("a", D(0), {"SPY": D(50), "TLT": D(50)})
    options = RebalanceOptions(threshold=D("0.5"))
    prices = {"SPY": D(100), "TLT": D(100), "GLD": D(100)}
    intents = plan(book, {"SPY": 0.5, "GLD": 0.5}, prices, options=options)
    assert {(i.symbol, i.side) for i in intents} == {("TLT", "sell"), ("GLD", "buy")}


def test_weekly_strategy_holds_on_a_non_rebalance_day() -> None:
    wednesday, tuesday, monday, friday = (
        date(2026, 11, 18),
        date(2026, 11, 17),
        date(2026, 11, 16),
        date(2026, 11, 13),
    )
    assert not is_rebalance_day("weekly", wednesday, tuesday)
    assert is_rebalance_day("weekly", monday, friday)
    book = BookState("a", D(0), {"SPY": D(10)})
    rebalance_day = is_rebalance_day("weekly", wednesday, tuesday)
    intents = plan(
        book,
        {"TLT": 1.0},
        {"SPY": D(100), "TLT": D(100)},
        options=RebalanceOptions(frequency="weekly"),
        rebalance_day=rebalance_day,
    )
    assert intents == []


def test_a_new_book_invests_even_off_schedule() -> None:
    intents = plan(BookState("a", D(100)), {"SPY": 1.0}, {"SPY": D(10)}, rebalance_day=False)
    assert [i.quantity for i in intents] == [D(10)]


@pytest.mark.parametrize(
    ("frequency", "today", "previous", "expected"),
    [
        ("daily", date(2026, 1, 6), date(2026, 1, 5), True),
        ("none", date(2026, 2, 2), date(2026, 1, 30), False),
        ("monthly", date(2026, 2, 2), date(2026, 1, 30), True),
        ("monthly", date(2026, 2, 3), date(2026, 2, 2), False),
        ("quarterly", date(2026, 4, 1), date(2026, 3, 31), True),
        ("quarterly", date(2026, 5, 1), date(2026, 4, 30), False),
        ("yearly", date(2027, 1, 4), date(2026, 12, 31), True),
    ],
)
def test_rebalance_days(frequency: str, today: date, previous: date, expected: bool) -> None:
    assert is_rebalance_day(frequency, today, previous) is expected  # type: ignore[arg-type]


def test_missing_price_fails_closed() -> None:
    with pytest.raises(PlanningError, match="TLT"):
        plan(BookState("a", D(100), {"TLT": D(1)}), {"SPY": 1.0}, {"SPY": D(10)})


def test_liquidation_sells_everything_exactly() -> None:
    book = BookState("gone", D(3), {"SPY": D("1.5"), "TLT": D(0)})
    intents = plan_liquidation(book, {"SPY": D(10)})
    assert [(i.symbol, i.side, i.quantity) for i in intents] == [("SPY", "sell", D("1.5"))]


prices_st = st.decimals(min_value=D("0.5"), max_value=D(2000), places=2)
qty_st = st.decimals(min_value=D(0), max_value=D(500), places=9)


@settings(deadline=None, max_examples=150)
@given(
    cash=st.decimals(min_value=D(0), max_value=D(100_000), places=2),
    held=st.dictionaries(st.sampled_from(sorted(ALL)), qty_st, max_size=4),
    target_symbols=st.lists(st.sampled_from(sorted(ALL)), unique=True, max_size=4),
    raw_weights=st.lists(st.floats(min_value=0.01, max_value=1), min_size=4, max_size=4),
    price_list=st.lists(prices_st, min_size=5, max_size=5),
    fractionable=st.frozensets(st.sampled_from(sorted(ALL))),
    buffer=st.sampled_from([D(0), D("0.01"), D("0.05")]),
)
def test_plans_never_oversell_nor_overspend(
    cash, held, target_symbols, raw_weights, price_list, fractionable, buffer
) -> None:
    prices = dict(zip(sorted(ALL), price_list, strict=True))
    total = sum(raw_weights[: len(target_symbols)])
    targets = {s: w / total for s, w in zip(target_symbols, raw_weights, strict=False)}
    book = BookState("a", cash, held)
    risk = RiskConfig(cash_buffer=buffer, min_trade_value=D(1))
    intents = plan(book, targets, prices, fractionable=fractionable, risk=risk)
    proceeds = sum(i.quantity * i.reference_price for i in intents if i.side == "sell")
    cost = sum(i.quantity * i.reference_price for i in intents if i.side == "buy")
    assert cost <= cash + proceeds
    for i in intents:
        assert i.quantity > 0
        if i.side == "sell":
            assert i.quantity <= held[i.symbol]
            if i.symbol not in targets:
                assert i.quantity == held[i.symbol]
        elif i.symbol not in fractionable:
            assert i.quantity == i.quantity.to_integral_value()
    assert len({(i.symbol, i.side) for i in intents}) == len(intents)
