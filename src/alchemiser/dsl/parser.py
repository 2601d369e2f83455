"""Text to typed AST.

Lark (LALR, basic lexer) reduces the EDN brackets bottom-up and calls
`_Builder` for each one, which checks the form and returns a typed node at once:
no parse tree is built and nothing recurses, so depth 1,000 is fine. When Lark
rejects the text, `diagnose_brackets` explains unbalanced brackets in a trader's
words, naming the bracket that is never closed.
"""

from __future__ import annotations

import bisect
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lark import Lark, Token
from lark.exceptions import UnexpectedCharacters, UnexpectedInput
from lark.lexer import Lexer, LexerState

from alchemiser.dsl.ast import (
    COMPARISONS,
    DEFAULT_ASSET_CLASS,
    DEFAULT_REBALANCE_FREQUENCY,
    FORM_NAMES,
    INDICATOR_PARAMS,
    REBALANCE_FREQUENCIES,
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
    Operand,
    Options,
    Or,
    RebalanceFrequency,
    Select,
    Strategy,
    WeightEqual,
    WeightInverseVolatility,
    WeightSpecified,
    param,
)
from alchemiser.dsl.errors import StrategySyntaxError
from alchemiser.dsl.indicators import STDEV_DDOF

GRAMMAR = (Path(__file__).with_name("grammar.lark")).read_text(encoding="utf-8")

# How far `weight-specified` weights may be from 1 (or 100) and still count.
WEIGHT_SUM_TOLERANCE = 1e-6
PERCENT_TOTAL = 100.0

_STDEVS = ("stdev-return", "stdev-price")
_NODE_TYPES = (Asset, Group, WeightEqual, WeightSpecified, WeightInverseVolatility, Filter, If)
_CONDITION_TYPES = (Compare, And, Or, Not)
_UNESCAPE = re.compile(r"\\(.)", re.DOTALL)
_UNESCAPES = {"n": "\n", "t": "\t", "r": "\r"}


def normalize_ticker(raw: str) -> str:
    """`EQUITIES::XLK//USD` -> `XLK`; `BRK/B` -> `BRK.B` (Alpaca's spelling)."""
    text = raw.strip()
    if "::" in text:
        text = text.split("::", 1)[1]
    if "//" in text:
        text = text.split("//", 1)[0]
    return text.replace("/", ".")


@dataclass(slots=True)
class _Vec:
    items: list[Any]
    line: int
    column: int


@dataclass(slots=True)
class _Map:
    entries: dict[str, Any]
    line: int
    column: int


def _describe(x: Any) -> str:
    if isinstance(x, Token):
        return f"`{x}`"
    if isinstance(x, _Vec):
        return "a vector `[...]`"
    if isinstance(x, _Map):
        return "a map `{...}`"
    if isinstance(x, Indicator):
        return f"the indicator `{x.name}`"
    if isinstance(x, Compare):
        return f"the comparison `{x.op}`"
    return f"the form `{FORM_NAMES.get(type(x), type(x).__name__)}`"


class _Builder:
    """Lark callbacks: one per bracket kind, plus the top-level `start`."""

    def __init__(self) -> None:
        self.file = "<string>"
        self.tickers: dict[str, None] = {}
        self._open = Token("LPAR", "(")
        self._forms: dict[str, Callable[[Token, list[Any]], Any]] = {
            "defsymphony": self._defsymphony,
            "asset": self._asset,
            "group": self._group,
            "weight-equal": self._weight_equal,
            "weight-specified": self._weight_specified,
            "weight-inverse-volatility": self._weight_inverse_volatility,
            "filter": self._filter,
            "select-top": self._select,
            "select-bottom": self._select,
            "if": self._if,
            "and": self._and_or,
            "or": self._and_or,
            "not": self._not,
        }
        for op in COMPARISONS:
            self._forms[op] = self._compare
        for name in INDICATOR_PARAMS:
            self._forms[name] = self._indicator

    # ----------------------------------------------------------------- helpers

    def _at(self) -> dict[str, int]:
        """Position of the `(` of the form being built."""
        return {"line": self._open.line or 0, "column": self._open.column or 0}

    def error(self, at: Any, message: str) -> StrategySyntaxError:
        return StrategySyntaxError(
            self.file, getattr(at, "line", 0) or 0, getattr(at, "column", 0) or 0, message
        )

    def _string(self, x: Any, what: str) -> str:
        if isinstance(x, Token) and x.type == "STRING":
            return _UNESCAPE.sub(lambda m: _UNESCAPES.get(m[1], m[1]), x[1:-1])
        raise self.error(x, f"expected {what} (a string in quotes), got {_describe(x)}")

    def _number(self, x: Any, what: str) -> float:
        if isinstance(x, Token) and x.type == "NUMBER":
            return float(x)
        raise self.error(x, f"expected {what} (a number), got {_describe(x)}")

    def _positive_int(self, x: Any, what: str) -> int:
        value = self._number(x, what)
        if value <= 0 or value != int(value):
            raise self.error(x, f"{what} must be a positive whole number, got {x}")
        return int(value)

    def _node(self, x: Any, head: Token) -> Node:
        if isinstance(x, _NODE_TYPES):
            return x
        if isinstance(x, Strategy):
            raise self.error(x, "`defsymphony` can only be the top-level form")
        raise self.error(
            x if hasattr(x, "line") else head,
            f"`{head}` expects an asset or a weighting form here, got {_describe(x)}",
        )

    def _children(self, xs: list[Any], head: Token) -> tuple[Node, ...]:
        """A vector's forms (or bare forms) as the children of `head`."""
        out: list[Node] = []
        for x in xs:
            if isinstance(x, _Vec):
                out.extend(self._node(item, head) for item in x.items)
            else:
                out.append(self._node(x, head))
        return tuple(out)

    def _arity(self, head: Token, args: list[Any], low: int, high: int, shape: str) -> None:
        if not low <= len(args) <= high:
            raise self.error(head, f"`{head}` takes {shape}, got {len(args)} argument(s)")

    def _ticker(self, x: Any, what: str) -> tuple[str, str]:
        original = self._string(x, what)
        ticker = normalize_ticker(original)
        if not ticker:
            raise self.error(x, f"empty ticker {original!r}")
        self.tickers[ticker] = None
        return ticker, original

    # ------------------------------------------------------------ Lark callbacks

    def start(self, c: list[Any]) -> Strategy:
        top = c[0]
        if isinstance(top, Strategy):
            return top
        if isinstance(top, _NODE_TYPES):
            return Strategy(
                None, Options(), top, tuple(self.tickers), line=top.line, column=top.column
            )
        raise self.error(
            top, f"expected `(defsymphony ...)` or a weighting form, got {_describe(top)}"
        )

    def items(self, c: list[Any]) -> list[Any]:
        """A bracket's forms: `c` is a fresh list, [form] or [items so far, form]."""
        if len(c) == 1:
            return c
        c[0].append(c[1])
        return c[0]  # type: ignore[no-any-return]

    def vector(self, c: list[Any]) -> _Vec:
        return _Vec(c[1] if len(c) == 3 else [], c[0].line, c[0].column)

    def brace(self, c: list[Any]) -> _Map:
        items = c[1] if len(c) == 3 else []
        if len(items) % 2:
            raise self.error(c[0], f"a map needs key/value pairs, got {len(items)} items")
        entries: dict[str, Any] = {}
        for key, value in zip(items[::2], items[1::2], strict=True):
            if not (isinstance(key, Token) and key.type == "KEYWORD"):
                raise self.error(
                    key, f"map keys must be keywords like `:window`, got {_describe(key)}"
                )
            entries[key[1:]] = value
        return _Map(entries, c[0].line, c[0].column)

    def paren(self, c: list[Any]) -> Any:
        if len(c) == 2:
            raise self.error(c[0], "empty list `()`: expected a form such as `(asset ...)`")
        head, args = c[1][0], c[1][1:]
        if not (isinstance(head, Token) and head.type == "SYMBOL"):
            raise self.error(c[0], f"a list must start with a form name, got {_describe(head)}")
        build = self._forms.get(str(head))
        if build is None:
            if head == "unimplemented":
                raise self.error(
                    head,
                    "unknown form `unimplemented`: "
                    "Composer's export of this strategy is incomplete",
                )
            if head in ("nil", "true", "false"):
                raise self.error(head, f"a list must start with a form name, got `{head}`")
            raise self.error(head, f"unknown form `{head}`")
        self._open = c[0]
        return build(head, args)

    # ------------------------------------------------------------------- forms

    def _defsymphony(self, head: Token, args: list[Any]) -> Strategy:
        self._arity(head, args, 3, 3, "a name, an options map and one body form")
        name = self._string(args[0], "the symphony's name")
        if not isinstance(args[1], _Map):
            raise self.error(
                args[1], f"expected the options map `{{...}}`, got {_describe(args[1])}"
            )
        options = self._options(args[1])
        body = self._node(args[2], head)
        return Strategy(name, options, body, tuple(self.tickers), **self._at())

    def _options(self, m: _Map) -> Options:
        asset_class, threshold = DEFAULT_ASSET_CLASS, None
        frequency: RebalanceFrequency = DEFAULT_REBALANCE_FREQUENCY
        if "asset-class" in m.entries:
            asset_class = self._string(m.entries["asset-class"], "`:asset-class`")
            if asset_class != DEFAULT_ASSET_CLASS:
                raise self.error(
                    m.entries["asset-class"],
                    f'`:asset-class` "{asset_class}" is not supported, '
                    f'only "{DEFAULT_ASSET_CLASS}"',
                )
        if "rebalance-frequency" in m.entries:
            value = m.entries["rebalance-frequency"]
            written = str(value)[1:] if isinstance(value, Token) else ""
            matches = [f for f in REBALANCE_FREQUENCIES if f == written]
            if not (isinstance(value, Token) and value.type == "KEYWORD") or not matches:
                allowed = ", ".join(f":{f}" for f in REBALANCE_FREQUENCIES)
                raise self.error(value, f"`:rebalance-frequency` must be one of {allowed}")
            frequency = matches[0]
        if "rebalance-threshold" in m.entries:
            value = m.entries["rebalance-threshold"]
            threshold = self._number(value, "`:rebalance-threshold`")
            if not 0 <= threshold < 1:
                raise self.error(value, "`:rebalance-threshold` must be a fraction between 0 and 1")
        return Options(frequency, threshold, asset_class)

    def _asset(self, head: Token, args: list[Any]) -> Asset:
        self._arity(head, args, 1, 2, "a ticker and an optional name")
        ticker, original = self._ticker(args[0], "a ticker")
        label: str | None = None
        if len(args) == 2 and not (isinstance(args[1], Token) and args[1] == "nil"):
            label = self._string(args[1], "the asset's name or nil")
        return Asset(ticker, original, label, **self._at())

    def _group(self, head: Token, args: list[Any]) -> Group:
        if len(args) < 2:
            raise self.error(head, "`group` takes a name and a body `[...]`")
        name = self._string(args[0], "the group's name")
        children = self._children(args[1:], head)
        if not children:
            raise self.error(head, f"group {name!r} has an empty body")
        return Group(name, children, **self._at())

    def _weight_equal(self, head: Token, args: list[Any]) -> WeightEqual:
        children = self._children(args, head)
        if not children:
            raise self.error(head, "`weight-equal` needs at least one child")
        return WeightEqual(children, **self._at())

    def _unit(self, x: Any, head: Token) -> Node:
        """One child where a vector may hold several forms that share equally."""
        if isinstance(x, _Vec):
            kids = tuple(self._node(item, head) for item in x.items)
            if len(kids) == 1:
                return kids[0]
            if not kids:
                raise self.error(x, f"empty vector in `{head}`")
            return WeightEqual(kids, line=x.line, column=x.column)
        return self._node(x, head)

    def _weight_specified(self, head: Token, args: list[Any]) -> WeightSpecified:
        if not args or len(args) % 2:
            raise self.error(head, "`weight-specified` takes pairs of a weight and a child")
        written = tuple(self._number(w, "a weight") for w in args[::2])
        for w, tok in zip(written, args[::2], strict=True):
            if w < 0:
                raise self.error(tok, f"weights cannot be negative, got {tok}")
        children = tuple(self._unit(c, head) for c in args[1::2])
        total = sum(written)
        if abs(total - 1) <= WEIGHT_SUM_TOLERANCE:
            scale = 1.0
        elif abs(total - PERCENT_TOTAL) <= WEIGHT_SUM_TOLERANCE * PERCENT_TOTAL:
            scale = PERCENT_TOTAL
        else:
            raise self.error(
                head, f"`weight-specified` weights sum to {total:g}, expected 1 (or 100)"
            )
        fractions = tuple(w / scale for w in written)
        return WeightSpecified(written, fractions, children, **self._at())

    def _weight_inverse_volatility(self, head: Token, args: list[Any]) -> WeightInverseVolatility:
        if len(args) < 2:
            raise self.error(
                head, "`weight-inverse-volatility` takes a window and children `[...]`"
            )
        window = self._positive_int(args[0], "the window")
        if window <= STDEV_DDOF:
            raise self.error(args[0], f"the volatility window must be at least {STDEV_DDOF + 1}")
        children = self._children(args[1:], head)
        if not children:
            raise self.error(head, "`weight-inverse-volatility` needs at least one child")
        return WeightInverseVolatility(window, children, **self._at())

    def _select(self, head: Token, args: list[Any]) -> Select:
        self._arity(head, args, 1, 1, "one count")
        n = self._positive_int(args[0], f"the count of `{head}`")
        return Select(head == "select-top", n, **self._at())

    def _filter(self, head: Token, args: list[Any]) -> Filter:
        if len(args) < 3:
            raise self.error(
                head,
                "`filter` takes a metric, `(select-top n)` or `(select-bottom n)` "
                "and children `[...]`",
            )
        metric, select = args[0], args[1]
        if not isinstance(metric, Indicator):
            raise self.error(
                metric, f"`filter` expects an indicator as its metric, got {_describe(metric)}"
            )
        if metric.ticker is not None:
            raise self.error(
                metric, "inside `filter` the metric takes no ticker, e.g. `(rsi {:window 10})`"
            )
        if not isinstance(select, Select):
            raise self.error(
                select, "`filter` expects `(select-top n)` or `(select-bottom n)` second"
            )
        children = self._children(args[2:], head)
        if not children:
            raise self.error(head, "`filter` needs at least one child")
        return Filter(metric, select, children, **self._at())

    def _branch(self, x: Any, head: Token) -> tuple[Node, ...]:
        if isinstance(x, _Vec):
            return tuple(self._node(item, head) for item in x.items)
        return (self._node(x, head),)

    def _if(self, head: Token, args: list[Any]) -> If:
        self._arity(head, args, 2, 3, "a condition, a then-branch and an optional else-branch")
        cond = self._condition(args[0], head)
        then = self._branch(args[1], head)
        otherwise = self._branch(args[2], head) if len(args) == 3 else None
        return If(cond, then, otherwise, **self._at())

    def _condition(self, x: Any, head: Token) -> Condition:
        if isinstance(x, _CONDITION_TYPES):
            return x
        raise self.error(
            x if hasattr(x, "line") else head,
            f"`{head}` expects a condition such as `(> ...)`, got {_describe(x)}",
        )

    def _and_or(self, head: Token, args: list[Any]) -> And | Or:
        if not args:
            raise self.error(head, f"`{head}` needs at least one condition")
        items = tuple(self._condition(a, head) for a in args)
        cls = And if head == "and" else Or
        return cls(items, **self._at())

    def _not(self, head: Token, args: list[Any]) -> Not:
        self._arity(head, args, 1, 1, "one condition")
        return Not(self._condition(args[0], head), **self._at())

    def _operand(self, x: Any, head: Token) -> Operand:
        if isinstance(x, Token) and x.type == "NUMBER":
            return Number(float(x), line=x.line or 0, column=x.column or 0)
        if isinstance(x, Indicator):
            if x.ticker is None:
                raise self.error(x, f'`{x.name}` needs a ticker here, e.g. `({x.name} "SPY" ...)`')
            return x
        raise self.error(
            x if hasattr(x, "line") else head,
            f"`{head}` compares numbers or indicators, got {_describe(x)}",
        )

    def _compare(self, head: Token, args: list[Any]) -> Compare:
        self._arity(head, args, 2, 2, "two values")
        left, right = self._operand(args[0], head), self._operand(args[1], head)
        return Compare(str(head), left, right, **self._at())

    def _indicator(self, head: Token, args: list[Any]) -> Indicator:
        name = str(head)
        self._arity(head, args, 0, 2, "a ticker (outside `filter`) and a parameter map")
        ticker = original = None
        rest = args
        if rest and isinstance(rest[0], Token) and rest[0].type == "STRING":
            ticker, original = self._ticker(rest[0], "a ticker")
            rest = rest[1:]
        params: list[tuple[str, int]] = []
        if rest:
            if len(rest) > 1 or not isinstance(rest[0], _Map):
                raise self.error(rest[0], f"`{name}` expects a parameter map like `{{:window 10}}`")
            allowed = INDICATOR_PARAMS[name]
            for key, value in rest[0].entries.items():
                if key not in allowed and not (name == "current-price" and key == "window"):
                    raise self.error(rest[0], f"`{name}` has no parameter `:{key}`")
                params.append((key, self._positive_int(value, f"`:{key}` of `{name}`")))
        window = param(tuple(params), "window")
        if "window" in INDICATOR_PARAMS[name] and window is None:
            raise self.error(head, f"`{name}` needs `{{:window N}}`; there is no default window")
        if name in _STDEVS and window is not None and window <= STDEV_DDOF:
            raise self.error(head, f"`{name}` needs a window of at least {STDEV_DDOF + 1}")
        return Indicator(name, ticker, original, tuple(params), **self._at())


_STRAY = "__STRAY"  # the master regex's last resort: a character no terminal matches
_new_str = str.__new__


class _FastLexer(Lexer):
    """One master regex over the grammar's own terminals, scanned with `finditer`
    and a last-resort group for a stray character, and tokens made without
    `Token.__new__`'s keyword handling: about three times as fast as Lark's
    general lexer, which parsing 26 MB within the time budget needs."""

    __future_interface__ = 2

    def __init__(self, lexer_conf: Any) -> None:
        terminals = sorted(lexer_conf.terminals, key=lambda t: -t.priority)
        groups = [f"(?P<{t.name}>{t.pattern.to_regexp()})" for t in terminals]
        self.pattern = re.compile("|".join([*groups, f"(?P<{_STRAY}>(?s:.))"]))
        (self.ignore,) = lexer_conf.ignore

    def lex(self, lexer_state: LexerState, parser_state: Any) -> Iterator[Token]:
        text: str = lexer_state.text.text
        ignore, line, line_start = self.ignore, 1, 0
        for m in self.pattern.finditer(text):
            kind, value = m.lastgroup, m.group()
            if kind == ignore:
                newlines = value.count("\n")
                if newlines:
                    line += newlines
                    line_start = m.start() + value.rfind("\n") + 1
                continue
            pos = m.start()
            if kind == _STRAY:
                raise UnexpectedCharacters(text, pos, line, pos - line_start + 1)  # type: ignore[no-untyped-call]
            token = _new_str(Token, value)
            token.type, token.value, token.start_pos = kind, value, pos  # type: ignore[assignment]
            token.line, token.column = line, pos - line_start + 1
            token.end_line = token.end_column = token.end_pos = None
            if kind == "STRING" and "\n" in value:  # a string may span lines
                line += value.count("\n")
                line_start = pos + value.rfind("\n") + 1
            yield token


_local = threading.local()


def _parser() -> tuple[Lark, _Builder]:
    """One Lark instance per thread: the builder holds per-parse state."""
    cached: tuple[Lark, _Builder] | None = getattr(_local, "parser", None)
    if cached is None:
        builder = _Builder()
        lark = Lark(GRAMMAR, parser="lalr", lexer=_FastLexer, transformer=builder)
        cached = (lark, builder)
        _local.parser = cached
    return cached


def parse_strategy(text: str, file: str = "<string>") -> Strategy:
    """Parse one strategy file's text; raise `StrategySyntaxError` naming file:line:col."""
    lark, builder = _parser()
    builder.file = file
    builder.tickers = {}
    try:
        result = lark.parse(text)
    except UnexpectedInput as exc:
        raise _syntax_error(text, file, exc) from None
    assert isinstance(result, Strategy)
    return result


# ------------------------------------------------------------- error diagnosis

_BRACKETS = re.compile(r'"(?:[^"\\]|\\.)*"|"|;[^\n]*|[()\[\]{}]', re.DOTALL)
_PAIRS = {"(": ")", "[": "]", "{": "}"}


def _line_col(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    return line, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _syntax_error(text: str, file: str, exc: UnexpectedInput) -> StrategySyntaxError:
    found = diagnose_brackets(text)
    if found is not None:
        line, column, message = found
        return StrategySyntaxError(file, line, column, message)
    line, column = getattr(exc, "line", 0) or 0, getattr(exc, "column", 0) or 0
    token = getattr(exc, "token", None)
    if token is not None and getattr(token, "type", "") == "$END":
        return StrategySyntaxError(file, line or 1, column or 1, "the file holds no strategy")
    if token is not None:
        return StrategySyntaxError(
            file, line, column, f"unexpected `{token}`: a file holds exactly one top-level form"
        )
    char = text[exc.pos_in_stream] if exc.pos_in_stream is not None else "?"
    return StrategySyntaxError(file, line, column, f"unexpected character `{char}`")


def diagnose_brackets(text: str) -> tuple[int, int, str] | None:
    """(line, column, message) for the first bracket problem, or None if balanced.

    Greedy matching alone blames the outermost form, or a closer far away from
    the mistake. Exports are pretty-printed, so the bracket to blame is the last
    opener whose (greedy) closer lies beyond the end of its indented block.
    """
    stack: list[int] = []
    closes: dict[int, int] = {}
    for m in _BRACKETS.finditer(text):
        s, start = m.group(), m.start()
        if s == '"':
            line, col = _line_col(text, start)
            return line, col, 'unterminated string: no closing `"`'
        if s in _PAIRS:
            stack.append(start)
        elif s in ")]}":
            if not stack:
                line, col = _line_col(text, start)
                return line, col, f"unexpected `{s}`: there is no open bracket to close"
            if _PAIRS[text[stack[-1]]] != s:
                return _mismatch(text, closes, stack, start)
            closes[stack.pop()] = start
    if not stack:
        return None
    blamed = _misnested_opener(text, closes, stack, len(text))
    return _unclosed(text, stack[0] if blamed is None else blamed)


def _unclosed(text: str, opener: int) -> tuple[int, int, str]:
    line, col = _line_col(text, opener)
    closer = _PAIRS[text[opener]]
    return (
        line,
        col,
        (
            f"unclosed `{text[opener]}` opened at line {line}, column {col}: "
            f"its closing `{closer}` is missing"
        ),
    )


def _mismatch(text: str, closes: dict[int, int], stack: list[int], at: int) -> tuple[int, int, str]:
    blamed = _misnested_opener(text, closes, stack, at)
    if blamed is not None:
        return _unclosed(text, blamed)
    line, col = _line_col(text, at)
    oline, ocol = _line_col(text, stack[-1])
    return (
        line,
        col,
        (f"`{text[at]}` does not close `{text[stack[-1]]}` opened at line {oline}, column {ocol}"),
    )


def _misnested_opener(
    text: str, closes: dict[int, int], still_open: list[int], upto: int
) -> int | None:
    """The last opener whose closer (or `upto`, if still open) lies past its block."""
    line_starts = [0] + [m.end() for m in re.finditer("\n", text)]
    indents: list[int] = []
    for i, start in enumerate(line_starts):
        end = line_starts[i + 1] - 1 if i + 1 < len(line_starts) else len(text)
        body = text[start:end]
        stripped = body.lstrip(" \t,")
        blank = not stripped or stripped.startswith(";")
        indents.append(-1 if blank else len(body) - len(stripped))
    open_set = set(still_open)
    for opener in sorted([*closes, *still_open], reverse=True):
        line_index = bisect.bisect_right(line_starts, opener) - 1
        col = opener - line_starts[line_index]
        block_end = len(text)
        for j in range(line_index + 1, len(line_starts)):
            if 0 <= indents[j] <= col:
                block_end = line_starts[j] + indents[j]
                break
        close = upto if opener in open_set else closes[opener]
        if close > block_end or (opener in open_set and upto == len(text)):
            return opener
    return None
