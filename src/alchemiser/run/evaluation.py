"""The run's evaluation step: parse every configured strategy, evaluate them concurrently.

A strategy that does not parse, whose data failed its check, or whose evaluation
fails is recorded with its error (file:line:column where the language gives one)
and skipped; the others trade.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from alchemiser.dsl import PriceHistory, Strategy, StrategyError, evaluate, parse_strategy
from alchemiser.logging import get_logger
from alchemiser.marketdata.run import RunData
from alchemiser.settings import StrategyConfig

log = get_logger(__name__)


@dataclass
class Outcome:
    """One strategy's evaluation: its weights and decision trace, or why it has none."""

    weights: dict[str, float] = field(default_factory=dict)
    trace: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None


@dataclass(frozen=True)
class Parsed:
    strategies: dict[str, Strategy]
    errors: dict[str, str]


def parse_all(configs: Sequence[StrategyConfig]) -> Parsed:
    strategies: dict[str, Strategy] = {}
    errors: dict[str, str] = {}
    for config in configs:
        try:
            text = config.file.read_text(encoding="utf-8")
            strategies[config.id] = parse_strategy(text, str(config.file))
        except (StrategyError, OSError) as exc:
            errors[config.id] = str(exc)
            log.error("strategy skipped", strategy=config.id, error=str(exc))
    return Parsed(strategies, errors)


async def evaluate_all(strategies: Mapping[str, Strategy], data: RunData) -> dict[str, Outcome]:
    """Every strategy whose data passed its check, evaluated off the event loop, at once."""
    prices = PriceHistory(data.frame)

    async def one(sid: str, strategy: Strategy) -> tuple[str, Outcome]:
        check = data.checks.get(sid)
        if check is None or not check.ok:
            problems = "; ".join(check.problems) if check else "no data check"
            return sid, Outcome(error=f"data: {problems}")
        try:
            result = await asyncio.to_thread(evaluate, strategy, prices, data.evaluation_date)
        except StrategyError as exc:
            log.error("strategy failed", strategy=sid, error=str(exc))
            return sid, Outcome(error=str(exc))
        return sid, Outcome(dict(result.weights), list(result.trace))

    pairs = await asyncio.gather(*(one(sid, s) for sid, s in strategies.items()))
    return dict(pairs)
