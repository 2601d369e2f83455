"""The per-date walk that `evaluate` was before the columns: the tests' oracle.

AST + prices + date -> allocation and decision trace (spec §3, §5, §8), each
node evaluated on the date by walking the tree. Every node evaluates to an
allocation: ticker -> weight, summing to 1, or empty.
Results of untraced evaluations are memoised per (node, date) in the
`PriceHistory`, so group NAV simulations, nested filters and backtests over
many dates re-use them. The traced walk for the requested date is done afresh.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from typing import Any

import polars as pl

from alchemiser.dsl._deep import run_deep
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
    Or,
    Params,
    Strategy,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
    format_condition,
    format_indicator,
    window_of,
)
from alchemiser.dsl.errors import StrategyDataError, StrategyError
from alchemiser.dsl.indicators import (
    NAV_WARMUP_DAYS,
    RECURSIVE,
    PriceHistory,
    closes_needed,
    value_on,
)

# An `if` branch vector with several forms is one unit whose forms share
# equally (spec §3); False spreads them into the parent as separate siblings.
BRANCH_VECTOR_IS_UNIT = True
# When a `weight-specified` child is empty its weight goes to the other
# children in proportion to their written weights (False: in equal parts).
SPECIFIED_EMPTY_SHARE_PROPORTIONAL = True
# A `filter` ranks every child, then drops selected children that hold nothing
# today (their share goes to the other selected ones). False: children that hold
# nothing today are left out of the ranking, so n non-empty children are chosen.
FILTER_RANKS_EMPTY_CHILDREN = True
# Children of `weight-inverse-volatility` whose volatility is exactly 0 would
# get an infinite weight; they share the node equally and the others get nothing.
ZERO_VOLATILITY_TAKES_ALL = True

# Every node's allocation sums to 1 by construction; the final sum may differ
# from 1 only by rounding. More than this means a weighting node is wrong.
WEIGHT_SUM_TOLERANCE = 1e-9

Alloc = dict[str, float]


@dataclass(frozen=True)
class Evaluation:
    weights: dict[str, float]
    trace: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def _at(node: Any) -> dict[str, Any]:
    return {"line": node.line, "column": node.column, "at": f"{node.line}:{node.column}"}


def _equal(units: list[Alloc]) -> Alloc:
    """Each non-empty unit gets 1/n; inner weights kept."""
    if len(units) == 1:
        return units[0]
    share = 1.0 / len(units)
    out: Alloc = {}
    for unit in units:
        for ticker, w in unit.items():
            out[ticker] = out.get(ticker, 0.0) + w * share
    return out


def _weighted(pairs: list[tuple[float, Alloc]]) -> Alloc:
    total = sum(w for w, _ in pairs)
    out: Alloc = {}
    for weight, unit in pairs:
        for ticker, w in unit.items():
            out[ticker] = out.get(ticker, 0.0) + w * weight / total
    return out


def _label(node: Node) -> str:
    if isinstance(node, Asset):
        return node.ticker
    if isinstance(node, Group):
        return f"group {node.name!r}"
    return f"{FORM_NAMES[type(node)]} at {node.line}:{node.column}"


class _Evaluator:
    def __init__(self, prices: PriceHistory, memo: _Memo) -> None:
        self.prices = prices
        self.memo = memo.allocs
        self.returns = memo.returns
        self.metrics = memo.metrics
        self.prefetched = memo.prefetched
        self.series_of = memo.series_of

    # -------------------------------------------------------------- allocation

    def alloc(self, node: Node, i: int, trace: list[dict[str, Any]] | None = None) -> Alloc:
        if trace is None:
            key = (id(node), i)
            cached = self.memo.get(key)
            if cached is None:
                cached = self._compute(node, i, None)
                self.memo[key] = cached
            return cached
        return self._compute(node, i, trace)

    def _compute(self, node: Node, i: int, trace: list[dict[str, Any]] | None) -> Alloc:
        kind = type(node)
        if kind is Asset:
            assert isinstance(node, Asset)
            if self.prices.row(node.ticker, i) < 0:
                self.prices.checked_row(node.ticker, i, "asset")  # raises, naming the problem
            return {node.ticker: 1.0}
        if kind is Group or kind is WeightEqual:
            assert isinstance(node, Group | WeightEqual)
            units = self.units(node.children, i, trace)
            return _equal(units) if units else {}
        if kind is If:
            assert isinstance(node, If)
            units = self.units(self._branch(node, i, trace), i, trace)
            return _equal(units) if units else {}
        if isinstance(node, WeightSpecified):
            return self._specified(node, i, trace)
        if isinstance(node, Filter):
            return self._filter(node, i, trace)
        assert isinstance(node, WeightInverseVolatility)
        return self._inverse_volatility(node, i, trace)

    def units(
        self, children: tuple[Node, ...], i: int, trace: list[dict[str, Any]] | None
    ) -> list[Alloc]:
        """Non-empty allocations of the children, each one unit of the parent."""
        out: list[Alloc] = []
        for child in children:
            if isinstance(child, If) and not BRANCH_VECTOR_IS_UNIT:
                out.extend(self.units(self._branch(child, i, trace), i, trace))
                continue
            unit = self.alloc(child, i, trace)
            if unit:
                out.append(unit)
        return out

    def _branch(self, node: If, i: int, trace: list[dict[str, Any]] | None) -> tuple[Node, ...]:
        comparisons: list[dict[str, Any]] | None = [] if trace is not None else None
        result = self.condition(node.condition, i, trace, comparisons)
        if trace is not None:
            entry: dict[str, Any] = {
                "node": "if",
                **_at(node),
                "condition": format_condition(node.condition),
                "result": result,
                "branch": "then" if result else ("else" if node.otherwise is not None else "none"),
            }
            if isinstance(node.condition, Compare) and comparisons:
                entry["left"], entry["right"] = comparisons[0]["left"], comparisons[0]["right"]
            else:
                entry["comparisons"] = comparisons
            trace.append(entry)
        if result:
            return node.then
        return node.otherwise or ()

    def _specified(
        self, node: WeightSpecified, i: int, trace: list[dict[str, Any]] | None
    ) -> Alloc:
        pairs = []
        for weight, child in zip(node.fractions, node.children, strict=True):
            unit = self.alloc(child, i, trace)
            if unit and weight > 0:
                pairs.append((weight, unit))
        if not pairs:
            return {}
        if not SPECIFIED_EMPTY_SHARE_PROPORTIONAL:  # the missing share is split equally
            extra = (1.0 - sum(w for w, _ in pairs)) / len(pairs)
            pairs = [(w + extra, unit) for w, unit in pairs]
        return _weighted(pairs)

    # --------------------------------------------------------------- conditions

    def condition(
        self,
        cond: Condition,
        i: int,
        trace: list[dict[str, Any]] | None,
        comparisons: list[dict[str, Any]] | None,
    ) -> bool:
        if isinstance(cond, Compare):
            left = self.operand(cond.left, i, trace)
            right = self.operand(cond.right, i, trace)
            result = _compare(cond.op, left, right)
            if comparisons is not None:
                comparisons.append(
                    {
                        "condition": format_condition(cond),
                        "left": left,
                        "right": right,
                        "result": result,
                    }
                )
            return result
        if isinstance(cond, Not):
            return not self.condition(cond.item, i, trace, comparisons)
        if isinstance(cond, And):
            return all(self.condition(c, i, trace, comparisons) for c in cond.items)
        assert isinstance(cond, Or)
        return any(self.condition(c, i, trace, comparisons) for c in cond.items)

    def operand(self, op: Number | Indicator, i: int, trace: list[dict[str, Any]] | None) -> float:
        if isinstance(op, Number):
            return op.value
        assert op.ticker is not None
        value = self.prices.value(op.name, op.ticker, op.params, i)
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
                    "as_of": self.prices.calendar[i].isoformat(),
                    "value": value,
                }
            )
        return value

    # ----------------------------------------------------- filter and inverse vol

    def metric(self, node: Node, name: str, params: Params, i: int) -> float:
        """The indicator on an asset's prices, or on any other node's simulated NAV."""
        if isinstance(node, Asset):
            return self.prices.value(name, node.ticker, params, i)
        key = (id(node), i, name, params)
        value = self.metrics.get(key)
        if value is None:
            need = closes_needed(name, params) + (NAV_WARMUP_DAYS if name in RECURSIVE else 0)
            value = value_on(name, params, self.nav(node, i, need, name, params))
            if math.isnan(value):
                raise StrategyError(f"{_label(node)}: {name} could not be computed on its NAV")
            self.metrics[key] = value
        return value

    def nav(self, node: Node, i: int, length: int, name: str, params: Params) -> list[float]:
        """`length` simulated daily values of `node` ending at day i, starting at 1."""
        start = i - length + 1
        if start < 0:
            raise StrategyDataError(
                _label(node),
                name,
                window_of(params),
                self.prices.day(i),
                f"simulating this node's NAV needs {length} days of history, only {i + 1} exist",
            )
        values = [1.0]
        for d in range(start + 1, i + 1):
            values.append(values[-1] * (1.0 + self.day_return(node, d)))
        return values

    def day_return(self, node: Node, d: int) -> float:
        key = (id(node), d)
        cached = self.returns.get(key)
        if cached is None:
            held = self.alloc(node, d - 1)
            cached = sum(w * self.prices.daily_return(t, d) for t, w in held.items())
            self.returns[key] = cached
        return cached

    def _prefetch(self, node: Filter | WeightInverseVolatility, name: str, params: Params) -> None:
        """Compute the metric for all asset children in one query, the first time."""
        if id(node) not in self.prefetched:
            self.prefetched.add(id(node))
            assets = [c for c in node.children if isinstance(c, Asset)]
            if len(assets) > 1:
                self.prices.prefetch((name, c.ticker, params) for c in assets)

    def _scores(self, node: Filter, name: str, params: Params, i: int) -> list[float]:
        """The metric of every child on day i. Asset children read whole cached
        series (one list index each): filters with hundreds of assets are scored
        on every day of their parents' NAV simulations."""
        series = self.series_of.get(id(node))
        if series is None:
            self._prefetch(node, name, params)
            series = [
                self.prices.aligned(name, c.ticker, params) if isinstance(c, Asset) else None
                for c in node.children
            ]
            self.series_of[id(node)] = series
        scores: list[float] = []
        for child, values in zip(node.children, series, strict=True):
            score = values[i] if values is not None else None
            if score is None or math.isnan(score):  # no row, short history, lazy, not an asset
                score = self.metric(child, name, params, i)
            scores.append(score)
        return scores

    def _filter(self, node: Filter, i: int, trace: list[dict[str, Any]] | None) -> Alloc:
        metric = node.metric
        scores = self._scores(node, metric.name, metric.params, i)
        # A stable sort on the score (negated for top): ties keep the written order.
        if node.select.top:
            order = sorted(range(len(scores)), key=lambda k: -scores[k])
        else:
            order = sorted(range(len(scores)), key=scores.__getitem__)
        if not FILTER_RANKS_EMPTY_CHILDREN:  # only children holding something today compete
            order = [k for k in order if self.alloc(node.children[k], i)]
        chosen = order[: node.select.n]
        units = self.units(tuple(node.children[k] for k in chosen), i, trace)
        if trace is not None:
            rank = {k: r + 1 for r, k in enumerate(order)}
            trace.append(
                {
                    "node": "filter",
                    **_at(node),
                    "metric": format_indicator(metric),
                    "select": f"{'top' if node.select.top else 'bottom'} {node.select.n}",
                    "as_of": self.prices.calendar[i].isoformat(),
                    "candidates": [
                        {
                            "candidate": _label(child),
                            **_at(child),
                            "score": scores[k],
                            "rank": rank.get(k),  # None: left out of the ranking
                            "selected": k in chosen,
                        }
                        for k, child in enumerate(node.children)
                    ],
                }
            )
        return _equal(units) if units else {}

    def _inverse_volatility(
        self, node: WeightInverseVolatility, i: int, trace: list[dict[str, Any]] | None
    ) -> Alloc:
        params: Params = (("window", node.window),)
        self._prefetch(node, "stdev-return", params)
        rows: list[tuple[Node, float, Alloc]] = []
        for child in node.children:
            unit = self.alloc(child, i, trace)
            if unit:
                rows.append((child, self.metric(child, "stdev-return", params, i), unit))
        if not rows:
            return {}
        zero = [r for r in rows if r[1] == 0.0]
        if zero and ZERO_VOLATILITY_TAKES_ALL:
            pairs = [(1.0, unit) for _, _, unit in zero]
        else:
            pairs = [(1.0 / sigma, unit) for _, sigma, unit in rows if sigma > 0]
        if trace is not None:
            total = sum(w for w, _ in pairs)
            trace.append(
                {
                    "node": "weight-inverse-volatility",
                    **_at(node),
                    "window": node.window,
                    "as_of": self.prices.calendar[i].isoformat(),
                    "children": [
                        {"candidate": _label(c), **_at(c), "stdev_return": s} for c, s, _ in rows
                    ],
                    "total_inverse_volatility": total,
                }
            )
        return _weighted(pairs)


def _compare(op: str, left: float, right: float) -> bool:
    if op == ">":
        return left > right
    if op == "<":
        return left < right
    if op == ">=":
        return left >= right
    if op == "<=":
        return left <= right
    return left == right


@dataclass
class _Memo:
    """Per-strategy results keyed by (id(node), calendar index). The strategy is
    held here so that its nodes, and so their ids, outlive the memo."""

    strategy: Strategy
    allocs: dict[tuple[int, int], Alloc] = field(default_factory=dict)
    returns: dict[tuple[int, int], float] = field(default_factory=dict)
    metrics: dict[tuple[int, int, str, Params], float] = field(default_factory=dict)
    prefetched: set[int] = field(default_factory=set)
    series_of: dict[int, list[list[float | None] | None]] = field(default_factory=dict)


def _memo_for(prices: PriceHistory, strategy: Strategy) -> _Memo:
    memo = prices.memos.get(id(strategy))
    if not isinstance(memo, _Memo) or memo.strategy is not strategy:
        memo = _Memo(strategy)
        prices.memos[id(strategy)] = memo
    return memo


def evaluate(strategy: Strategy, prices: PriceHistory | pl.DataFrame, as_of: date) -> Evaluation:
    """Evaluate `strategy` as of `as_of` (whose row in `prices` is "today")."""
    history = prices if isinstance(prices, PriceHistory) else PriceHistory(prices)
    i = history.index_of(as_of)
    if i < 0:
        raise StrategyDataError("*", "prices", None, as_of, "no prices on the as-of date")
    evaluator = _Evaluator(history, _memo_for(history, strategy))
    trace: list[dict[str, Any]] = []
    weights = run_deep(lambda: evaluator.alloc(strategy.body, i, trace))
    if not weights:
        raise StrategyError(f"the strategy selected nothing as of {as_of.isoformat()}")
    total = sum(weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:  # a weighting node is wrong, not the strategy
        name = strategy.name if strategy.name is not None else "(unnamed)"
        raise StrategyError(
            f"internal error evaluating strategy {name!r} as of {as_of.isoformat()}: "
            f"weights sum to {total!r}, expected 1"
        )
    weights = {t: w / total for t, w in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))}
    missing = [t for t in strategy.tickers if t not in history or history.row(t, i) < 0]
    warnings = [f"{t}: no price data as of {as_of.isoformat()} (not needed today)" for t in missing]
    return Evaluation(weights, trace, warnings)
