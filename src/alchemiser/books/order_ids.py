"""Client order ids from a run's natural key, never from database ids.

`alch-<trading day YYYYMMDD>-<run kind>-<ticker>-<side>-<step>`: any process (or a
restored database) finds a run's orders at the broker again by the same key, and
cannot attach a run to another day's orders. Alpaca allows at most 128 characters.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import cast

from alchemiser.books.planner import Side

CLIENT_ORDER_PREFIX = "alch-"
MAX_CLIENT_ORDER_ID = 128
FIRST_STEP = 0


@dataclass(frozen=True)
class OrderKey:
    """What a client order id says: the run (trading day, kind), ticker, side and step."""

    trading_day: date
    kind: str
    symbol: str
    side: Side
    step: int


def client_order_id(
    trading_day: date, kind: str, symbol: str, side: Side, step: int = FIRST_STEP
) -> str:
    """The deterministic id of a run's order for `symbol` and `side` at walk step `step`."""
    coid = f"{CLIENT_ORDER_PREFIX}{trading_day:%Y%m%d}-{kind}-{symbol}-{side}-{step}"
    if len(coid) > MAX_CLIENT_ORDER_ID:
        raise ValueError(f"client order id {coid!r} is longer than {MAX_CLIENT_ORDER_ID}")
    return coid


def is_own_order(coid: str | None) -> bool:
    """True for an id the daemon sent; any other is a manual or foreign order."""
    return coid is not None and coid.startswith(CLIENT_ORDER_PREFIX)


def parse_client_order_id(coid: str) -> OrderKey | None:
    """The natural key of one of our ids (None if it is not one)."""
    if not is_own_order(coid):
        return None
    parts = coid.rsplit("-", 3)
    if len(parts) != 4:
        return None
    head, symbol, side, step = parts
    day, _, kind = head.removeprefix(CLIENT_ORDER_PREFIX).partition("-")
    try:
        trading_day = date(int(day[:4]), int(day[4:6]), int(day[6:]))
        number = int(step)
    except ValueError:
        return None
    if side not in ("buy", "sell") or not kind or not symbol:
        return None
    return OrderKey(trading_day, kind, symbol, cast(Side, side), number)
