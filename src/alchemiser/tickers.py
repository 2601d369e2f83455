"""Strategy files on disk: read and parse them, and find where each ticker is used.

`alchemiser tickers`, `evaluate`, `data refresh --for` and `check` all start here,
so a file that does not parse is the same `StrategyFileError` (file:line:column)
everywhere.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from alchemiser.dsl import Strategy, StrategyError, parse_strategy
from alchemiser.dsl.ast import Asset, Indicator
from alchemiser.errors import StrategyFileError

STRATEGY_SUFFIX = ".clj"


@dataclass(frozen=True, slots=True)
class Use:
    """Where a strategy first names a ticker."""

    ticker: str
    line: int
    column: int


def strategy_files(paths: Iterable[Path]) -> list[Path]:
    """The given files, with each directory replaced by the .clj files in it."""
    out: list[Path] = []
    for path in paths:
        out.extend(sorted(path.glob(f"*{STRATEGY_SUFFIX}")) if path.is_dir() else [path])
    return out


def read_strategy(path: Path) -> Strategy:
    """Parse one file; StrategyFileError (file:line:column: what) when it cannot be."""
    try:
        return parse_strategy(path.read_text(encoding="utf-8"), str(path))
    except StrategyError as exc:
        raise StrategyFileError(str(exc)) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyFileError(f"{path}: cannot read: {exc}") from exc


def ticker_uses(strategy: Strategy) -> list[Use]:
    """Each ticker once, at its first use in reading order (line, then column)."""
    first: dict[str, Use] = {}
    for node in _nodes(strategy):
        if not isinstance(node, Asset | Indicator) or node.ticker is None:
            continue
        use = Use(node.ticker, node.line, node.column)
        known = first.get(use.ticker)
        if known is None or (use.line, use.column) < (known.line, known.column):
            first[use.ticker] = use
    return sorted(first.values(), key=lambda u: (u.line, u.column, u.ticker))


def _nodes(root: object) -> Iterator[object]:
    """Every node of the tree, without recursion (exports nest hundreds deep)."""
    stack = [root]
    while stack:
        node = stack.pop()
        yield node
        if dataclasses.is_dataclass(node):
            for f in dataclasses.fields(node):
                stack.extend(_children(getattr(node, f.name)))


def _children(value: object) -> list[object]:
    if isinstance(value, tuple | list):
        return [v for v in value if dataclasses.is_dataclass(v)]
    return [value] if dataclasses.is_dataclass(value) else []
