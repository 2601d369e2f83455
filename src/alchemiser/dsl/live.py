"""One date's evaluation read off the columns: weights, decision trace, errors.

`block` computes a strategy's columns over a few consecutive days (one, for a
live run), each node only over the look-back those days need, reading only the
indicator series of the branches it takes (computed on first use, a filter's
asset children in one query). `Reader` then follows the evaluation order on one
of those days (spec §8): the nodes on the traced path, each `if`'s condition
with its comparisons, each indicator read, each filter's candidates and each
inverse-volatility node's children, taking every decision from the columns. On
a failing day it stops at the first problem in that order and raises its error,
as the per-date walk did."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, NoReturn

from alchemiser.dsl.ast import (
    FORM_NAMES,
    And,
    Asset,
    Compare,
    Condition,
    Filter,
    Group,
    If,
    Indicator,
    Node,
    Not,
    Number,
    Params,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
    format_condition,
    format_indicator,
    window_of,
)
from alchemiser.dsl.choices import Choices
from alchemiser.dsl.columns import (
    Columns,
    Facts,
    Table,
    nav_length,
    preorder,
    scoring,
)
from alchemiser.dsl.errors import StrategyDataError, StrategyError
from alchemiser.dsl.indicators import PriceHistory

Trace = list[dict[str, Any]]


@dataclass(frozen=True)
class Block:
    """A strategy's columns over the calendar indices `days`."""

    days: range
    columns: Columns
    table: Table  # the strategy's allocation on each of `days`


def block(prices: PriceHistory, body: Node, days: range, choices: Choices) -> Block:
    columns = Columns(prices, body, days, choices, record=True)
    table = columns.root(body)
    columns.memo.clear()  # the block keeps the decisions (facts), not the tables
    return Block(days, columns, table)


def label(node: Node) -> str:
    if isinstance(node, Asset):
        return node.ticker
    if isinstance(node, Group):
        return f"group {node.name!r}"
    return f"{FORM_NAMES[type(node)]} at {node.line}:{node.column}"


def _at(node: Any) -> dict[str, Any]:
    return {"line": node.line, "column": node.column, "at": f"{node.line}:{node.column}"}


def _unexplained(what: str) -> NoReturn:
    raise StrategyError(f"internal error: the columns mark {what} as failing, without a cause")


class Reader:
    """Day `day` of a block, in the evaluation order."""

    def __init__(self, prices: PriceHistory, found: Block, day: int) -> None:
        self.prices = prices
        self.columns = found.columns
        self.choices = found.columns.choices
        self.day = day
        self.row = day - found.days.start
        self.as_of = prices.calendar[day].isoformat()

    def facts(self, node: Node) -> Facts:
        assert self.columns.facts is not None
        return self.columns.facts[self.columns.keys[id(node)]]

    def fail(self, node: Node) -> NoReturn:
        """Raise the first error the node's evaluation on the day meets."""
        self.visit(node, None)
        _unexplained(label(node))

    # -------------------------------------------------------------- allocation

    def visit(self, node: Node, trace: Trace | None) -> None:
        """Everything the node's evaluation on the day reads, in order."""
        if isinstance(node, Asset):
            if not self.prices.present(node.ticker)[self.day]:
                self.prices.checked_row(node.ticker, self.day, "asset")  # raises its error
                _unexplained(node.ticker)
        elif isinstance(node, Group | WeightEqual):
            self.units(node.children, trace)
        elif isinstance(node, If):
            self.units(self.branch(node, trace), trace)
        elif isinstance(node, WeightSpecified):
            for child in node.children:
                self.visit(child, trace)
        elif isinstance(node, Filter):
            self.filter(node, trace)
        else:
            assert isinstance(node, WeightInverseVolatility)
            self.inverse_volatility(node, trace)

    def units(self, children: tuple[Node, ...], trace: Trace | None) -> None:
        for child in children:
            if isinstance(child, If) and not self.choices.branch_vector_is_unit:
                self.units(self.branch(child, trace), trace)
            else:
                self.visit(child, trace)

    def branch(self, node: If, trace: Trace | None) -> tuple[Node, ...]:
        results = self.facts(node).conditions
        index = {id(c): k for k, c in enumerate(preorder(node.condition))}
        comparisons: Trace | None = [] if trace is not None else None

        def result(cond: Condition) -> bool:
            if isinstance(cond, Compare):
                left = self.operand(cond.left, trace)
                right = self.operand(cond.right, trace)
                out = bool(results[index[id(cond)]][self.row])
                if comparisons is not None:
                    comparisons.append(
                        {
                            "condition": format_condition(cond),
                            "left": left,
                            "right": right,
                            "result": out,
                        }
                    )
                return out
            if isinstance(cond, Not):
                result(cond.item)
            else:
                deciding = not isinstance(cond, And)  # `or` stops at its first true item
                for item in cond.items:
                    if result(item) == deciding:
                        break
            return bool(results[index[id(cond)]][self.row])

        taken = result(node.condition)
        if trace is not None:
            entry: dict[str, Any] = {
                "node": "if",
                **_at(node),
                "condition": format_condition(node.condition),
                "result": taken,
                "branch": "then" if taken else ("else" if node.otherwise is not None else "none"),
            }
            if isinstance(node.condition, Compare) and comparisons:
                entry["left"], entry["right"] = comparisons[0]["left"], comparisons[0]["right"]
            else:
                entry["comparisons"] = comparisons
            trace.append(entry)
        return node.then if taken else node.otherwise or ()

    def operand(self, op: Number | Indicator, trace: Trace | None) -> float:
        if isinstance(op, Number):
            return op.value
        assert op.ticker is not None
        value = float(self.prices.column(op.name, op.ticker, op.params)[self.day])
        if math.isnan(value):
            self.prices.value(op.name, op.ticker, op.params, self.day)  # raises its error
            _unexplained(format_indicator(op))
        if trace is not None:
            trace.append(
                {
                    "node": "indicator",
                    **_at(op),
                    "indicator": op.name,
                    "ticker": op.ticker,
                    "ticker_as_written": op.original,
                    "window": op.window,
                    "params": dict(op.params),
                    "as_of": self.as_of,
                    "value": value,
                }
            )
        return value

    # ----------------------------------------------------- filter and inverse vol

    def filter(self, node: Filter, trace: Trace | None) -> None:
        facts = self.facts(node)
        assert facts.scores is not None and facts.order is not None
        assert facts.scored is not None and facts.ranked is not None
        scores = facts.scores[self.row].tolist()
        for child, score in zip(node.children, scores, strict=True):
            if math.isnan(score):
                self.metric_failure(child, node.metric.name, node.metric.params)
        if not self.choices.filter_ranks_empty_children:  # each child is evaluated to rank it
            for k in facts.scored[self.row].tolist():
                self.visit(node.children[k], None)
        ranked = facts.order[self.row][: int(facts.ranked[self.row])].tolist()
        chosen = ranked[: node.select.n]
        self.units(tuple(node.children[k] for k in chosen), trace)
        if trace is not None:
            rank = {k: r + 1 for r, k in enumerate(ranked)}
            trace.append(
                {
                    "node": "filter",
                    **_at(node),
                    "metric": format_indicator(node.metric),
                    "select": f"{'top' if node.select.top else 'bottom'} {node.select.n}",
                    "as_of": self.as_of,
                    "candidates": [
                        {
                            "candidate": label(child),
                            **_at(child),
                            "score": scores[k],
                            "rank": rank.get(k),  # None: left out of the ranking
                            "selected": k in chosen,
                        }
                        for k, child in enumerate(node.children)
                    ],
                }
            )

    def inverse_volatility(self, node: WeightInverseVolatility, trace: Trace | None) -> None:
        facts = self.facts(node)
        assert facts.scores is not None and facts.total is not None and facts.held is not None
        sigmas = facts.scores[self.row].tolist()
        held = facts.held[self.row].tolist()
        rows: list[tuple[Node, float]] = []
        for child, sigma, holds in zip(node.children, sigmas, held, strict=True):
            self.visit(child, trace)
            if holds:
                if math.isnan(sigma):
                    self.metric_failure(child, *scoring(node))
                rows.append((child, sigma))
        if trace is not None and rows:
            trace.append(
                {
                    "node": "weight-inverse-volatility",
                    **_at(node),
                    "window": node.window,
                    "as_of": self.as_of,
                    "children": [
                        {"candidate": label(c), **_at(c), "stdev_return": s} for c, s in rows
                    ],
                    "total_inverse_volatility": float(facts.total[self.row]),
                }
            )

    # ------------------------------------------------------------------ errors

    def metric_failure(self, node: Node, name: str, params: Params) -> NoReturn:
        """The error of a metric the columns could not compute on the day."""
        if isinstance(node, Asset):
            self.prices.value(name, node.ticker, params, self.day)  # raises its error
            _unexplained(f"{name} of {node.ticker}")
        nav_failure(self.prices, node, name, params, self.day, choices=self.choices)


def nav_failure(
    prices: PriceHistory, node: Node, name: str, params: Params, day: int, *, choices: Choices
) -> NoReturn:
    """Why `name` on the node's simulated NAV fails on `day`: the first failing
    day of the simulation (its allocation, or a return it holds), in date order."""
    length = nav_length(name, params)
    start = day - length + 1
    if start < 0:
        raise StrategyDataError(
            label(node),
            name,
            window_of(params),
            prices.day(day),
            f"simulating this node's NAV needs {length} days of history, only {day + 1} exist",
        )
    if length > 1:
        days = range(start, day)  # the allocations held into each day of the NAV
        table = Columns(prices, node, days, choices, record=False).root(node)
        for d in range(start + 1, day + 1):
            row = d - 1 - start
            if table.bad[row]:
                explain(prices, node, d - 1, choices)
            for k, ticker in enumerate(table.tickers):
                if table.weights[row, k] > 0 and math.isnan(prices.return_column(ticker)[d]):
                    prices.daily_return(ticker, d)  # raises its error
                    _unexplained(f"the daily return of {ticker}")
    raise StrategyError(f"{label(node)}: {name} could not be computed on its NAV")


def explain(prices: PriceHistory, node: Node, day: int, choices: Choices) -> NoReturn:
    """Raise the first error the node's evaluation on `day` meets."""
    Reader(prices, block(prices, node, range(day, day + 1), choices), day).fail(node)
