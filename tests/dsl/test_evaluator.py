"""Each form, tie-break, open choice and trace entry, on small hand-written strategies."""

from __future__ import annotations

import json
import statistics

import polars as pl
import pytest

from alchemiser.dsl import evaluate, parse_strategy
from alchemiser.dsl import evaluator as ev_module
from alchemiser.dsl.errors import StrategyDataError, StrategyError
from alchemiser.dsl.evaluator import (
    BRANCH_VECTOR_IS_UNIT,
    FILTER_RANKS_EMPTY_CHILDREN,
    SPECIFIED_EMPTY_SHARE_PROPORTIONAL,
    ZERO_VOLATILITY_TAKES_ALL,
    Evaluation,
)
from alchemiser.dsl.indicators import NAV_WARMUP_DAYS, PriceHistory
from tests.dsl.conftest import day, frame

FLAT = [10.0] * 6
PRICES = frame(
    {
        "A": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0],  # steady rise
        "B": [10.0, 9.0, 8.0, 7.0, 6.0, 5.0],  # steady fall
        "C": [10.0, 10.5, 10.0, 10.5, 10.0, 10.5],
        "D": FLAT,
        "E": FLAT,
        "BRK.B": FLAT,
    }
)
TODAY = day(5)


def run(text: str, prices: pl.DataFrame = PRICES, as_of: object = TODAY) -> Evaluation:
    return evaluate(parse_strategy(text, "t.clj"), prices, as_of)  # type: ignore[arg-type]


def weights(text: str, prices: pl.DataFrame = PRICES) -> dict[str, float]:
    return run(text, prices).weights


def approx(d: dict[str, float]) -> object:
    return pytest.approx(d, abs=1e-12)


# ------------------------------------------------------------------ weighting


def test_asset_and_normalised_ticker() -> None:
    assert weights('(asset "A")') == {"A": 1.0}
    assert weights('(asset "BRK/B" "Berkshire")') == {"BRK.B": 1.0}


def test_weight_equal_keeps_inner_weights() -> None:
    w = weights('(weight-equal [(asset "A") (weight-equal [(asset "B") (asset "C")])])')
    assert w == approx({"A": 0.5, "B": 0.25, "C": 0.25})


def test_same_ticker_twice_gets_both_shares() -> None:
    assert weights('(weight-equal [(asset "A") (asset "A") (asset "B")])') == approx(
        {"A": 2 / 3, "B": 1 / 3}
    )


def test_group_with_several_forms_shares_equally() -> None:
    assert weights('(group "g" [(asset "A") (asset "B")])') == approx({"A": 0.5, "B": 0.5})


@pytest.mark.parametrize(("a", "b"), [("0.7", "0.3"), ("70", "30")])
def test_weight_specified_fractions_and_percent(a: str, b: str) -> None:
    text = f'(weight-specified {a} (asset "A") {b} (weight-equal [(asset "B") (asset "C")]))'
    assert weights(text) == approx({"A": 0.7, "B": 0.15, "C": 0.15})


def test_empty_specified_child_shares_go_to_siblings_in_proportion() -> None:
    assert SPECIFIED_EMPTY_SHARE_PROPORTIONAL is True
    never = '(if (> (current-price "A") 1000) [(asset "E")])'
    text = f'(weight-specified 0.5 (asset "A") 0.3 (asset "B") 0.2 {never})'
    assert weights(text) == approx({"A": 0.5 / 0.8, "B": 0.3 / 0.8})


def test_empty_specified_child_shares_in_equal_parts_when_the_choice_is_flipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ev_module, "SPECIFIED_EMPTY_SHARE_PROPORTIONAL", False)
    never = '(if (> (current-price "A") 1000) [(asset "E")])'
    text = f'(weight-specified 0.5 (asset "A") 0.3 (asset "B") 0.2 {never})'
    assert weights(text) == approx({"A": 0.6, "B": 0.4})


def test_weights_not_summing_to_one_are_an_internal_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A weighting helper that forgets to divide by the total, so an empty child's
    # share is lost: the result would still be normalised at the end, so only the
    # check before it can catch it.
    def broken(pairs: list[tuple[float, dict[str, float]]]) -> dict[str, float]:
        out: dict[str, float] = {}
        for weight, unit in pairs:
            for ticker, w in unit.items():
                out[ticker] = out.get(ticker, 0.0) + w * weight
        return out

    monkeypatch.setattr(ev_module, "_weighted", broken)
    never = '(if (> (current-price "A") 1000) [(asset "E")])'
    body = f'(weight-specified 0.5 (asset "A") 0.3 (asset "B") 0.2 {never})'
    text = f'(defsymphony "Broken" {{}} {body})'
    with pytest.raises(StrategyError, match=r"internal error evaluating strategy 'Broken'"):
        run(text)
    monkeypatch.undo()
    assert weights(text) == approx({"A": 0.5 / 0.8, "B": 0.3 / 0.8})


# ------------------------------------------------------------------ if


@pytest.mark.parametrize(
    ("op", "taken"),
    [(">", "B"), ("<", "B"), (">=", "A"), ("<=", "A"), ("=", "A")],
)
def test_comparisons_are_strict_as_written(op: str, taken: str) -> None:
    # A closes at exactly 15 today: only the non-strict ones hold.
    assert weights(f'(if ({op} (current-price "A") 15) [(asset "A")] [(asset "B")])') == {
        taken: 1.0
    }


def test_boolean_logic() -> None:
    up = '(> (current-price "A") 14)'
    down = '(> (current-price "B") 14)'
    assert weights(f'(if (and {up} {down}) [(asset "A")] [(asset "B")])') == {"B": 1.0}
    assert weights(f'(if (or {down} {up}) [(asset "A")] [(asset "B")])') == {"A": 1.0}
    assert weights(f'(if (not {down}) [(asset "A")] [(asset "B")])') == {"A": 1.0}


def test_indicator_against_indicator() -> None:
    text = '(if (> (rsi "A" {:window 3}) (rsi "B" {:window 3})) [(asset "A")] [(asset "B")])'
    assert weights(text) == {"A": 1.0}


def test_missing_else_is_empty_and_dropped_by_the_parent() -> None:
    text = '(weight-equal [(if (> (current-price "A") 100) [(asset "A")]) (asset "B")])'
    assert weights(text) == {"B": 1.0}


def test_strategy_that_selects_nothing_is_an_error() -> None:
    with pytest.raises(StrategyError, match="selected nothing"):
        run('(if (> (current-price "A") 100) [(asset "A")])')


def test_branch_vector_is_one_unit() -> None:
    assert BRANCH_VECTOR_IS_UNIT is True
    text = '(weight-equal [(if (> (current-price "A") 1) [(asset "A") (asset "B")]) (asset "C")])'
    assert weights(text) == approx({"A": 0.25, "B": 0.25, "C": 0.5})


def test_branch_vector_spread_into_parent_when_the_choice_is_flipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ev_module, "BRANCH_VECTOR_IS_UNIT", False)
    text = '(weight-equal [(if (> (current-price "A") 1) [(asset "A") (asset "B")]) (asset "C")])'
    assert weights(text) == approx({"A": 1 / 3, "B": 1 / 3, "C": 1 / 3})


def test_untaken_branch_needs_no_data_but_is_warned_about() -> None:
    result = run('(if (> (current-price "A") 1) [(asset "A")] [(asset "NODATA")])')
    assert result.weights == {"A": 1.0}
    assert len(result.warnings) == 1 and result.warnings[0].startswith("NODATA")


def test_taken_branch_without_data_fails_closed() -> None:
    with pytest.raises(StrategyDataError) as info:
        run('(if (> (current-price "A") 1) [(asset "NODATA")] [(asset "A")])')
    assert info.value.ticker == "NODATA"
    with pytest.raises(StrategyDataError) as info:
        run('(if (> (rsi "NODATA" {:window 2}) 1) [(asset "A")])')
    assert (info.value.ticker, info.value.indicator, info.value.window) == ("NODATA", "rsi", 2)
    assert info.value.as_of == TODAY


def test_short_history_names_ticker_indicator_window_and_date() -> None:
    with pytest.raises(StrategyDataError) as info:
        run('(if (> (moving-average-price "A" {:window 10}) 1) [(asset "A")])')
    err = info.value
    assert (err.ticker, err.indicator, err.window, err.as_of) == (
        "A",
        "moving-average-price",
        10,
        TODAY,
    )
    assert "needs 10 daily closes, only 6" in str(err)


def test_as_of_without_prices_is_an_error() -> None:
    with pytest.raises(StrategyDataError, match="no prices on the as-of date"):
        run('(asset "A")', as_of=day(30))


# ------------------------------------------------------------------ filter


def test_filter_top_and_bottom() -> None:
    # cumulative-return over 1 day: A +7.14 %, B -16.7 %, C +5 %, D 0 %.
    kids = '[(asset "A") (asset "B") (asset "C") (asset "D")]'
    top2 = weights(f"(filter (cumulative-return {{:window 1}}) (select-top 2) {kids})")
    assert top2 == approx({"A": 0.5, "C": 0.5})
    bottom1 = weights(f"(filter (cumulative-return {{:window 1}}) (select-bottom 1) {kids})")
    assert bottom1 == {"B": 1.0}


@pytest.mark.parametrize("select", ["select-top", "select-bottom"])
def test_filter_ties_keep_the_written_order(select: str) -> None:
    # D and E are flat: an exact tie at 0 % drawdown.
    for first, second in (("D", "E"), ("E", "D")):
        kids = f'[(asset "{first}") (asset "{second}")]'
        text = f"(filter (max-drawdown {{:window 3}}) ({select} 1) {kids})"
        assert weights(text) == {first: 1.0}


def test_filter_same_ticker_twice_selected_gets_both_shares() -> None:
    text = '(filter (current-price) (select-top 2) [(asset "A") (asset "A") (asset "B")])'
    assert weights(text) == {"A": 1.0}
    text = '(filter (current-price) (select-top 3) [(asset "A") (asset "A") (asset "B")])'
    assert weights(text) == approx({"A": 2 / 3, "B": 1 / 3})


def test_filter_drops_selected_children_that_are_empty() -> None:
    empty = '(group "never" [(if (> (current-price "A") 100) [(asset "E")])])'
    text = f'(filter (current-price) (select-bottom 2) [(asset "A") (asset "B") {empty}])'
    # Scores: A 15, B 5, the group's NAV 1 (it holds nothing): the group and B
    # are selected, and the empty group's share goes to B.
    assert FILTER_RANKS_EMPTY_CHILDREN is True
    assert weights(text) == {"B": 1.0}


def test_filter_leaves_empty_children_out_of_the_ranking_when_the_choice_is_flipped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ev_module, "FILTER_RANKS_EMPTY_CHILDREN", False)
    empty = '(group "never" [(if (> (current-price "A") 100) [(asset "E")])])'
    text = f'(filter (current-price) (select-bottom 2) [(asset "A") (asset "B") {empty}])'
    assert weights(text) == approx({"A": 0.5, "B": 0.5})


def test_filter_over_groups_ranks_their_simulated_nav() -> None:
    # S decides, on each day d-1, whether the switcher holds A or B on day d.
    s = [1.0, 2.0, 1.0, 2.0, 2.0, 1.0]
    a = [10.0, 11.0, 12.1, 11.0, 12.0, 13.0]
    b = [10.0, 10.0, 10.5, 10.0, 10.4, 10.8]
    c = [10.0, 10.1, 10.2, 10.3, 10.4, 10.41]
    prices = frame({"S": s, "A": a, "B": b, "C": c})
    switcher = '(group "switcher" [(if (> (current-price "S") 1.5) [(asset "A")] [(asset "B")])])'
    text = (
        f"(filter (cumulative-return {{:window 3}}) (select-top 1) "
        f'[{switcher} (asset "C") (weight-equal [(asset "A") (asset "B")])])'
    )
    # NAV over days 2..5: held on day d is decided by S on day d-1.
    nav = 1.0
    for d in (3, 4, 5):
        held = a if s[d - 1] > 1.5 else b
        nav *= held[d] / held[d - 1]
    switcher_score = (nav - 1) * 100
    blend = 1.0
    for d in (3, 4, 5):
        blend *= 1 + 0.5 * (a[d] / a[d - 1] - 1) + 0.5 * (b[d] / b[d - 1] - 1)
    c_score = (c[5] / c[2] - 1) * 100
    assert switcher_score > max(c_score, (blend - 1) * 100)
    result = run(text, prices)
    # Today S is 1.0: the switcher itself holds B.
    assert result.weights == {"B": 1.0}
    trace = next(e for e in result.trace if e["node"] == "filter")
    scores = [c["score"] for c in trace["candidates"]]
    assert scores == pytest.approx([switcher_score, c_score, (blend - 1) * 100], abs=1e-9)
    assert [c["rank"] for c in trace["candidates"]] == [1, 3, 2]
    assert [c["candidate"] for c in trace["candidates"]] == [
        "group 'switcher'",
        "C",
        f"weight-equal at 1:{text.index('(weight-equal') + 1}",
    ]


def test_nav_needs_enough_history() -> None:
    text = '(filter (rsi {:window 2}) (select-top 1) [(group "g" [(asset "A")]) (asset "B")])'
    with pytest.raises(StrategyDataError) as info:
        run(text)
    assert info.value.ticker == "group 'g'" and info.value.indicator == "rsi"
    assert f"needs {3 + NAV_WARMUP_DAYS} days" in info.value.message


# ------------------------------------------------------- inverse volatility


def test_weight_inverse_volatility() -> None:
    a = [100.0, 101.0, 100.0, 101.0, 100.0, 101.0]
    b = [100.0, 103.0, 100.0, 103.0, 100.0, 103.0]
    prices = frame({"A": a, "B": b})
    text = '(weight-inverse-volatility 4 [(asset "A") (asset "B")])'
    sa = statistics.stdev([a[k] / a[k - 1] - 1 for k in range(2, 6)])
    sb = statistics.stdev([b[k] / b[k - 1] - 1 for k in range(2, 6)])
    wa = (1 / sa) / (1 / sa + 1 / sb)
    assert weights(text, prices) == approx({"A": wa, "B": 1 - wa})


def test_zero_volatility_child_takes_the_node(monkeypatch: pytest.MonkeyPatch) -> None:
    assert ZERO_VOLATILITY_TAKES_ALL is True
    text = '(weight-inverse-volatility 3 [(asset "A") (asset "D")])'
    assert weights(text) == {"D": 1.0}
    monkeypatch.setattr(ev_module, "ZERO_VOLATILITY_TAKES_ALL", False)  # flat D is left out
    assert weights(text) == {"A": 1.0}


# ------------------------------------------------------------------ trace


def test_trace_records_if_filter_and_indicators_with_positions() -> None:
    text = (
        '(defsymphony "t" {}\n'
        " (weight-equal\n"
        '  [(if (> (rsi "A" {:window 3}) 70)\n'
        "     [(filter (cumulative-return {:window 1}) (select-top 1)\n"
        '        [(asset "B") (asset "C")])]\n'
        '     [(asset "D")])]))\n'
    )
    result = run(text)
    json.dumps(result.trace)  # JSON-serialisable
    kinds = [e["node"] for e in result.trace]
    assert kinds == ["indicator", "if", "filter"]
    ind, branch, filt = result.trace
    assert ind["ticker"] == "A" and ind["window"] == 3 and ind["as_of"] == TODAY.isoformat()
    assert ind["value"] == 100.0 and (ind["line"], ind["column"]) == (3, 11)
    assert branch["at"] == "3:4"
    assert branch["condition"] == '(> (rsi "A" {:window 3}) 70)'
    assert (branch["left"], branch["right"], branch["result"], branch["branch"]) == (
        100.0,
        70.0,
        True,
        "then",
    )
    assert filt["at"] == "4:7" and filt["select"] == "top 1"
    assert filt["metric"] == "(cumulative-return {:window 1})"
    assert [c["candidate"] for c in filt["candidates"]] == ["B", "C"]
    assert filt["candidates"][0]["score"] == pytest.approx((5 / 6 - 1) * 100)
    assert filt["candidates"][1]["score"] == pytest.approx(5.0)
    assert [c["rank"] for c in filt["candidates"]] == [2, 1]
    assert [c["selected"] for c in filt["candidates"]] == [False, True]
    assert (filt["candidates"][1]["line"], filt["candidates"][1]["column"]) == (5, 22)
    assert result.weights == {"C": 1.0}


def test_trace_of_boolean_condition_lists_each_comparison() -> None:
    text = (
        '(if (and (> (current-price "A") 1) (< (current-price "B") 1)) [(asset "A")] [(asset "B")])'
    )
    entry = next(e for e in run(text).trace if e["node"] == "if")
    assert entry["result"] is False and entry["branch"] == "else"
    assert [c["result"] for c in entry["comparisons"]] == [True, False]


# ------------------------------------------------------------ memo and dates


def test_evaluating_other_dates_reuses_one_price_history() -> None:
    c = [10.0, 12.0, 10.0, 12.0, 10.0, 12.0]
    history = PriceHistory(frame({"A": [10.0, 11.0, 12.0, 13.0, 14.0, 15.0], "C": c}))
    strategy = parse_strategy(
        "(filter (cumulative-return {:window 1}) (select-top 1)"
        ' [(group "g" [(asset "A")]) (asset "C")])',
        "t.clj",
    )
    on_day = {k: evaluate(strategy, history, day(k)).weights for k in range(2, 6)}
    # C alternates -16.7 % / +20 %; A (through its group's NAV) rises 7 to 9 %.
    assert on_day == {2: {"A": 1.0}, 3: {"C": 1.0}, 4: {"A": 1.0}, 5: {"C": 1.0}}
    assert evaluate(strategy, history, day(5)).weights == on_day[5]


def test_depth_1000_evaluates() -> None:
    depth = 1000
    text = (
        '(if (> (current-price "A") 1) [(group "g" [' * depth
        + '(weight-equal [(asset "A") (asset "B")])'
        + '])] [(asset "C")])' * depth
    )
    result = run(text)
    assert result.weights == approx({"A": 0.5, "B": 0.5})
    assert sum(1 for e in result.trace if e["node"] == "if") == depth
