"""The example strategies in strategies/ and the `alchemiser evaluate` command."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from alchemiser.cli import main
from alchemiser.dsl import PriceHistory, evaluate, parse_strategy
from alchemiser.dsl.ast import (
    FORM_NAMES,
    INDICATOR_PARAMS,
    And,
    Asset,
    Compare,
    Filter,
    If,
    Indicator,
    Not,
    Or,
    WeightInverseVolatility,
)
from alchemiser.dsl.synthetic import random_walk_prices
from alchemiser.evaluate_command import decision_lines, trace_lines
from tests.dsl.conftest import REPO

EXAMPLES = sorted((REPO / "strategies").glob("*.clj"))
AS_OF = date(2024, 6, 28)


def used_forms(paths: list[Path]) -> set[str]:
    """Every form name, comparison, indicator and option value the files use."""
    seen: set[str] = set()
    stack: list[Any] = []
    for path in paths:
        s = parse_strategy(path.read_text(encoding="utf-8"), path.name)
        seen.add(f":rebalance-frequency :{s.options.rebalance_frequency}")
        if s.options.rebalance_threshold is not None:
            seen.add(":rebalance-threshold")
        stack.append(s.body)
    while stack:
        node = stack.pop()
        if isinstance(node, Indicator):
            seen.add(node.name)
            continue
        if isinstance(node, Compare):
            seen.add(node.op)
            stack += [node.left, node.right]
            continue
        if type(node) in FORM_NAMES:
            seen.add(FORM_NAMES[type(node)])
        if isinstance(node, Filter):
            seen.add("select-top" if node.select.top else "select-bottom")
            stack.append(node.metric)
        if isinstance(node, If):
            stack += [node.condition, *node.then, *(node.otherwise or ())]
            if node.otherwise is None:
                seen.add("if without else")
            if len(node.then) > 1:
                seen.add("branch with several forms")
        if isinstance(node, And | Or):
            stack += list(node.items)
        if isinstance(node, Not):
            stack.append(node.item)
        if isinstance(node, Filter | WeightInverseVolatility) and any(
            not isinstance(c, Asset) for c in node.children
        ):
            seen.add(f"{FORM_NAMES[type(node)]} over groups")
        stack += list(getattr(node, "children", ()))
    return seen


def test_examples_use_every_form_and_indicator() -> None:
    assert len(EXAMPLES) >= 4
    for path in EXAMPLES:
        assert path.read_text(encoding="utf-8").startswith(";;"), f"{path.name}: no comment"
    wanted = {
        *INDICATOR_PARAMS,
        "asset",
        "group",
        "weight-equal",
        "weight-specified",
        "weight-inverse-volatility",
        "filter",
        "select-top",
        "select-bottom",
        "if",
        "and",
        "or",
        "not",
        ">",
        "<",
        ">=",
        "<=",
        "=",
        "if without else",
        "branch with several forms",
        "filter over groups",
        "weight-inverse-volatility over groups",
        ":rebalance-threshold",
    }
    assert wanted - used_forms(EXAMPLES) == set()


@pytest.fixture(scope="module")
def bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tickers = {t for p in EXAMPLES for t in parse_strategy(p.read_text(), p.name).tickers}
    path = tmp_path_factory.mktemp("bars") / "bars.parquet"
    random_walk_prices(tickers, AS_OF, 600, seed=2).write_parquet(path)
    return path


def test_examples_evaluate_on_many_days(bars: Path) -> None:
    import polars as pl

    history = PriceHistory(pl.read_parquet(bars))
    for path in EXAMPLES:
        strategy = parse_strategy(path.read_text(encoding="utf-8"), path.name)
        for day in history.calendar[-20:]:
            weights = evaluate(strategy, history, day).weights
            assert abs(sum(weights.values()) - 1) <= 1e-9, (path.name, day)


def test_command_json_reports_each_file_and_fails_if_any_failed(bars: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.clj"
    broken.write_text('(defsymphony "b" {}\n  (weight-equal [(asset "SPY")])\n', encoding="utf-8")
    args = ["evaluate", str(broken), *map(str, EXAMPLES), "--bars", str(bars)]
    result = CliRunner().invoke(main, [*args, "--as-of", AS_OF.isoformat(), "--json"])
    assert result.exit_code == 1, result.output
    lines = [json.loads(line) for line in result.output.splitlines()]
    assert len(lines) == 1 + len(EXAMPLES)
    first = lines[0]
    assert set(first) == {"file", "as_of", "weights", "trace", "error"}
    assert first["file"] == str(broken) and first["weights"] == {}
    assert first["error"]["kind"] == "StrategySyntaxError"
    assert (first["error"]["line"], first["error"]["column"]) == (1, 1)
    assert "unclosed `(`" in first["error"]["message"]
    for line in lines[1:]:
        assert line["error"] is None, line
        assert line["as_of"] == AS_OF.isoformat()
        assert abs(sum(line["weights"].values()) - 1) <= 1e-9


def test_command_table_and_trace(bars: Path) -> None:
    spy_trend = REPO / "strategies" / "spy_trend.clj"
    args = ["evaluate", str(spy_trend), "--bars", str(bars), "--as-of", AS_OF.isoformat()]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    assert "ticker" in result.output and "weight" in result.output
    assert "trace:" in result.output
    assert 'if (> (current-price "SPY") (moving-average-price "SPY" {:window 200}))' in (
        result.output
    )


def test_decision_lines_are_the_if_and_filter_lines_of_the_trace(bars: Path) -> None:
    import polars as pl

    history = PriceHistory(pl.read_parquet(bars))
    text = (
        '(weight-equal [(if (> (current-price "SPY") 1) [(asset "SPY")] [(asset "TLT")])'
        ' (filter (rsi {:window 10}) (select-top 1) [(asset "SPY") (asset "TLT")])])'
    )
    trace = evaluate(parse_strategy(text, "t.clj"), history, AS_OF).trace
    assert {e["node"] for e in trace} == {"if", "filter", "indicator"}
    expected = [line for e in trace if e["node"] != "indicator" for line in trace_lines(e)]
    assert decision_lines(trace) == expected
    assert expected[0].startswith('1:16  if (> (current-price "SPY") 1):')


def test_command_data_error_and_missing_date(bars: Path, tmp_path: Path) -> None:
    strategy = tmp_path / "nodata.clj"
    strategy.write_text('(if (> (rsi "NOPE" {:window 5}) 50) [(asset "SPY")])', encoding="utf-8")
    args = ["evaluate", str(strategy), "--bars", str(bars), "--as-of", AS_OF.isoformat()]
    result = CliRunner().invoke(main, [*args, "--json"])
    assert result.exit_code == 1
    error = json.loads(result.output)["error"]
    assert error["kind"] == "StrategyDataError" and "NOPE" in error["message"]
    assert error["line"] is None
