"""A run's execution: internal crosses, then every net sell, then every net buy.

All sells walk concurrently; buys start only when every sell has ended (filled,
rejected, expired at the close), and are then capped to the cash the books really
have (the ledger's `remaining_work`; never Alpaca's `buying_power`, which includes
margin). Each step reads the remaining work from the ledger, so running this
again after a crash continues where the books stand and never asks twice.
"""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Awaitable, Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from alchemiser.books import ledger
from alchemiser.books.kinds import IntentClosure
from alchemiser.books.netting import NetOrder
from alchemiser.books.retry import transact
from alchemiser.execution.booking import Booker, LedgerLink
from alchemiser.execution.broker import Broker
from alchemiser.execution.pricing import Quote, floor_to_tick
from alchemiser.execution.walk import Walk, WalkConfig, WalkPlan, WalkResult, WalkRouter
from alchemiser.logging import get_logger

log = get_logger(__name__)

# How a walk that did not fill closes its intents for the day.
CLOSURE = {
    "rejected": IntentClosure.REJECTED,
    "halted": IntentClosure.ABANDONED,
    "expired": IntentClosure.EXPIRED,
    "unconfirmed": IntentClosure.ABANDONED,
    "error": IntentClosure.ABANDONED,
}


@dataclass(frozen=True)
class Desk:
    """What the phases need, wired once by the run."""

    engine: AsyncEngine
    booker: Booker
    broker: Broker
    router: WalkRouter
    quote: Callable[[str], Awaitable[Quote]]
    config: WalkConfig
    now: Callable[[], datetime]
    fractionable: frozenset[str]
    buy_headroom: Decimal
    max_order_value: Decimal | None = None


@dataclass(frozen=True)
class OrderOutcome:
    order: NetOrder
    result: WalkResult


@dataclass(frozen=True)
class Execution:
    crosses: int
    sells: tuple[OrderOutcome, ...]
    buys: tuple[OrderOutcome, ...]


async def execute(desk: Desk, run_id: int) -> Execution:
    with _no_full_collections():
        return await _execute(desk, run_id)


@contextmanager
def _no_full_collections() -> Iterator[None]:
    """No full garbage collection while orders are worked.

    A full collection walks every object the process holds (the libraries, the bars,
    the parsed strategies): hundreds of milliseconds with the event loop stopped,
    while a hundred walks wait for their confirmations. Everything alive now is set
    aside (`gc.freeze`) until the phases end; young garbage is still collected. Not
    collected first: that is the same full collection (~150 ms), at the start; what
    garbage is set aside with the rest is collected after the phases.
    """
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


async def _execute(desk: Desk, run_id: int) -> Execution:
    link = LedgerLink(desk.booker, run_id, desk.fractionable)
    crosses = await _book_crosses(desk, run_id)
    work = await _remaining(desk, run_id)
    log.info("phase started", phase="sells", orders=len(work.sells))
    sells = await _walk_all(desk, link, run_id, work.sells)
    await desk.booker.flush()
    work = await _remaining(desk, run_id)
    if work.sells or work.crosses:
        # A sell that ended unfilled has closed its intents; anything left is a bug.
        raise RuntimeError(f"run {run_id}: sells remain after phase 1: {work.sells}")
    log.info("phase started", phase="buys", orders=len(work.buys))
    buys = await _walk_all(desk, link, run_id, work.buys)
    await desk.booker.flush()
    return Execution(crosses, sells, buys)


async def _book_crosses(desk: Desk, run_id: int) -> int:
    work = await _remaining(desk, run_id)

    async def book(conn: AsyncConnection) -> int:
        for cross in work.crosses:
            await ledger.book_cross(conn, run_id, cross)
        return len(work.crosses)

    return await transact(desk.engine, book)


async def _remaining(desk: Desk, run_id: int) -> ledger.Work:
    async def read(conn: AsyncConnection) -> ledger.Work:
        return await ledger.remaining_work(
            conn, run_id, fractionable=desk.fractionable, headroom=desk.buy_headroom
        )

    return await transact(desk.engine, read)


async def _walk_all(
    desk: Desk, link: LedgerLink, run_id: int, orders: Collection[NetOrder]
) -> tuple[OrderOutcome, ...]:
    # Every walk ends on its own terms (cancelling what it sent) before a failure of
    # one is raised: a walk left running behind a failed phase could trade on its own.
    results = await asyncio.gather(
        *(_walk_one(desk, link, run_id, o) for o in orders), return_exceptions=True
    )
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        raise failures[0]
    return tuple(r for r in results if isinstance(r, OrderOutcome))


async def _walk_one(desk: Desk, link: LedgerLink, run_id: int, order: NetOrder) -> OrderOutcome:
    value = order.quantity * order.reference_price
    if desk.max_order_value is not None and value > desk.max_order_value:
        reason = f"order value {value:,.2f} is over risk.max_order_value {desk.max_order_value}"
        log.error("order not sent", symbol=order.symbol, side=order.side, reason=reason)
        await _close(desk, run_id, order, IntentClosure.REJECTED)
        return OrderOutcome(order, WalkResult("rejected", Decimal(0), (), reason))
    plan = WalkPlan(
        order.symbol,
        order.side,
        order.quantity,
        fractionable=order.symbol in desk.fractionable,
        price_cap=_cap(order, desk.buy_headroom),
    )
    walk = Walk(
        plan,
        desk.broker,
        quote=desk.quote,
        ledger=link,
        config=desk.config,
        now=desk.now,
        router=desk.router,
    )
    result = await walk.run()
    log.info(
        "walk ended",
        symbol=order.symbol,
        side=order.side,
        outcome=result.outcome,
        filled=str(result.filled),
        reference=str(order.reference_price),
        reason=result.reason,
    )
    closure = CLOSURE.get(result.outcome)
    if closure is not None:
        await desk.booker.flush()  # its partial fills go to the intents before they close
        await _close(desk, run_id, order, closure)
    return OrderOutcome(order, result)


async def _close(desk: Desk, run_id: int, order: NetOrder, closure: IntentClosure) -> None:
    async def write(conn: AsyncConnection) -> None:
        await ledger.close_intents(conn, run_id, order.symbol, order.side, closure)

    await transact(desk.engine, write)


def _cap(order: NetOrder, headroom: Decimal) -> Decimal | None:
    """A buy pays at most its reference price plus the headroom phase 2 kept for slippage."""
    if order.side != "buy":
        return None
    return floor_to_tick(order.reference_price * (1 + headroom))
