"""A strategy evaluated on every day of a price history in one pass.

Each condition is a boolean column over the calendar, each indicator a numeric
column, each node's allocation a (day x ticker) weight table and each group's
NAV a column built from its children's allocations and daily returns (spec §3,
§5). Every form mirrors its per-day code in `evaluator`, operation for
operation, so a day's weights are the floats `evaluate` gives for that day.

`bad` marks the days on which `evaluate` would raise (missing or short data,
nothing selected); the caller asks `evaluate` for such a day's exact error.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from alchemiser.dsl._deep import run_deep
from alchemiser.dsl.ast import (
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
)
from alchemiser.dsl.errors import StrategyError
from alchemiser.dsl.evaluator import (
    BRANCH_VECTOR_IS_UNIT,
    FILTER_RANKS_EMPTY_CHILDREN,
    SPECIFIED_EMPTY_SHARE_PROPORTIONAL,
    WEIGHT_SUM_TOLERANCE,
    ZERO_VOLATILITY_TAKES_ALL,
)
from alchemiser.dsl.indicators import (
    NAV_WARMUP_DAYS,
    RECURSIVE,
    Bools,
    Floats,
    PriceHistory,
    closes_needed,
    values_on,
)

# The columns follow the evaluator's current choices only.
if not (
    BRANCH_VECTOR_IS_UNIT
    and SPECIFIED_EMPTY_SHARE_PROPORTIONAL
    and FILTER_RANKS_EMPTY_CHILDREN
    and ZERO_VOLATILITY_TAKES_ALL
):
    raise NotImplementedError("dsl.columns follows the evaluator's default choices only")

_COMPARE: dict[str, Callable[[Floats, Floats], Bools]] = {
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
    "=": np.equal,
}


@dataclass
class Table:
    """A node's allocation on every day: `weights[d, k]` of `tickers[k]`.

    A day whose row holds no positive weight is an empty allocation. On `bad`
    days the per-day evaluation raises and the row means nothing.
    """

    tickers: list[str]
    weights: Floats
    bad: Bools
    _held: Bools | None = None

    def held(self) -> Bools:
        if self._held is None:
            self._held = np.asarray((self.weights > 0).any(axis=1), dtype=np.bool_)
        return self._held


@dataclass(frozen=True)
class Allocations:
    """A strategy's normalised weights on every calendar day, and its bad days."""

    tickers: list[str]
    weights: Floats
    bad: Bools

    def unchanged(self, days: range) -> Bools:
        """For each day of `days`: its weights are the day before's, to the bit."""
        out = np.zeros(len(days), dtype=np.bool_)
        if len(days) > 1:
            rows = self.weights[days.start : days.stop]
            out[1:] = (rows[1:] == rows[:-1]).all(axis=1)
        return out

    def on(self, day: int) -> dict[str, float]:
        """Day `day`'s weights, largest first (ties by ticker), as `evaluate` orders them."""
        row = self.weights[day]
        held = np.flatnonzero(row > 0).tolist()
        pairs = [(self.tickers[k], float(row[k])) for k in held]
        return dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))


class _Sum:
    """Weights accumulated into a table, ticker by ticker in order of addition."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.index: dict[str, int] = {}
        self.parts: list[Table] = []

    def add(self, table: Table) -> None:
        for ticker in table.tickers:
            self.index.setdefault(ticker, len(self.index))
        self.parts.append(table)

    def table(
        self,
        scale: Callable[[int, Table], tuple[Bools, Floats | float, Floats | None]],
        bad: Bools,
    ) -> Table:
        """Sum over the parts of where(mask, weights * mul / div, 0), in part order.

        Table weights are finite, so a zero factor gives exact zeros, and a day
        is held when some part is held on it under its mask (mul and div > 0)."""
        out = np.zeros((self.days, len(self.index)))
        held = np.zeros(self.days, dtype=np.bool_)
        for k, part in enumerate(self.parts):
            if not part.tickers:
                continue
            mask, mul, div = scale(k, part)
            values = part.weights * np.where(mask, mul, 0.0)[:, None]
            if div is not None:
                values /= np.where(mask, div, 1.0)[:, None]
            first = self.index[part.tickers[0]]
            width = len(part.tickers)
            if all(self.index[t] == first + j for j, t in enumerate(part.tickers)):
                out[:, first : first + width] += values
            else:
                out[:, [self.index[t] for t in part.tickers]] += values
            held |= mask & part.held()
        return Table(list(self.index), out, bad, held)


def _structure(body: Node) -> tuple[dict[int, int], dict[int, int]]:
    """A key per node (equal for equal subtrees, whatever their position) and how
    many times each key's table is asked for when each distinct subtree is
    evaluated once. Exported strategies repeat subtrees a lot (about 4 nodes in 5)."""
    keys: dict[int, int] = {}
    ids: dict[Hashable, int] = {}  # a subtree's shape -> its key
    calls: dict[int, int] = {}
    stack: list[tuple[Node, bool]] = [(body, False)]
    while stack:
        node, ready = stack.pop()
        if id(node) in keys:
            continue
        kids = _children(node)
        if not ready:
            stack.append((node, True))
            stack += [(c, False) for c in kids if id(c) not in keys]
            continue
        key = ids.setdefault(_key(node, tuple(keys[id(c)] for c in kids)), len(ids))
        keys[id(node)] = key
        if key not in calls:  # a new subtree: its children are asked for once each
            calls[key] = 0
            for c in kids:
                calls[keys[id(c)]] += 1
    calls[keys[id(body)]] += 1
    return keys, calls


def _children(node: Node) -> tuple[Node, ...]:
    if isinstance(node, If):
        return (*node.then, *(node.otherwise or ()))
    if isinstance(node, Asset):
        return ()
    return node.children


def _key(node: Node, kids: tuple[int, ...]) -> Hashable:
    if isinstance(node, Asset):
        return ("asset", node.ticker)
    if isinstance(node, Group | WeightEqual):
        return ("equal", kids)
    if isinstance(node, If):
        split = len(node.then)
        otherwise = None if node.otherwise is None else kids[split:]
        return ("if", format_condition(node.condition), kids[:split], otherwise)
    if isinstance(node, WeightSpecified):
        return ("specified", node.fractions, kids)
    if isinstance(node, WeightInverseVolatility):
        return ("inverse-volatility", node.window, kids)
    select = (node.select.top, node.select.n)
    return ("filter", format_indicator(node.metric), select, kids)


class _Columns:
    def __init__(self, prices: PriceHistory, body: Node) -> None:
        self.keys, self.calls = _structure(body)
        self.memo: dict[int, Table] = {}
        self.prices = prices
        self.days = len(prices.calendar)
        self.ones = np.ones((self.days, 1))  # every asset's weights (never written to)
        self.ones.flags.writeable = False

    def any(self, masks: Iterable[Bools]) -> Bools:
        out = np.zeros(self.days, dtype=np.bool_)
        for mask in masks:
            out = out | mask
        return out

    def empty(self) -> Table:
        return Table([], np.zeros((self.days, 0)), np.zeros(self.days, dtype=np.bool_))

    # -------------------------------------------------------------- allocation

    def root(self, body: Node) -> Table:
        with np.errstate(all="ignore"):  # bad days compute NaNs and infinities, unread
            return self.table(body)

    def table(self, node: Node) -> Table:
        """The node's table; a repeated subtree is computed once and kept while asked for."""
        key = self.keys[id(node)]
        table = self.memo.get(key)
        if table is None:
            table = self._compute(node)
        self.calls[key] -= 1
        if self.calls[key] > 0:
            self.memo[key] = table
        else:
            self.memo.pop(key, None)
        return table

    def _compute(self, node: Node) -> Table:
        if isinstance(node, Asset):
            present = self.prices.present(node.ticker)
            return Table([node.ticker], self.ones, ~present)
        if isinstance(node, Group | WeightEqual):
            return self.equal([self.table(c) for c in node.children])
        if isinstance(node, If):
            return self.branch(node)
        if isinstance(node, WeightSpecified):
            return self.specified(node)
        if isinstance(node, Filter):
            return self.filter(node)
        return self.inverse_volatility(node)

    def equal(self, tables: list[Table]) -> Table:
        """Each child holding something today gets 1/n of the node (`_equal`)."""
        if len(tables) == 1:  # w * (1 / 1) is w
            return tables[0]
        held = [t.held() for t in tables]
        count = np.zeros(self.days, dtype=np.int64)
        for h in held:
            count += h
        with np.errstate(divide="ignore"):
            share = 1.0 / count
        return self._sum(
            tables, lambda k, _: (held[k], share, None), self.any(t.bad for t in tables)
        )

    def _sum(
        self,
        tables: Sequence[Table],
        scale: Callable[[int, Table], tuple[Bools, Floats | float, Floats | None]],
        bad: Bools,
    ) -> Table:
        total = _Sum(self.days)
        for t in tables:
            total.add(t)
        return total.table(scale, bad)

    def branch(self, node: If) -> Table:
        result, bad = self.condition(node.condition)
        then = self.equal([self.table(c) for c in node.then])
        other = self.equal([self.table(c) for c in node.otherwise]) if node.otherwise else None
        otherwise = other if other is not None else self.empty()
        bad = bad | (result & then.bad) | (~result & otherwise.bad)
        masks = [result, ~result]
        return self._sum([then, otherwise], lambda k, _: (masks[k], 1.0, None), bad)

    def specified(self, node: WeightSpecified) -> Table:
        tables = [self.table(c) for c in node.children]
        uses = [t.held() & (w > 0) for t, w in zip(tables, node.fractions, strict=True)]
        total = np.zeros(self.days)
        for use, w in zip(uses, node.fractions, strict=True):
            total = total + np.where(use, w, 0.0)
        fractions = node.fractions
        return self._sum(
            tables, lambda k, _: (uses[k], fractions[k], total), self.any(t.bad for t in tables)
        )

    def inverse_volatility(self, node: WeightInverseVolatility) -> Table:
        params: Params = (("window", node.window),)
        tables = [self.table(c) for c in node.children]
        held = [t.held() for t in tables]
        bad = self.any(t.bad for t in tables)
        sigmas: list[Floats] = []
        for child, table, h in zip(node.children, tables, held, strict=True):
            sigma, sigma_bad = self.metric(child, table, "stdev-return", params)
            bad = bad | (h & sigma_bad)
            sigmas.append(sigma)
        zeros = [h & (s == 0.0) for h, s in zip(held, sigmas, strict=True)]
        any_zero = self.any(zeros)
        uses = [
            np.where(any_zero, z, h & (s > 0)) for z, h, s in zip(zeros, held, sigmas, strict=True)
        ]
        with np.errstate(all="ignore"):
            inverse = [np.where(any_zero, 1.0, 1.0 / s) for s in sigmas]
        total = np.zeros(self.days)
        for use, w in zip(uses, inverse, strict=True):
            total = total + np.where(use, w, 0.0)
        return self._sum(tables, lambda k, _: (uses[k], inverse[k], total), bad)

    def filter(self, node: Filter) -> Table:
        name, params = node.metric.name, node.metric.params
        tables = [self.table(c) for c in node.children]
        # Every child is scored (on its NAV: its past days); only the chosen are evaluated today.
        bad = np.zeros(self.days, dtype=np.bool_)
        columns: list[Floats] = []
        for child, table in zip(node.children, tables, strict=True):
            score, score_bad = self.metric(child, table, name, params)
            columns.append(score)
            bad = bad | score_bad
        scores = np.stack(columns, axis=1)
        # A stable sort on the score (negated for top): ties keep the written order.
        order = np.argsort(-scores if node.select.top else scores, axis=1, kind="stable")
        chosen = order[:, : node.select.n]
        held = np.stack([t.held() for t in tables], axis=1)
        child_bad = np.stack([t.bad for t in tables], axis=1)
        bad = bad | np.take_along_axis(child_bad, chosen, axis=1).any(axis=1)
        chosen_held = np.take_along_axis(held, chosen, axis=1)
        with np.errstate(divide="ignore"):
            share = 1.0 / chosen_held.sum(axis=1)
        index: dict[str, int] = {}
        for table in tables:
            for ticker in table.tickers:
                index.setdefault(ticker, len(index))
        out = np.zeros((self.days, len(index)))
        days = np.arange(self.days)
        single = all(len(t.tickers) == 1 for t in tables)
        if single:  # one ticker per child (assets, mostly): one gather per rank
            first = np.stack([t.weights[:, 0] for t in tables], axis=1)
            column_of = np.array([index[t.tickers[0]] for t in tables])
        # Rank by rank, so that each day adds its chosen children in rank order.
        for r in range(chosen.shape[1]):
            picked, mask = chosen[:, r], chosen_held[:, r]
            if single:
                weight = first[days, picked]
                out[days, column_of[picked]] += np.where(mask, weight * share, 0.0)
                continue
            for k in np.unique(picked[mask]):
                table = tables[k]
                cols = [index[t] for t in table.tickers]
                rows = mask & (picked == k)
                out[:, cols] += np.where(rows[:, None], table.weights * share[:, None], 0.0)
        return Table(list(index), out, bad, np.asarray(chosen_held.any(axis=1), dtype=np.bool_))

    # ----------------------------------------------------------------- metrics

    def metric(self, node: Node, table: Table, name: str, params: Params) -> tuple[Floats, Bools]:
        """The indicator on an asset's prices, or on any other node's simulated NAV."""
        if isinstance(node, Asset):
            values = self.prices.column(name, node.ticker, params)
            return values, np.isnan(values)
        length = closes_needed(name, params) + (NAV_WARMUP_DAYS if name in RECURSIVE else 0)
        growth, growth_bad = self.day_growth(table)
        windows = np.ones((self.days, length))
        bad = np.ones(self.days, dtype=np.bool_)
        if length == 1:
            bad[:] = False
        elif self.days >= length:
            # Day i's NAV: 1 on day i-length+1, then compounded each day to day i.
            windows[length - 1 :, 1:] = np.cumprod(
                sliding_window_view(growth[1:], length - 1), axis=1
            )
            spans = sliding_window_view(growth_bad[1:], length - 1).any(axis=1)
            bad[length - 1 :] = spans
        values = values_on(name, params, list(windows.T))
        return values, bad | np.isnan(values)

    def day_growth(self, table: Table) -> tuple[Floats, Bools]:
        """1 + the node's return into each day, holding what it chose the day before."""
        held = np.zeros((self.days, len(table.tickers)))
        held[1:] = table.weights[:-1]
        bad = np.ones(self.days, dtype=np.bool_)
        bad[1:] = table.bad[:-1]
        total = np.zeros(self.days)
        for k, ticker in enumerate(table.tickers):
            returns = self.prices.return_column(ticker)
            holds = held[:, k] > 0
            bad = bad | (holds & np.isnan(returns))
            total = total + np.where(holds, held[:, k] * returns, 0.0)
        return 1.0 + total, bad

    # -------------------------------------------------------------- conditions

    def condition(self, cond: Condition) -> tuple[Bools, Bools]:
        """(result, bad) on every day; `and`/`or` stop at their first deciding item."""
        if isinstance(cond, Compare):
            left, left_bad = self.operand(cond.left)
            right, right_bad = self.operand(cond.right)
            return _COMPARE[cond.op](left, right), left_bad | right_bad
        if isinstance(cond, Not):
            result, bad = self.condition(cond.item)
            return ~result, bad
        deciding = isinstance(cond, Or)  # the item value that ends the evaluation
        going = np.ones(self.days, dtype=np.bool_)
        bad = np.zeros(self.days, dtype=np.bool_)
        for item in cond.items:
            result, item_bad = self.condition(item)
            bad = bad | (going & item_bad)
            going = going & ~item_bad & (result != deciding)
        # and: true if no item was false; or: true if some item was true.
        if deciding:
            return ~going & ~bad, bad
        return going, bad

    def operand(self, op: Number | Indicator) -> tuple[Floats, Bools]:
        if isinstance(op, Number):
            return np.full(self.days, op.value), np.zeros(self.days, dtype=np.bool_)
        assert op.ticker is not None
        values = self.prices.column(op.name, op.ticker, op.params)
        return values, np.isnan(values)


def _indicator_uses(strategy: Strategy) -> Iterable[tuple[str, str, Params]]:
    """Every (indicator, ticker, parameters) the strategy reads from prices."""
    for ticker in strategy.tickers:
        yield "current-price", ticker, ()  # for daily returns
    stack: list[object] = [strategy.body]
    while stack:
        node = stack.pop()
        if isinstance(node, Indicator) and node.ticker is not None:
            yield node.name, node.ticker, node.params
        elif isinstance(node, Compare):
            stack += [node.left, node.right]
        elif isinstance(node, And | Or):
            stack += list(node.items)
        elif isinstance(node, Not):
            stack.append(node.item)
        elif isinstance(node, If):
            stack += [node.condition, *node.then, *(node.otherwise or ())]
        elif isinstance(node, Filter | WeightInverseVolatility):
            if isinstance(node, Filter):
                name, params = node.metric.name, node.metric.params
            else:
                name, params = "stdev-return", (("window", node.window),)
            for child in node.children:
                if isinstance(child, Asset):
                    yield name, child.ticker, params
            stack += list(node.children)
        elif isinstance(node, Group | WeightEqual | WeightSpecified):
            stack += list(node.children)


def allocations(strategy: Strategy, prices: PriceHistory) -> Allocations:
    """The strategy's weights on every day of `prices`' calendar, normalised as `evaluate` does."""
    prices.prefetch(_indicator_uses(strategy))  # one query per indicator and parameters
    columns = _Columns(prices, strategy.body)
    table = run_deep(lambda: columns.root(strategy.body))
    held = table.held()
    bad = table.bad | ~held
    total = table.weights.sum(axis=1)
    wrong = ~bad & (np.abs(total - 1.0) > WEIGHT_SUM_TOLERANCE)
    if wrong.any():
        day = prices.calendar[int(np.argmax(wrong))]
        raise StrategyError(f"internal error in the columnar evaluation as of {day}: bad weights")
    with np.errstate(all="ignore"):
        weights = np.where(bad[:, None], 0.0, table.weights / total[:, None])
    return Allocations(table.tickers, weights, bad)
