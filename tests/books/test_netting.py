"""Netting and pro-rata splitting, without a database."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alchemiser.books.money import QUANTITY_QUANTUM, WHOLE_SHARE, scale_to_budget
from alchemiser.books.netting import (
    Share,
    net_intents,
    split_execution,
    split_pro_rata,
)
from alchemiser.books.planner import Intent

D = Decimal
P = D("100")


def intent(book: str, side: str, qty: str, symbol: str = "SPY") -> Intent:
    return Intent(book, symbol, side, D(qty), P, "rebalance")  # type: ignore[arg-type]


def test_opposite_sides_cross_and_only_the_net_goes_to_the_broker() -> None:
    netted = net_intents(
        [intent("a", "sell", "10"), intent("b", "buy", "4"), intent("c", "buy", "2")]
    )
    (cross,) = netted.crosses
    assert cross.quantity == D(6)
    assert cross.price == P
    assert {(s.strategy_id, s.quantity) for s in cross.buyers} == {("b", D(4)), ("c", D(2))}
    assert cross.sellers == (Share("a", D(6)),)
    (order,) = netted.orders
    assert (order.side, order.quantity, order.shares) == ("sell", D(4), (Share("a", D(4)),))


def test_crossed_quantity_is_split_pro_rata_among_the_larger_side() -> None:
    netted = net_intents(
        [intent("a", "buy", "3"), intent("b", "buy", "1"), intent("c", "sell", "2")]
    )
    (cross,) = netted.crosses
    assert {s.strategy_id: s.quantity for s in cross.buyers} == {"a": D("1.5"), "b": D("0.5")}
    (order,) = netted.orders
    assert order.side == "buy"
    assert {s.strategy_id: s.quantity for s in order.shares} == {"a": D("1.5"), "b": D("0.5")}


def test_one_order_per_symbol_and_side() -> None:
    netted = net_intents(
        [intent("a", "buy", "1"), intent("b", "buy", "2"), intent("a", "sell", "5", "TLT")]
    )
    assert [(o.symbol, o.side, o.quantity) for o in netted.orders] == [
        ("SPY", "buy", D(3)),
        ("TLT", "sell", D(5)),
    ]
    assert netted.crosses == ()


def test_non_fractionable_crosses_split_in_whole_shares() -> None:
    netted = net_intents(
        [intent("a", "buy", "5"), intent("b", "buy", "5"), intent("c", "sell", "3")],
        fractionable=frozenset(),
    )
    (cross,) = netted.crosses
    assert all(s.quantity == s.quantity.to_integral_value() for s in cross.buyers)
    assert sum(s.quantity for s in cross.buyers) == 3
    assert sum(s.quantity for o in netted.orders for s in o.shares) == 7


def test_a_fractional_exit_of_a_whole_share_asset_never_crosses_more_than_a_book_holds() -> None:
    intents = [intent("a", "sell", "0.5"), intent("b", "sell", "0.6"), intent("c", "buy", "1")]
    netted = net_intents(intents, fractionable=frozenset())
    (cross,) = netted.crosses
    asked = {i.strategy_id: i.quantity for i in intents}
    assert all(leg.quantity <= asked[leg.strategy_id] for leg in cross.sellers)
    assert sum(leg.quantity for leg in cross.sellers) == cross.quantity == D(1)
    assert cross.buyers == (Share("c", D(1)),)
    (order,) = netted.orders
    assert (order.side, order.quantity) == ("sell", D("0.1"))


def test_split_rounds_deterministically_and_adds_up() -> None:
    asks = [Share("a", D(1)), Share("b", D(1)), Share("c", D(1))]
    pieces = split_pro_rata(D(1), asks)
    assert [p.quantity for p in pieces] == [D("0.333333334"), D("0.333333333"), D("0.333333333")]
    assert sum(p.quantity for p in pieces) == 1
    # Ties go by strategy id, not by the order the books were listed in.
    reversed_pieces = split_pro_rata(D(1), list(reversed(asks)))
    assert {p.strategy_id: p.quantity for p in reversed_pieces} == {
        p.strategy_id: p.quantity for p in pieces
    }


def test_partial_fill_is_split_pro_rata_then_completes_each_ask_exactly() -> None:
    remaining = [Share("a", D(30)), Share("b", D(10))]
    first, excess = split_execution(D(10), remaining)
    assert excess == 0
    assert {s.strategy_id: s.quantity for s in first} == {"a": D("7.5"), "b": D("2.5")}
    left = [Share("a", D("22.5")), Share("b", D("7.5"))]
    second, _ = split_execution(D(30), left)
    assert {s.strategy_id: s.quantity for s in second} == {"a": D("22.5"), "b": D("7.5")}


def test_an_over_fill_reports_the_excess() -> None:
    pieces, excess = split_execution(D(12), [Share("a", D(10))])
    assert pieces == [Share("a", D(10))]
    assert excess == D(2)


def test_splitting_more_than_asked_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot split"):
        split_pro_rata(D(5), [Share("a", D(4))])


asks_st = st.lists(
    st.decimals(min_value=D("0.000000001"), max_value=D(1000), places=9), min_size=1, max_size=8
)
# A few shares each, often fractional: whole-share splits where rounding matters.
dust_asks_st = st.lists(
    st.decimals(min_value=D("0.1"), max_value=D(5), places=1), min_size=1, max_size=8
)


@settings(deadline=None, max_examples=200)
@given(
    asks=st.one_of(asks_st, dust_asks_st),
    fraction=st.fractions(min_value=0, max_value=1),
    quantum=st.sampled_from([QUANTITY_QUANTUM, WHOLE_SHARE]),
)
def test_split_adds_up_exactly_and_never_exceeds_an_ask(asks, fraction, quantum) -> None:
    shares = [Share(f"s{i}", q) for i, q in enumerate(asks)]
    total_asked = sum(asks)
    # In whole shares the total is whole while the asks may not be (a dust exit).
    total = (total_asked * D(fraction.numerator) / D(fraction.denominator)).quantize(
        quantum, rounding="ROUND_DOWN"
    )
    pieces = split_pro_rata(total, shares, quantum)
    assert sum(p.quantity for p in pieces) == total
    by_id = {s.strategy_id: s.quantity for s in shares}
    assert all(0 < p.quantity <= by_id[p.strategy_id] for p in pieces)
    assert split_pro_rata(total, shares, quantum) == pieces


@settings(deadline=None, max_examples=150)
@given(
    sides=st.lists(
        st.tuples(st.sampled_from(["buy", "sell"]), st.integers(min_value=1, max_value=1_000)),
        min_size=1,
        max_size=10,
    ),
    whole_shares=st.booleans(),
)
def test_netting_conserves_every_books_intent(sides, whole_shares) -> None:
    intents = [intent(f"b{i}", side, str(D(q) / 100)) for i, (side, q) in enumerate(sides)]
    netted = net_intents(intents, fractionable=frozenset() if whole_shares else None)
    asked = {i.strategy_id: i.quantity for i in intents}
    got: dict[str, Decimal] = {}
    for cross in netted.crosses:
        assert sum(s.quantity for s in cross.buyers) == cross.quantity
        assert sum(s.quantity for s in cross.sellers) == cross.quantity
        for s in (*cross.buyers, *cross.sellers):
            assert 0 < s.quantity <= asked[s.strategy_id]
            got[s.strategy_id] = got.get(s.strategy_id, D(0)) + s.quantity
    for order in netted.orders:
        assert sum(s.quantity for s in order.shares) == order.quantity
        for s in order.shares:
            got[s.strategy_id] = got.get(s.strategy_id, D(0)) + s.quantity
    assert got == {i.strategy_id: i.quantity for i in intents}
    if not whole_shares:  # whole shares may leave a fractional rest on both sides
        assert len({o.side for o in netted.orders}) <= 1


def test_scale_to_budget_keeps_what_fits_and_floors_once() -> None:
    one, whole = QUANTITY_QUANTUM, WHOLE_SHARE
    assert scale_to_budget([(D(2), D(100), one)], D(200)) == [D(2)]
    # q × budget / cost in one rounding toward zero: exact quotients stay exact.
    assert scale_to_budget([(D(7), D(100), whole)], D(300)) == [D(3)]
    assert scale_to_budget([(D(3), D(10), one), (D(1), D(10), whole)], D(20)) == [
        D("1.5"),
        D(0),
    ]
    assert scale_to_budget([(D(1), D(10), one)], D(-5)) == [D(0)]
