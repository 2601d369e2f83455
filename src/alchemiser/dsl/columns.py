"""A strategy evaluated on a range of days in one pass.

Each condition is a boolean column over the days, each indicator a numeric
column, each node's allocation a (day x ticker) weight table and each group's
NAV a column built from its children's allocations and daily returns (spec §3,
§5). This is the one implementation of every form's meaning: the backtest reads
its weights on every day, the live evaluation (`live`) on one.

Every node is computed over the days its ancestors need, ending on the last day
of the range: the range for the root, the range plus a metric's look-back for
the children of a `filter` or `weight-inverse-volatility` scored on their NAV,
nested as the tree nests. So one date costs one day for most nodes. A branch
taken on none of the days is not computed.

`bad` marks the days on which the evaluation fails (missing or short data);
`live` finds the exact error by following the evaluation order.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
import numpy.typing as npt
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
)
from alchemiser.dsl.choices import DEFAULT_CHOICES, WEIGHT_SUM_TOLERANCE, Choices, Unit
from alchemiser.dsl.errors import StrategyError
from alchemiser.dsl.indicators import (
    NAV_WARMUP_DAYS,
    RECURSIVE,
    Bools,
    Floats,
    PriceHistory,
    closes_needed,
    values_on,
)

Ints = npt.NDArray[np.int64]
_Column = TypeVar("_Column", Floats, Bools, Ints)

COMPARE: dict[str, Callable[[Floats, Floats], Bools]] = {
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
    "=": np.equal,
}


def nav_length(name: str, params: Params) -> int:
    """Days of simulated NAV an indicator on a node's NAV needs (spec §5)."""
    return closes_needed(name, params) + (NAV_WARMUP_DAYS if name in RECURSIVE else 0)


def scoring(node: Filter | WeightInverseVolatility) -> tuple[str, Params]:
    """The indicator a filter ranks by, or inverse volatility's stdev-return."""
    if isinstance(node, Filter):
        return node.metric.name, node.metric.params
    return "stdev-return", (("window", node.window),)


@dataclass
class Table:
    """A node's allocation on each day: `weights[d, k]` of `tickers[k]`.

    A day whose row holds no positive weight is an empty allocation. On `bad`
    days the evaluation fails and the row means nothing.
    """

    tickers: list[str]
    weights: Floats
    bad: Bools
    _held: Bools | None = None

    def held(self) -> Bools:
        if self._held is None:
            self._held = np.asarray((self.weights > 0).any(axis=1), dtype=np.bool_)
        return self._held

    def tail(self, days: int) -> Table:
        """The last `days` rows (a parent's days end where its children's do)."""
        if days == len(self.bad):
            return self
        held = None if self._held is None else self._held[-days:]
        return Table(self.tickers, self.weights[-days:], self.bad[-days:], held)

    def unit(self) -> Unit:
        return {t: self.weights[:, k] for k, t in enumerate(self.tickers)}


@dataclass
class Facts:
    """What a node decided on each day of the range (its columns' last rows),
    for the live trace. Kept per subtree key: equal subtrees decide alike."""

    conditions: list[Bools] = field(default_factory=list)  # `if`: in pre-order
    scores: Floats | None = None  # filter scores, inverse volatility's sigmas; NaN: failed
    order: Ints | None = None  # filter: children by rank
    scored: Ints | None = None  # filter: children by score alone
    ranked: Ints | None = None  # filter: how many children are ranked
    total: Floats | None = None  # inverse volatility: sum of the weights
    held: Bools | None = None  # inverse volatility: (day, child) holds something


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
        """Day `day`'s weights, largest first (ties by ticker)."""
        row = self.weights[day]
        held = np.flatnonzero(row > 0).tolist()
        pairs = [(self.tickers[k], float(row[k])) for k in held]
        return dict(sorted(pairs, key=lambda kv: (-kv[1], kv[0])))


class _Sum:
    """Weights accumulated into a table, part by part in order of addition.

    Every table lists its tickers sorted, whichever parts were computed (a
    branch taken on no day is not): sums across tickers (a NAV's daily return,
    the weights' total) then add the same floats in the same order, so a day's
    result does not depend on the other days computed with it."""

    def __init__(self, days: int) -> None:
        self.days = days
        self.tickers: set[str] = set()
        self.parts: list[Table] = []

    def add(self, table: Table) -> None:
        self.tickers.update(table.tickers)
        self.parts.append(table)

    def table(
        self,
        scale: Callable[[int, Table], tuple[Bools, Floats | float, Floats | None]],
        bad: Bools,
    ) -> Table:
        """Sum over the parts of where(mask, weights * mul / div, 0), in part order.

        Table weights are finite, so a zero factor gives exact zeros, and a day
        is held when some part is held on it under its mask (mul and div > 0)."""
        tickers = sorted(self.tickers)
        index = {t: k for k, t in enumerate(tickers)}
        out = np.zeros((self.days, len(tickers)))
        held = np.zeros(self.days, dtype=np.bool_)
        for k, part in enumerate(self.parts):
            if not part.tickers:
                continue
            mask, mul, div = scale(k, part)
            values = part.weights * np.where(mask, mul, 0.0)[:, None]
            if div is not None:
                values /= np.where(mask, div, 1.0)[:, None]
            first = index[part.tickers[0]]
            width = len(part.tickers)
            if all(index[t] == first + j for j, t in enumerate(part.tickers)):
                out[:, first : first + width] += values
            else:
                out[:, [index[t] for t in part.tickers]] += values
            held |= mask & part.held()
        return Table(tickers, out, bad, held)


def row_totals(table: Table) -> Floats:
    """Each day's sum of weights, ticker by ticker in the table's (sorted) order."""
    total = np.zeros(len(table.bad))
    for k in range(len(table.tickers)):
        total = total + table.weights[:, k]
    return total


@dataclass(frozen=True)
class Shape:
    """The strategy's distinct subtrees: a key per node (equal for equal subtrees,
    whatever their position), a node of each key, its children's keys, and how
    many times each key's table is asked for when each distinct subtree is
    evaluated once. Exported strategies repeat subtrees a lot (about 4 nodes in 5)."""

    keys: dict[int, int]
    nodes: dict[int, Node]
    calls: dict[int, int]
    kids: dict[int, tuple[int, ...]]


def shape_of(body: Node) -> Shape:
    """Recursive: call it on the big-stack thread (`run_deep`). Real strategies
    have some 100,000 nodes: one plain function call per node, no helpers, and no
    `map` (from Python 3.12 recursion through C has its own, far lower, limit)."""
    keys: dict[int, int] = {}
    nodes: dict[int, Node] = {}
    ids: dict[Hashable, int] = {}  # a subtree's shape -> its key
    calls: dict[int, int] = {}
    kids_of: dict[int, tuple[int, ...]] = {}

    def visit(node: Node) -> int:
        key = keys.get(id(node))
        if key is not None:
            return key
        kids: tuple[int, ...]
        shape: Hashable
        if type(node) is Asset:
            kids = ()
            shape = ("asset", node.ticker)
        elif type(node) is If:
            then = tuple([visit(c) for c in node.then])
            otherwise = (
                None if node.otherwise is None else tuple([visit(c) for c in node.otherwise])
            )
            kids = then if otherwise is None else then + otherwise
            shape = ("if", node.condition, then, otherwise)  # equal ignoring positions
        else:
            kids = tuple([visit(c) for c in node.children])  # type: ignore[union-attr]
            if type(node) is Group or type(node) is WeightEqual:
                shape = ("equal", kids)
            elif type(node) is WeightSpecified:
                shape = ("specified", node.fractions, kids)
            elif type(node) is WeightInverseVolatility:
                shape = ("inverse-volatility", node.window, kids)
            else:
                assert type(node) is Filter
                shape = ("filter", node.metric, (node.select.top, node.select.n), kids)
        # A key is made after its children's, so children's keys are smaller.
        key = ids.setdefault(shape, len(ids))
        keys[id(node)] = key
        if key not in calls:  # a new subtree: its children are asked for once each
            nodes[key] = node
            calls[key] = 0
            kids_of[key] = kids
            for k in kids:
                calls[k] += 1
        return key

    calls[visit(body)] += 1
    return Shape(keys, nodes, calls, kids_of)


def children_of(node: Node) -> tuple[Node, ...]:
    if isinstance(node, If):
        return (*node.then, *(node.otherwise or ()))
    if isinstance(node, Asset):
        return ()
    return node.children


def look_backs(shape: Shape, root: int) -> dict[int, int]:
    """Days before the range's first day each key's table must start: a child
    scored on its NAV needs the metric's look-back before its parent's days."""
    need = {root: 0}
    for key in range(len(shape.nodes) - 1, -1, -1):  # parents (larger keys) before children
        if key not in need:
            continue
        node = shape.nodes[key]
        here = need[key]
        extra = 0
        if isinstance(node, Filter | WeightInverseVolatility):
            extra = nav_length(*scoring(node)) - 1
        for k in shape.kids[key]:
            more = here + (extra if extra and not isinstance(shape.nodes[k], Asset) else 0)
            if need.get(k, -1) < more:
                need[k] = more
    return need


def preorder(cond: Condition) -> list[Condition]:
    """The condition and its parts, each before its items, in written order."""
    out: list[Condition] = []
    stack = [cond]
    while stack:
        c = stack.pop()
        out.append(c)
        if isinstance(c, Not):
            stack.append(c.item)
        elif isinstance(c, And | Or):
            stack += reversed(c.items)
    return out


class Columns:
    """The tables of one strategy body over the calendar indices `days`."""

    def __init__(
        self, prices: PriceHistory, body: Node, days: range, choices: Choices, *, record: bool
    ) -> None:
        self.shape = shape_of(body)
        self.keys = self.shape.keys
        self.calls = dict(self.shape.calls)
        self.end = days.stop - 1
        self.block = len(days)
        need = look_backs(self.shape, self.keys[id(body)])
        self.spans = {k: self.end - max(0, days.start - n) + 1 for k, n in need.items()}
        self.memo: dict[int, Table] = {}
        self.done: set[int] = set()
        self.prices = prices
        self.choices = choices
        self.facts: dict[int, Facts] | None = {} if record else None
        self.ones = np.ones((max(self.spans.values()), 1))  # every asset's weights
        self.ones.flags.writeable = False

    def fact(self, node: Node) -> Facts:
        assert self.facts is not None
        return self.facts.setdefault(self.keys[id(node)], Facts())

    def last(self, values: _Column) -> _Column:
        """The range's rows of a column (a copy: the column may be long)."""
        return values[-self.block :].copy()

    def column(self, name: str, ticker: str, params: Params, days: int) -> Floats:
        return self.prices.column(name, ticker, params)[self.end - days + 1 : self.end + 1]

    def returns(self, ticker: str, days: int) -> Floats:
        return self.prices.return_column(ticker)[self.end - days + 1 : self.end + 1]

    def prefetch(self, node: Filter | WeightInverseVolatility, name: str, params: Params) -> None:
        """The metric of all asset children in one query (a filter may rank hundreds)."""
        self.prices.prefetch(
            (name, c.ticker, params) for c in node.children if isinstance(c, Asset)
        )

    @staticmethod
    def any(masks: Iterable[Bools], days: int) -> Bools:
        out = np.zeros(days, dtype=np.bool_)
        for mask in masks:
            out = out | mask
        return out

    @staticmethod
    def empty(days: int) -> Table:
        return Table([], np.zeros((days, 0)), np.zeros(days, dtype=np.bool_))

    # -------------------------------------------------------------- allocation

    def root(self, body: Node) -> Table:
        with np.errstate(all="ignore"):  # bad days compute NaNs and infinities, unread
            return self.table(body)

    def table(self, node: Node) -> Table:
        """The node's table over its own days; a repeated subtree is computed once
        and kept while asked for."""
        key = self.keys[id(node)]
        table = self.memo.get(key)
        if table is None:
            table = self._compute(node, self.spans[key])
            self.done.add(key)
        self.calls[key] -= 1
        if self.calls[key] > 0:
            self.memo[key] = table
        else:
            self.memo.pop(key, None)
        return table

    def skip(self, nodes: Iterable[Node]) -> None:
        """Nodes a branch never needs in the range: counted as asked for, and so
        are their children when they are computed nowhere else."""
        stack = list(nodes)
        while stack:
            node = stack.pop()
            key = self.keys[id(node)]
            self.calls[key] -= 1
            if self.calls[key] <= 0:
                self.memo.pop(key, None)
                if key not in self.done:
                    stack += children_of(node)

    def _compute(self, node: Node, days: int) -> Table:
        if isinstance(node, Asset):
            present = self.prices.present(node.ticker)[self.end - days + 1 : self.end + 1]
            return Table([node.ticker], self.ones[:days], ~present)
        if isinstance(node, Group | WeightEqual):
            return self.equal(node.children, days)
        if isinstance(node, If):
            return self.branch(node, days)
        if isinstance(node, WeightSpecified):
            return self.specified(node, days)
        if isinstance(node, Filter):
            return self.filter(node, days)
        return self.inverse_volatility(node, days)

    def units(
        self, children: Sequence[Node], days: int
    ) -> tuple[list[tuple[Table, Bools | None]], Bools]:
        """Each child as a unit of its parent (with the days it counts on, None:
        every day), and the days on which one of them fails."""
        out: list[tuple[Table, Bools | None]] = []
        bad = np.zeros(days, dtype=np.bool_)
        for child in children:
            if isinstance(child, If) and not self.choices.branch_vector_is_unit:
                result, if_bad = self.decide(child, days)
                bad = bad | if_bad
                for kids, on in ((child.then, result), (child.otherwise or (), ~result)):
                    mask = on & ~if_bad
                    inner, inner_bad = self.units(kids, days)
                    bad = bad | (mask & inner_bad)
                    out += [(t, mask if m is None else m & mask) for t, m in inner]
                continue
            table = self.table(child).tail(days)
            bad = bad | table.bad
            out.append((table, None))
        return out, bad

    def equal(self, children: Sequence[Node], days: int) -> Table:
        return self.share(*self.units(children, days), days)

    def share(self, units: list[tuple[Table, Bools | None]], bad: Bools, days: int) -> Table:
        """Each unit holding something on a day gets 1/n of the node (inner weights kept)."""
        if len(units) == 1 and units[0][1] is None:  # w * (1 / 1) is w
            return units[0][0]
        held = [t.held() if m is None else m & t.held() for t, m in units]
        count = np.zeros(days, dtype=np.int64)
        for h in held:
            count += h
        with np.errstate(divide="ignore"):
            share = 1.0 / count
        total = _Sum(days)
        for t, _ in units:
            total.add(t)
        return total.table(lambda k, _: (held[k], share, None), bad)

    def decide(self, node: If, days: int) -> tuple[Bools, Bools]:
        """The `if`'s condition (result, bad) on its days; recorded for the trace."""
        record: dict[int, Bools] | None = {} if self.facts is not None else None
        result, bad = self.condition(node.condition, days, record)
        if record is not None:
            self.fact(node).conditions = [record[id(c)] for c in preorder(node.condition)]
        return result, bad

    def branch(self, node: If, days: int) -> Table:
        result, if_bad = self.decide(node, days)
        parts: list[Table] = []
        for kids, on in ((node.then, result), (node.otherwise or (), ~result)):
            if (on & ~if_bad).any():
                parts.append(self.equal(kids, days))
            else:  # taken on no day: never evaluated (its data may well be missing)
                self.skip(kids)
                parts.append(self.empty(days))
        then, otherwise = parts
        bad = if_bad | (result & then.bad) | (~result & otherwise.bad)
        masks = [result, ~result]
        total = _Sum(days)
        for part in parts:
            total.add(part)
        return total.table(lambda k, _: (masks[k], 1.0, None), bad)

    def specified(self, node: WeightSpecified, days: int) -> Table:
        tables = [self.table(c).tail(days) for c in node.children]
        uses = [t.held() & (w > 0) for t, w in zip(tables, node.fractions, strict=True)]
        weights = [np.where(u, w, 0.0) for u, w in zip(uses, node.fractions, strict=True)]
        if not self.choices.specified_empty_share_proportional:  # the missing share split equally
            count = np.zeros(days, dtype=np.int64)
            for u in uses:
                count += u
            extra = (1.0 - sum(weights)) / count
            weights = [np.where(u, w + extra, 0.0) for u, w in zip(uses, weights, strict=True)]
        return self.weighted(tables, weights, uses, self.any((t.bad for t in tables), days))

    def weighted(
        self, tables: list[Table], weights: list[Floats], uses: list[Bools], bad: Bools
    ) -> Table:
        """The choices' `weighted` of the children; empty on days none takes part."""
        unit = self.choices.weighted([(w, t.unit()) for t, w in zip(tables, weights, strict=True)])
        used = self.any(uses, len(bad))
        tickers = sorted(unit)
        out = np.zeros((len(bad), len(tickers)))
        for k, ticker in enumerate(tickers):
            out[:, k] = np.where(used, unit[ticker], 0.0)
        return Table(tickers, out, bad)

    def inverse_volatility(self, node: WeightInverseVolatility, days: int) -> Table:
        name, params = scoring(node)
        self.prefetch(node, name, params)
        full = [self.table(c) for c in node.children]
        tables = [t.tail(days) for t in full]
        held = [t.held() for t in tables]
        bad = self.any((t.bad for t in tables), days)
        sigmas: list[Floats] = []
        sigma_bads: list[Bools] = []
        for child, table, h in zip(node.children, full, held, strict=True):
            sigma, sigma_bad = self.metric(child, table, name, params, days)
            bad = bad | (h & sigma_bad)
            sigmas.append(sigma)
            sigma_bads.append(sigma_bad)
        uses = [h & (s > 0) for h, s in zip(held, sigmas, strict=True)]
        weights = [np.where(u, 1.0 / s, 0.0) for u, s in zip(uses, sigmas, strict=True)]
        if self.choices.zero_volatility_takes_all:
            zeros = [h & (s == 0.0) for h, s in zip(held, sigmas, strict=True)]
            any_zero = self.any(zeros, days)
            uses = [np.where(any_zero, z, u) for z, u in zip(zeros, uses, strict=True)]
            weights = [
                np.where(any_zero, np.where(z, 1.0, 0.0), w)
                for z, w in zip(zeros, weights, strict=True)
            ]
        if self.facts is not None:
            facts = self.fact(node)
            failed = np.stack(sigma_bads, axis=1)
            facts.scores = self.last(np.where(failed, np.nan, np.stack(sigmas, axis=1)))
            facts.total = self.last(sum(weights, np.zeros(days)))
            facts.held = self.last(np.stack(held, axis=1))
        return self.weighted(tables, weights, uses, bad)

    def filter(self, node: Filter, days: int) -> Table:
        name, params = node.metric.name, node.metric.params
        self.prefetch(node, name, params)
        full = [self.table(c) for c in node.children]
        tables = [t.tail(days) for t in full]
        # Every child is scored (on its NAV: its past days); only the chosen are evaluated today.
        bad = np.zeros(days, dtype=np.bool_)
        columns: list[Floats] = []
        failed: list[Bools] = []
        for child, table in zip(node.children, full, strict=True):
            score, score_bad = self.metric(child, table, name, params, days)
            columns.append(score)
            failed.append(score_bad)
            bad = bad | score_bad
        scores = np.stack(columns, axis=1)
        # A stable sort on the score (negated for top): ties keep the written order.
        order = np.argsort(-scores if node.select.top else scores, axis=1, kind="stable")
        scored = order
        held = np.stack([t.held() for t in tables], axis=1)
        child_bad = np.stack([t.bad for t in tables], axis=1)
        ranked = np.full(days, len(tables), dtype=np.int64)
        if not self.choices.filter_ranks_empty_children:  # only children holding something compete
            by_held = np.argsort(~np.take_along_axis(held, order, axis=1), axis=1, kind="stable")
            order = np.take_along_axis(order, by_held, axis=1)
            ranked = held.sum(axis=1)
            bad = bad | child_bad.any(axis=1)  # every child is evaluated to know
        chosen = order[:, : node.select.n]
        bad = bad | np.take_along_axis(child_bad, chosen, axis=1).any(axis=1)
        if self.facts is not None:
            facts = self.fact(node)
            facts.scores = self.last(np.where(np.stack(failed, axis=1), np.nan, scores))
            facts.order, facts.scored = self.last(order), self.last(scored)
            facts.ranked = self.last(ranked)
        if not self.choices.branch_vector_is_unit:
            return self._chosen_units(node, chosen, bad, days)
        return self._chosen(tables, chosen, held, bad, days)

    def _chosen_units(self, node: Filter, chosen: Ints, bad: Bools, days: int) -> Table:
        """The chosen children as units, `if` children spread into their branches."""
        units: list[tuple[Table, Bools | None]] = []
        for r in range(chosen.shape[1]):
            for k, child in enumerate(node.children):
                picked = chosen[:, r] == k
                if picked.any():
                    inner, inner_bad = self.units((child,), days)
                    bad = bad | (picked & inner_bad)
                    units += [(t, picked if m is None else m & picked) for t, m in inner]
        return self.share(units, bad, days)

    def _chosen(
        self, tables: list[Table], chosen: Ints, held: Bools, bad: Bools, days: int
    ) -> Table:
        """Each day's chosen children, equally, rank by rank (`if`s as units)."""
        chosen_held = np.take_along_axis(held, chosen, axis=1)
        with np.errstate(divide="ignore"):
            share = 1.0 / chosen_held.sum(axis=1)
        tickers = sorted({t for table in tables for t in table.tickers})
        index = {t: k for k, t in enumerate(tickers)}
        out = np.zeros((days, len(index)))
        rows = np.arange(days)
        single = all(len(t.tickers) == 1 for t in tables)
        if single:  # one ticker per child (assets, mostly): one gather per rank
            first = np.stack([t.weights[:, 0] for t in tables], axis=1)
            column_of = np.array([index[t.tickers[0]] for t in tables])
        # Rank by rank, so that each day adds its chosen children in rank order.
        for r in range(chosen.shape[1]):
            picked, mask = chosen[:, r], chosen_held[:, r]
            if single:
                weight = first[rows, picked]
                out[rows, column_of[picked]] += np.where(mask, weight * share, 0.0)
                continue
            for k in np.unique(picked[mask]):
                table = tables[k]
                cols = [index[t] for t in table.tickers]
                on = mask & (picked == k)
                out[:, cols] += np.where(on[:, None], table.weights * share[:, None], 0.0)
        return Table(tickers, out, bad, np.asarray(chosen_held.any(axis=1), dtype=np.bool_))

    # ----------------------------------------------------------------- metrics

    def metric(
        self, node: Node, table: Table, name: str, params: Params, days: int
    ) -> tuple[Floats, Bools]:
        """The indicator on an asset's prices, or on any other node's simulated NAV,
        on the last `days` days; `table` is the node's, over its own (longer) days."""
        if isinstance(node, Asset):
            values = self.column(name, node.ticker, params, days)
            return values, np.isnan(values)
        length = nav_length(name, params)
        windows = np.ones((days, length))
        bad = np.ones(days, dtype=np.bool_)
        if length == 1:
            bad[:] = False
        else:
            growth, growth_bad = self.day_growth(table)
            # Row q of the node's table: NAV 1 on row q-length+1, compounded each
            # day to row q. Rows before length-1 are the calendar's first days.
            count = min(days, len(growth) - length + 1)
            if count > 0:
                spans = sliding_window_view(growth[1:], length - 1)[-count:]
                windows[days - count :, 1:] = np.cumprod(spans, axis=1)
                spans_bad = sliding_window_view(growth_bad[1:], length - 1)[-count:]
                bad[days - count :] = spans_bad.any(axis=1)
        values = values_on(name, params, list(windows.T))
        return values, bad | np.isnan(values)

    def day_growth(self, table: Table) -> tuple[Floats, Bools]:
        """1 + the node's return into each of its days, holding what it chose the day before."""
        days = len(table.bad)
        held = np.zeros((days, len(table.tickers)))
        held[1:] = table.weights[:-1]
        bad = np.ones(days, dtype=np.bool_)
        bad[1:] = table.bad[:-1]
        total = np.zeros(days)
        for k, ticker in enumerate(table.tickers):
            returns = self.returns(ticker, days)
            holds = held[:, k] > 0
            bad = bad | (holds & np.isnan(returns))
            total = total + np.where(holds, held[:, k] * returns, 0.0)
        return 1.0 + total, bad

    # -------------------------------------------------------------- conditions

    def condition(
        self, cond: Condition, days: int, record: dict[int, Bools] | None
    ) -> tuple[Bools, Bools]:
        """(result, bad) on every day; `and`/`or` stop at their first deciding item."""
        if isinstance(cond, Compare):
            left, left_bad = self.operand(cond.left, days)
            right, right_bad = self.operand(cond.right, days)
            result, bad = COMPARE[cond.op](left, right), left_bad | right_bad
        elif isinstance(cond, Not):
            result, bad = self.condition(cond.item, days, record)
            result = ~result
        else:
            deciding = isinstance(cond, Or)  # the item value that ends the evaluation
            going = np.ones(days, dtype=np.bool_)
            bad = np.zeros(days, dtype=np.bool_)
            for item in cond.items:
                item_result, item_bad = self.condition(item, days, record)
                bad = bad | (going & item_bad)
                going = going & ~item_bad & (item_result != deciding)
            # and: true if no item was false; or: true if some item was true.
            result = ~going & ~bad if deciding else going
        if record is not None:
            record[id(cond)] = self.last(result)
        return result, bad

    def operand(self, op: Number | Indicator, days: int) -> tuple[Floats, Bools]:
        if isinstance(op, Number):
            return np.full(days, op.value), np.zeros(days, dtype=np.bool_)
        assert op.ticker is not None
        values = self.column(op.name, op.ticker, op.params, days)
        return values, np.isnan(values)


def indicator_uses(strategy: Strategy) -> Iterable[tuple[str, str, Params]]:
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
            name, params = scoring(node)
            for child in node.children:
                if isinstance(child, Asset):
                    yield name, child.ticker, params
            stack += list(node.children)
        elif isinstance(node, Group | WeightEqual | WeightSpecified):
            stack += list(node.children)


def normalised(table: Table) -> Allocations:
    """The table's weights divided by their sum; bad and empty days are zero rows."""
    bad = table.bad | ~table.held()
    total = row_totals(table)
    with np.errstate(all="ignore"):
        weights = np.where(bad[:, None], 0.0, table.weights / total[:, None])
    return Allocations(table.tickers, weights, bad)


def allocations(strategy: Strategy, prices: PriceHistory) -> Allocations:
    """The strategy's weights on every day of `prices`' calendar, normalised as `evaluate` does."""
    prices.prefetch(indicator_uses(strategy))  # one query per indicator and parameters
    days = range(len(prices.calendar))

    def run() -> Table:
        columns = Columns(prices, strategy.body, days, DEFAULT_CHOICES, record=False)
        return columns.root(strategy.body)

    table = run_deep(run)
    total = row_totals(table)
    wrong = ~table.bad & table.held() & (np.abs(total - 1.0) > WEIGHT_SUM_TOLERANCE)
    if wrong.any():
        day = prices.calendar[int(np.argmax(wrong))]
        raise StrategyError(f"internal error in the columnar evaluation as of {day}: bad weights")
    return normalised(table)
