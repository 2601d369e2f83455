"""The typed syntax tree of a strategy, and a printer back to source text.

Nodes are frozen dataclasses. Every node keeps the line and column (1-based) of
its opening bracket; positions do not take part in equality, so a tree printed
and parsed again compares equal to the original.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Literal, get_args

# Indicator names and the parameter keys each one takes.
INDICATOR_PARAMS: dict[str, tuple[str, ...]] = {
    "current-price": (),
    "moving-average-price": ("window",),
    "exponential-moving-average-price": ("window",),
    "moving-average-return": ("window",),
    "cumulative-return": ("window",),
    "stdev-return": ("window",),
    "stdev-price": ("window",),
    "max-drawdown": ("window",),
    "rsi": ("window",),
    "percentage-price-oscillator": ("short-window", "long-window"),
    "percentage-price-oscillator-signal": ("short-window", "long-window", "smooth-window"),
}

# Defaults for the oscillator keys (spec §4); `window` never has a default.
PARAM_DEFAULTS: dict[str, int] = {"short-window": 12, "long-window": 26, "smooth-window": 9}

# An indicator's parameters as written: (key, value) pairs in source order.
Params = tuple[tuple[str, int], ...]


def param(params: Params, key: str) -> int | None:
    """`key`'s value in `params`, else its default; None if it has neither."""
    for k, v in params:
        if k == key:
            return v
    return PARAM_DEFAULTS.get(key)


def window_of(params: Params) -> int | None:
    """The window an error message names, as written: `:window`, else `:long-window`."""
    for k, v in params:
        if k in ("window", "long-window"):
            return v
    return None


COMPARISONS = (">", "<", ">=", "<=", "=")
RebalanceFrequency = Literal["daily", "weekly", "monthly", "quarterly", "yearly", "none"]
REBALANCE_FREQUENCIES: tuple[RebalanceFrequency, ...] = get_args(RebalanceFrequency)
DEFAULT_ASSET_CLASS = "EQUITIES"
DEFAULT_REBALANCE_FREQUENCY: RebalanceFrequency = "daily"


def _pos() -> int:
    return field(default=0, compare=False)


@dataclass(frozen=True, slots=True)
class Number:
    value: float
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class Indicator:
    """An indicator call; `ticker` is None inside a `filter` metric."""

    name: str
    ticker: str | None
    original: str | None
    params: Params
    line: int = _pos()
    column: int = _pos()

    def param(self, key: str) -> int | None:
        return param(self.params, key)

    @property
    def window(self) -> int | None:
        return self.param("window")


Operand = Number | Indicator


@dataclass(frozen=True, slots=True)
class Compare:
    op: str
    left: Operand
    right: Operand
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class And:
    items: tuple[Condition, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class Or:
    items: tuple[Condition, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class Not:
    item: Condition
    line: int = _pos()
    column: int = _pos()


Condition = Compare | And | Or | Not


@dataclass(frozen=True, slots=True)
class Asset:
    ticker: str
    original: str
    label: str | None
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class Group:
    name: str
    children: tuple[Node, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class WeightEqual:
    children: tuple[Node, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class WeightSpecified:
    """`written` are the weights as in the file; `fractions` sum to 1."""

    written: tuple[float, ...]
    fractions: tuple[float, ...]
    children: tuple[Node, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class WeightInverseVolatility:
    window: int
    children: tuple[Node, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class Select:
    top: bool
    n: int
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class Filter:
    metric: Indicator
    select: Select
    children: tuple[Node, ...]
    line: int = _pos()
    column: int = _pos()


@dataclass(frozen=True, slots=True)
class If:
    """Each branch is the forms of its vector; `otherwise` is None when absent."""

    condition: Condition
    then: tuple[Node, ...]
    otherwise: tuple[Node, ...] | None
    line: int = _pos()
    column: int = _pos()


Node = Asset | Group | WeightEqual | WeightSpecified | WeightInverseVolatility | Filter | If


@dataclass(frozen=True, slots=True)
class Options:
    rebalance_frequency: RebalanceFrequency = DEFAULT_REBALANCE_FREQUENCY
    rebalance_threshold: float | None = None
    asset_class: str = DEFAULT_ASSET_CLASS


@dataclass(frozen=True, slots=True)
class Strategy:
    """A whole file. `name` is None for a bare top-level weighting form."""

    name: str | None
    options: Options
    body: Node
    tickers: tuple[str, ...]
    line: int = _pos()
    column: int = _pos()


# The head each kind of form is written with.
FORM_NAMES: dict[type, str] = {
    Asset: "asset",
    Group: "group",
    WeightEqual: "weight-equal",
    WeightSpecified: "weight-specified",
    WeightInverseVolatility: "weight-inverse-volatility",
    Filter: "filter",
    If: "if",
    Select: "select",
    And: "and",
    Or: "or",
    Not: "not",
    Strategy: "defsymphony",
}


# --------------------------------------------------------------------------- printing


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t"}


def _s(text: str) -> str:
    return '"' + "".join(_ESCAPES.get(ch, ch) for ch in text) + '"'


def _num(value: float) -> str:
    return str(int(value)) if value == int(value) and abs(value) < 1e15 else repr(value)


def format_operand(op: Operand) -> str:
    if isinstance(op, Number):
        return _num(op.value)
    return format_indicator(op)


@functools.lru_cache(maxsize=65536)
def format_indicator(ind: Indicator) -> str:
    parts = [ind.name]
    if ind.original is not None:
        parts.append(_s(ind.original))
    if ind.params:
        parts.append("{" + ", ".join(f":{k} {v}" for k, v in ind.params) + "}")
    return "(" + " ".join(parts) + ")"


@functools.lru_cache(maxsize=65536)
def format_condition(cond: Condition) -> str:
    """The condition as source text; used in the trace ("as written")."""
    if isinstance(cond, Compare):
        return f"({cond.op} {format_operand(cond.left)} {format_operand(cond.right)})"
    if isinstance(cond, Not):
        return f"(not {format_condition(cond.item)})"
    head = "and" if isinstance(cond, And) else "or"
    return "(" + " ".join([head, *[format_condition(c) for c in cond.items]]) + ")"


def _vector(nodes: tuple[Node, ...]) -> str:
    return "[" + " ".join([format_node(n) for n in nodes]) + "]"


def format_node(node: Node) -> str:
    """Source text for a node. Recursive: call deep trees through `run_deep`. Children
    go through list comprehensions, never a generator or `map` consumed by C code:
    from Python 3.12 recursion through C has its own, far lower, limit."""
    if isinstance(node, Asset):
        label = "nil" if node.label is None else _s(node.label)
        return f"(asset {_s(node.original)} {label})"
    if isinstance(node, Group):
        return f"(group {_s(node.name)} {_vector(node.children)})"
    if isinstance(node, WeightEqual):
        return f"(weight-equal {_vector(node.children)})"
    if isinstance(node, WeightSpecified):
        pairs = " ".join(
            [
                f"{_num(w)} {format_node(c)}"
                for w, c in zip(node.written, node.children, strict=True)
            ]
        )
        return f"(weight-specified {pairs})"
    if isinstance(node, WeightInverseVolatility):
        return f"(weight-inverse-volatility {node.window} {_vector(node.children)})"
    if isinstance(node, Filter):
        sel = f"(select-{'top' if node.select.top else 'bottom'} {node.select.n})"
        return f"(filter {format_indicator(node.metric)} {sel} {_vector(node.children)})"
    otherwise = "" if node.otherwise is None else " " + _vector(node.otherwise)
    return f"(if {format_condition(node.condition)} {_vector(node.then)}{otherwise})"


def format_strategy(strategy: Strategy) -> str:
    body = format_node(strategy.body)
    if strategy.name is None:
        return body + "\n"
    opts = strategy.options
    items = [f":asset-class {_s(opts.asset_class)}"]
    items.append(f":rebalance-frequency :{opts.rebalance_frequency}")
    if opts.rebalance_threshold is not None:
        items.append(f":rebalance-threshold {_num(opts.rebalance_threshold)}")
    return f"(defsymphony {_s(strategy.name)} {{{', '.join(items)}}} {body})\n"
