"""Parser: the corpus, every form, positions, and trader-readable errors."""

from __future__ import annotations

import pytest

from alchemiser.dsl import Strategy, format_strategy, normalize_ticker, parse_strategy
from alchemiser.dsl.ast import (
    And,
    Asset,
    Compare,
    Filter,
    Group,
    If,
    Indicator,
    Not,
    Number,
    Or,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
)
from alchemiser.dsl.errors import StrategyError, StrategySyntaxError
from alchemiser.dsl.parser import WEIGHT_SUM_TOLERANCE
from tests.dsl.conftest import BROKEN, corpus_files


def syntax_error(text: str) -> StrategySyntaxError:
    with pytest.raises(StrategySyntaxError) as info:
        parse_strategy(text, "strategies/x.clj")
    return info.value


# ------------------------------------------------------------------ corpus


def test_corpus_has_79_files() -> None:
    assert len(corpus_files()) == 79


def test_every_corpus_file_but_one_parses(parsed_corpus: dict[str, object]) -> None:
    failed = {name for name, s in parsed_corpus.items() if not isinstance(s, Strategy)}
    assert failed == {BROKEN}
    # The README counts 2 files without `defsymphony`; this set holds one (and
    # the broken file, which does have one).
    bare = {n for n, s in parsed_corpus.items() if isinstance(s, Strategy) and s.name is None}
    assert bare == {"nuclear_simple__bfd4e86d.clj"}


def test_broken_corpus_file_names_the_bracket_never_closed(
    parsed_corpus: dict[str, object],
) -> None:
    err = parsed_corpus[BROKEN]
    assert isinstance(err, StrategySyntaxError)
    # Every form after line 11 is nested as its indentation says; the `[` that
    # opens the group's body on line 11 is the one whose `]` is missing.
    assert (err.line, err.column) == (11, 5)
    assert str(err).startswith(f"{BROKEN}:11:5: unclosed `[` opened at line 11, column 5")


def test_corpus_tickers_are_normalised(parsed_corpus: dict[str, object]) -> None:
    tickers = {t for s in parsed_corpus.values() if isinstance(s, Strategy) for t in s.tickers}
    assert len(tickers) > 1000
    assert "BRK.B" in tickers
    assert not any("/" in t or "::" in t for t in tickers)


def test_corpus_round_trips_through_the_printer(parsed_corpus: dict[str, object]) -> None:
    from alchemiser.dsl._deep import run_deep

    for name in ("ftl_starburst_gen2__4b35af20.clj", "test__01b25ed7.clj"):
        s = parsed_corpus[name]
        assert isinstance(s, Strategy)
        again = parse_strategy(run_deep(lambda s=s: format_strategy(s)), name)
        assert run_deep(lambda s=s, again=again: again == s)


# ------------------------------------------------------------------ forms


def test_defsymphony_options_and_positions() -> None:
    text = (
        '(defsymphony "Demo" {:asset-class "EQUITIES", :rebalance-frequency :weekly,\n'
        "  :rebalance-threshold 0.05}\n"
        '  (weight-equal [(asset "SPY" "S&P") (asset "EQUITIES::XLK//USD" nil)]))'
    )
    s = parse_strategy(text, "demo.clj")
    assert s.name == "Demo"
    assert s.options.rebalance_frequency == "weekly"
    assert s.options.rebalance_threshold == 0.05
    assert s.options.asset_class == "EQUITIES"
    assert s.tickers == ("SPY", "XLK")
    assert (s.line, s.column) == (1, 1)
    body = s.body
    assert isinstance(body, WeightEqual)
    assert (body.line, body.column) == (3, 3)
    spy, xlk = body.children
    assert isinstance(spy, Asset) and isinstance(xlk, Asset)
    assert (spy.ticker, spy.label, spy.line, spy.column) == ("SPY", "S&P", 3, 18)
    assert (xlk.ticker, xlk.original, xlk.label) == ("XLK", "EQUITIES::XLK//USD", None)


def test_option_defaults_and_bare_form() -> None:
    s = parse_strategy('(asset "SPY")', "bare.clj")
    assert s.name is None
    assert s.options.rebalance_frequency == "daily"
    assert s.options.rebalance_threshold is None
    assert isinstance(s.body, Asset)


def test_every_form_builds_its_node() -> None:
    text = """
    ; a comment, and commas are whitespace
    (defsymphony "All" {}
      (group "top"
        [(if (and (> (rsi "SPY" {:window 10}) 70) (not (< (current-price "SPY") 1e-3)))
           [(weight-specified 60 (asset "TLT") 40 (asset "GLD"))]
           [(if (or (>= (moving-average-price "SPY" {:window 5}) .5) (= 1 -2))
              [(weight-inverse-volatility 20 [(asset "SPY") (asset "BIL")])
               (asset "QQQ")])])
         (filter (cumulative-return {:window 3}) (select-bottom 2)
           [(asset "XLK") (asset "BRK/B")])
         (filter (current-price) (select-top 1) [(asset "UVXY")])]))
    """
    s = parse_strategy(text, "all.clj")
    group = s.body
    assert isinstance(group, Group) and group.name == "top"
    outer_if, bottom_filter, top_filter = group.children
    assert isinstance(outer_if, If)
    cond = outer_if.condition
    assert isinstance(cond, And)
    first, negated = cond.items
    assert first == Compare(">", Indicator("rsi", "SPY", "SPY", (("window", 10),)), Number(70))
    assert isinstance(negated, Not)
    specified = outer_if.then[0]
    assert isinstance(specified, WeightSpecified)
    assert specified.written == (60, 40)
    assert specified.fractions == (0.6, 0.4)
    assert outer_if.otherwise is not None
    inner_if = outer_if.otherwise[0]
    assert isinstance(inner_if, If) and isinstance(inner_if.condition, Or)
    assert inner_if.otherwise is None
    assert len(inner_if.then) == 2  # a branch vector with two forms
    ivol = inner_if.then[0]
    assert isinstance(ivol, WeightInverseVolatility) and ivol.window == 20
    assert isinstance(bottom_filter, Filter)
    assert bottom_filter.select.top is False and bottom_filter.select.n == 2
    assert bottom_filter.metric == Indicator("cumulative-return", None, None, (("window", 3),))
    assert [c.ticker for c in bottom_filter.children if isinstance(c, Asset)] == ["XLK", "BRK.B"]
    assert isinstance(top_filter, Filter) and top_filter.select.top
    assert s.tickers == ("SPY", "TLT", "GLD", "BIL", "QQQ", "XLK", "BRK.B", "UVXY")


def test_ppo_parameters_default_and_explicit() -> None:
    s = parse_strategy(
        '(if (> (percentage-price-oscillator-signal "SOXL" {:short-window 5, :long-window 10})'
        ' (percentage-price-oscillator "SOXL")) [(asset "SOXL")] [(asset "BIL")])',
        "ppo.clj",
    )
    assert isinstance(s.body, If) and isinstance(s.body.condition, Compare)
    sig, ppo = s.body.condition.left, s.body.condition.right
    assert isinstance(sig, Indicator) and isinstance(ppo, Indicator)
    assert (sig.param("short-window"), sig.param("long-window"), sig.param("smooth-window")) == (
        5,
        10,
        9,
    )
    assert (ppo.param("short-window"), ppo.param("long-window")) == (12, 26)


def test_string_escapes() -> None:
    s = parse_strategy(r'(group "a \"b\" \\ c\td" [(asset "SPY")])', "x.clj")
    assert isinstance(s.body, Group)
    assert s.body.name == 'a "b" \\ c\td'
    assert parse_strategy(format_strategy(s), "x.clj") == s


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("SPY", "SPY"), ("EQUITIES::XLK//USD", "XLK"), ("BRK/B", "BRK.B"), (" QQQ ", "QQQ")],
)
def test_normalize_ticker(raw: str, expected: str) -> None:
    assert normalize_ticker(raw) == expected


def test_weights_in_percent_and_tolerance() -> None:
    s = parse_strategy('(weight-specified 33.3333333 (asset "A") 66.6666667 (asset "B"))', "x")
    assert isinstance(s.body, WeightSpecified)
    assert s.body.fractions == pytest.approx((1 / 3, 2 / 3), abs=1e-8)
    off = 1 + WEIGHT_SUM_TOLERANCE * 10
    err = syntax_error(f'(weight-specified {off} (asset "A") 0 (asset "B"))')
    assert "sum to" in err.message


# ------------------------------------------------------------------ depth


def nested(depth: int) -> str:
    return '(group "g" [' * depth + '(asset "SPY")' + "])" * depth


def test_depth_1000_parses_prints_and_compares() -> None:
    from alchemiser.dsl._deep import run_deep

    s = parse_strategy(nested(1000), "deep.clj")
    node = s.body
    depth = 0
    while isinstance(node, Group):
        node, depth = node.children[0], depth + 1
    assert depth == 1000 and isinstance(node, Asset)
    text = run_deep(lambda: format_strategy(s))
    again = parse_strategy(text, "deep.clj")
    # Level by level, not one `==`: a dataclass compares through C, which Python 3.12
    # and later allow far fewer levels (288-deep corpus files compare with `==` above).
    ours, theirs = s.body, again.body
    while isinstance(ours, Group) and isinstance(theirs, Group):
        assert (ours.name, len(ours.children)) == (theirs.name, len(theirs.children))
        ours, theirs = ours.children[0], theirs.children[0]
    assert ours == theirs == node


def test_depth_1000_unclosed_bracket_is_located() -> None:
    err = syntax_error(nested(1000)[:-1])  # the outermost `(group` is never closed
    assert err.message.startswith("unclosed `(`")
    assert (err.line, err.column) == (1, 1)
    err = syntax_error(nested(1000).replace("])", ")", 1))  # the innermost `[` is not
    assert "does not close `[`" in err.message


# ------------------------------------------------------------------ errors


def test_unclosed_paren_names_the_opening_bracket() -> None:
    text = (
        '(defsymphony "x" {}\n'
        "  (weight-equal\n"
        '    [(if (> (rsi "SPY" {:window 10}) 70)\n'
        '       [(asset "UVXY")]\n'
        '       [(asset "SPY"]))])\n'  # the `(asset` of this line is never closed
        '    (asset "BIL")]))\n'
    )
    err = syntax_error(text)
    assert err.file == "strategies/x.clj"
    # `]` closes the vector before `(asset` is closed: a mismatch at that `]`.
    assert (err.line, err.column) == (5, 21)
    assert "does not close `(` opened at line 5, column 9" in err.message


def test_missing_close_at_end_names_the_innermost_suspect() -> None:
    text = (
        '(defsymphony "x" {}\n'
        " (weight-equal\n"
        '  [(group "a"\n'
        '    [(asset "SPY")])\n'
        '   (group "b"\n'
        '    [(asset "QQQ")]\n'  # the group "b" is never closed
        '   (group "c"\n'
        '    [(asset "TLT")])]))\n'
    )
    err = syntax_error(text)
    assert (err.line, err.column) == (5, 4)
    assert str(err) == (
        "strategies/x.clj:5:4: unclosed `(` opened at line 5, column 4: its closing `)` is missing"
    )


def test_extra_closing_bracket() -> None:
    err = syntax_error('(asset "SPY"))')
    assert (err.line, err.column) == (1, 14)
    assert "no open bracket" in err.message


def test_unterminated_string() -> None:
    err = syntax_error('(asset "SPY)')
    assert (err.line, err.column) == (1, 8)
    assert "unterminated string" in err.message


@pytest.mark.parametrize(
    ("text", "line", "column", "words"),
    [
        ('(weight-cash [(asset "SPY")])', 1, 2, "unknown form `weight-cash`"),
        ('(group "g" [(unimplemented "x")])', 1, 14, "unknown form `unimplemented`"),
        ('(asset "SPY" "name" "extra")', 1, 2, "`asset` takes a ticker"),
        ('(if (> (rsi "SPY" {:window}) 1) [(asset "A")])', 1, 19, "key/value pairs"),
        ('(if (> (rsi "SPY" {:window 0}) 1) [(asset "A")])', 1, 28, "positive whole number"),
        ('(if (> (rsi "SPY" {:window 2.5}) 1) [(asset "A")])', 1, 28, "positive whole number"),
        ('(if (> (rsi "SPY") 1) [(asset "A")])', 1, 9, "no default window"),
        ('(filter (rsi) (select-top 1) [(asset "A")])', 1, 10, "no default window"),
        ('(weight-specified 0.5 (asset "A") 0.4 (asset "B"))', 1, 2, "sum to 0.9, expected 1"),
        ('(weight-specified 0.5 (asset "A") 0.5)', 1, 2, "pairs of a weight"),
        ('(defsymphony "x" {:asset-class "CRYPTO"} (asset "A"))', 1, 32, "not supported"),
        ('(defsymphony "x" {:rebalance-frequency :hourly} (asset "A"))', 1, 40, ":daily"),
        ('(filter (rsi "SPY" {:window 5}) (select-top 1) [(asset "A")])', 1, 9, "no ticker"),
        ('(if (> (rsi {:window 5}) 1) [(asset "A")])', 1, 8, "needs a ticker"),
        ('(if (> 1) [(asset "A")])', 1, 6, "takes two values"),
        ("(weight-equal [(> 1 2)])", 1, 16, "weighting form here, got the comparison `>`"),
        (
            '(if (asset "A") [(asset "B")])',
            1,
            5,
            "a condition such as `(> ...)`, got the form `asset`",
        ),
        ('(if (stdev-return "SPY" {:window 1}) [(asset "A")])', 1, 6, "at least 2"),
        ("(asset SPY)", 1, 8, "a string in quotes"),
        ('(asset "SPY") (asset "QQQ")', 1, 15, "exactly one top-level form"),
        ("", 1, 1, "no strategy"),
        ('(group "g" [(defsymphony "x" {} (asset "A"))])', 1, 13, "top-level"),
    ],
)
def test_errors_name_place_and_problem(text: str, line: int, column: int, words: str) -> None:
    err = syntax_error(text)
    assert words in err.message
    assert (err.line, err.column) == (line, column)
    assert str(err).startswith(f"strategies/x.clj:{line}:{column}: ")
    assert isinstance(err, StrategyError)


def test_positions_after_a_string_that_spans_lines() -> None:
    text = '(weight-equal [(asset "SPY" "two\nlines") (asset "QQQ")\n  (asset "IWM")])'
    body = parse_strategy(text, "x.clj").body
    assert isinstance(body, WeightEqual)
    assert [(c.line, c.column) for c in body.children] == [(1, 16), (2, 9), (3, 3)]
    err = syntax_error('(weight-equal [(asset "SPY" "two\nlines") (asset QQQ)])')
    assert (err.line, err.column) == (2, 16)


def test_a_character_no_token_can_start_is_named_where_it_is() -> None:
    err = syntax_error('(weight-equal\n  [(asset : "SPY")])')
    assert (err.line, err.column) == (2, 11)
    assert err.message == "unexpected character `:`"
