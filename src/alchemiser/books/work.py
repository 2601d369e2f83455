"""A run's remaining work, derived from its saved state alone (restart-safe)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.bulk import statement
from alchemiser.books.kinds import CashKind, ExecutionKind, IntentClosure
from alchemiser.books.models import Book, BookFill, CashEntry, CrossLeg, Execution, Run
from alchemiser.books.models import Intent as IntentRow
from alchemiser.books.money import WIDE_FLOOR, ZERO, quantum_for, scale_to_budget
from alchemiser.books.netting import Cross, NetOrder, Netted, Share, net_intents
from alchemiser.books.planner import Intent, Side
from alchemiser.logging import get_logger
from alchemiser.settings import RiskConfig

log = get_logger(__name__)

REASON_SCALED_TO_CASH = "scaled-to-cash"
# Phase 2's default headroom: the `[risk] slippage_allowance` default (the daemon passes
# the configured one).
DEFAULT_BUY_HEADROOM: Decimal = RiskConfig.model_fields["slippage_allowance"].default


async def net_run(conn: AsyncConnection, run_id: int, *, fractionable: Collection[str]) -> Netted:
    """A run's remaining work, derived from its saved state alone (restart-safe).

    The run's crosses are computed once, the first time (`net_intents` of the
    intents as planned, with each book's cash before the run's first fill), and
    saved: a transfer, fee or dividend during a resumed run cannot change them.
    Returned: the crosses
    not yet booked, and one order per symbol and side for what the books still
    want: each intent minus the book's fills in this run (crosses and broker
    executions) minus its legs of the crosses still to book. Called again after
    some crosses or fills are booked, it gives the work that is left, never work
    done twice. Book the crosses before sending orders; buys go to the broker
    through `affordable_buy_orders` (phase 2, after the sells).
    """
    planned = [
        Intent(r.strategy_id, r.symbol, r.side, r.quantity, r.reference_price, r.reason)
        for r in await conn.execute(
            select(
                IntentRow.strategy_id,
                IntentRow.symbol,
                IntentRow.side,
                func.coalesce(IntentRow.planned_quantity, IntentRow.quantity).label("quantity"),
                IntentRow.reference_price,
                IntentRow.reason,
            )
            .where(IntentRow.run_id == run_id)
            .order_by(IntentRow.strategy_id, IntentRow.symbol, IntentRow.side)
        )
    ]
    crosses = await _run_crosses(conn, run_id, planned, fractionable)
    crossed = set(
        await conn.scalars(
            select(Execution.symbol).where(
                Execution.run_id == run_id, Execution.kind == ExecutionKind.CROSS
            )
        )
    )
    pending = tuple(c for c in crosses if c.symbol not in crossed)
    wants = await unfilled(conn, run_id, open_only=True)
    for cross in pending:
        legs: list[tuple[Side, Share]] = [("buy", s) for s in cross.buyers]
        legs += [("sell", s) for s in cross.sellers]
        for side, leg in legs:
            key = (leg.strategy_id, cross.symbol, side)
            quantity, price = wants.get(key, (ZERO, cross.price))
            if leg.quantity > quantity:
                log.warning("fills before their cross", run_id=run_id, symbol=cross.symbol)
            wants[key] = (max(quantity - leg.quantity, ZERO), price)
    by_order: dict[tuple[str, Side], list[Share]] = {}
    prices: dict[str, Decimal] = {}
    for (strategy_id, symbol, side), (quantity, price) in sorted(wants.items()):
        if quantity > 0:
            by_order.setdefault((symbol, side), []).append(Share(strategy_id, quantity))
            prices[symbol] = price
    orders = [
        NetOrder(
            symbol, side, sum((x.quantity for x in shares), ZERO), prices[symbol], tuple(shares)
        )
        for (symbol, side), shares in sorted(
            by_order.items(), key=lambda o: (o[0][0], o[0][1] == "buy")
        )
    ]
    return Netted(tuple(orders), pending)


async def _run_crosses(
    conn: AsyncConnection,
    run_id: int,
    planned: Sequence[Intent],
    fractionable: Collection[str],
) -> tuple[Cross, ...]:
    """The run's crosses as saved, or computed now and saved (under the run's row lock)."""
    crossed_at = await conn.scalar(select(Run.crossed_at).where(Run.id == run_id).with_for_update())
    if crossed_at is not None:
        return await _saved_crosses(conn, run_id)
    spent = dict(
        (
            await conn.execute(
                select(CashEntry.strategy_id, func.sum(CashEntry.amount))
                .where(CashEntry.run_id == run_id, CashEntry.kind == CashKind.FILL)
                .group_by(CashEntry.strategy_id)
            )
        ).all()
    )
    cash = dict((await conn.execute(select(Book.id, Book.cash))).all())
    before = {book: amount - spent.get(book, ZERO) for book, amount in cash.items()}
    crosses = net_intents(planned, fractionable, before).crosses
    legs = [
        {
            "run_id": run_id,
            "symbol": c.symbol,
            "strategy_id": leg.strategy_id,
            "side": side,
            "quantity": leg.quantity,
            "price": c.price,
        }
        for c in crosses
        for side, shares in (("buy", c.buyers), ("sell", c.sellers))
        for leg in shares
    ]
    if legs:
        await conn.execute(insert(CrossLeg), legs)
    await conn.execute(update(Run).where(Run.id == run_id).values(crossed_at=func.now()))
    return crosses


async def _saved_crosses(conn: AsyncConnection, run_id: int) -> tuple[Cross, ...]:
    rows = await conn.execute(
        select(CrossLeg)
        .where(CrossLeg.run_id == run_id)
        .order_by(CrossLeg.symbol, CrossLeg.strategy_id)
    )
    legs: dict[str, dict[str, list[Share]]] = {}
    prices: dict[str, Decimal] = {}
    for row in rows:
        legs.setdefault(row.symbol, {"buy": [], "sell": []})[row.side].append(
            Share(row.strategy_id, row.quantity)
        )
        prices[row.symbol] = row.price
    return tuple(
        Cross(
            symbol,
            prices[symbol],
            sum((s.quantity for s in sides["buy"]), ZERO),
            tuple(sides["buy"]),
            tuple(sides["sell"]),
        )
        for symbol, sides in sorted(legs.items())
    )


async def unfilled(
    conn: AsyncConnection,
    run_id: int,
    *,
    symbol: str | None = None,
    side: Side | None = None,
    lock: bool = False,
    open_only: bool = False,
) -> dict[tuple[str, str, Side], tuple[Decimal, Decimal]]:
    """(book, symbol, side) → (its intent minus its fills in the run, reference price).

    Only what is still wanted (> 0). `symbol`, `side`: only those intents. `lock`:
    lock the intents first (serialises concurrent bookings of the same order).
    `open_only`: leave out intents closed for the day (remaining work); a late fill
    of a closed intent's order is still booked to it.
    """
    which = [IntentRow.run_id == run_id]
    if open_only:
        which.append(IntentRow.closed_at.is_(None))
    if symbol is not None:
        which.append(IntentRow.symbol == symbol)
    if side is not None:
        which.append(IntentRow.side == side)
    if lock:
        # The fills are read by a later statement (a new snapshot), so a booking that
        # waited for the lock sees the fills its predecessor committed.
        await conn.execute(
            select(IntentRow.id).where(*which).order_by(IntentRow.strategy_id).with_for_update()
        )
    filled = (
        select(
            BookFill.strategy_id,
            BookFill.symbol,
            BookFill.side,
            func.sum(BookFill.quantity).label("quantity"),
        )
        .where(BookFill.run_id == run_id)
        .group_by(BookFill.strategy_id, BookFill.symbol, BookFill.side)
        .subquery()
    )
    rows = await conn.execute(
        select(
            IntentRow.strategy_id,
            IntentRow.symbol,
            IntentRow.side,
            (IntentRow.quantity - func.coalesce(filled.c.quantity, 0)).label("quantity"),
            IntentRow.reference_price,
        )
        .outerjoin(
            filled,
            (filled.c.strategy_id == IntentRow.strategy_id)
            & (filled.c.symbol == IntentRow.symbol)
            & (filled.c.side == IntentRow.side),
        )
        .where(*which)
        .order_by(IntentRow.strategy_id, IntentRow.symbol, IntentRow.side)
    )
    unfilled: dict[tuple[str, str, Side], tuple[Decimal, Decimal]] = {}
    for row in rows:
        if row.quantity > 0:
            unfilled[row.strategy_id, row.symbol, row.side] = (row.quantity, row.reference_price)
    return unfilled


_GROUPS = """
    intents AS i JOIN unnest(CAST(:runs AS bigint[]), CAST(:symbols AS text[]),
        CAST(:sides AS text[])) AS g(run_id, symbol, side) USING (run_id, symbol, side)
"""
_LOCK_GROUPS = statement(
    f"SELECT i.id FROM {_GROUPS} ORDER BY i.run_id, i.symbol, i.side, i.strategy_id FOR UPDATE OF i"
)
_UNFILLED_GROUPS = statement(
    f"""
    SELECT i.run_id, i.symbol, i.side, i.strategy_id, i.quantity - coalesce((
        SELECT sum(f.quantity) FROM book_fills AS f
        WHERE (f.run_id, f.strategy_id, f.symbol, f.side)
            = (i.run_id, i.strategy_id, i.symbol, i.side)
    ), 0)
    FROM {_GROUPS}
    """
)


async def unfilled_groups(
    conn: AsyncConnection, groups: Sequence[tuple[int, str, str]]
) -> dict[tuple[int, str, str], dict[str, Decimal]]:
    """(run, symbol, side) → each book's intent minus its fills in the run, if > 0.

    `unfilled` of many net orders at once, their intents locked first (in one
    statement): a booking that waited for the lock sees what its predecessor booked.
    """
    result: dict[tuple[int, str, str], dict[str, Decimal]] = {g: {} for g in groups}
    if not groups:
        return result
    wanted = {
        "runs": [run for run, _, _ in groups],
        "symbols": [symbol for _, symbol, _ in groups],
        "sides": [side for _, _, side in groups],
    }
    await conn.execute(_LOCK_GROUPS, wanted)
    rows = await conn.execute(_UNFILLED_GROUPS, wanted)
    for run_id, symbol, side, strategy_id, quantity in rows:
        if quantity > 0:
            result[run_id, symbol, side][strategy_id] = quantity
    return result


async def affordable_buy_orders(
    conn: AsyncConnection,
    run_id: int,
    *,
    fractionable: Collection[str],
    headroom: Decimal = DEFAULT_BUY_HEADROOM,
) -> list[NetOrder]:
    """Phase 2: the run's net buy orders, each book's part capped to the cash it has now.

    Call after the sells (phase 1) have finished and been booked. A book whose
    remaining buys cost more (at reference prices) than its cash × (1 − `headroom`)
    gets them scaled down pro rata; its intents are lowered to match (the plan is
    kept in `planned_quantity`), so later executions are split by what it can pay
    for. `headroom` (`[risk] slippage_allowance`) pays for fills above the
    reference price. A fill that strays further is still booked (it is real): the
    book's cash goes negative and `reconcile.ledger_problems` reports it.
    """
    remaining: dict[str, dict[str, tuple[Decimal, Decimal]]] = {}
    for (strategy_id, symbol, _), want in (
        await unfilled(conn, run_id, side="buy", open_only=True)
    ).items():
        remaining.setdefault(strategy_id, {})[symbol] = want
    cash = dict((await conn.execute(select(Book.id, Book.cash))).all())
    by_symbol: dict[str, list[Share]] = {}
    prices: dict[str, Decimal] = {}
    cuts: list[dict[str, Any]] = []
    for strategy_id, wants in sorted(remaining.items()):
        quantum_of = {s: quantum_for(s in fractionable) for s in wants}
        # Rounded down, if at all: the budget never exceeds the cash it leaves headroom in.
        budget = WIDE_FLOOR.multiply(max(cash.get(strategy_id, ZERO), ZERO), 1 - headroom)
        symbols = sorted(wants)
        scaled = scale_to_budget([(*wants[s], quantum_of[s]) for s in symbols], budget)
        affordable = dict(zip(symbols, scaled, strict=True))
        for symbol, (quantity, price) in sorted(wants.items()):
            cut = quantity - affordable[symbol]
            if cut > 0:
                cuts.append({"book": strategy_id, "ticker": symbol, "cut": cut})
                log.info("buy scaled to cash", strategy_id=strategy_id, symbol=symbol, cut=str(cut))
            if affordable[symbol] > 0:
                by_symbol.setdefault(symbol, []).append(Share(strategy_id, affordable[symbol]))
            prices[symbol] = price
    await _lower_intents(conn, run_id, cuts)
    return [
        NetOrder(s, "buy", sum((x.quantity for x in shares), ZERO), prices[s], tuple(shares))
        for s, shares in sorted(by_symbol.items())
    ]


async def _lower_intents(conn: AsyncConnection, run_id: int, cuts: list[dict[str, Any]]) -> None:
    """Lower buy intents by `cut` each (one statement), keeping the plan in `planned_quantity`."""
    if not cuts:
        return
    await conn.execute(
        update(IntentRow)
        .where(
            IntentRow.run_id == run_id,
            IntentRow.strategy_id == bindparam("book"),
            IntentRow.symbol == bindparam("ticker"),
            IntentRow.side == "buy",
        )
        .values(
            planned_quantity=func.coalesce(IntentRow.planned_quantity, IntentRow.quantity),
            quantity=IntentRow.quantity - bindparam("cut", type_=IntentRow.quantity.type),
            reason=REASON_SCALED_TO_CASH,
        ),
        cuts,
    )


@dataclass(frozen=True)
class Work:
    """A run's remaining work, in the order to do it: crosses, then sells, then buys.

    `buys` are capped to each book's cash after the sells, so they are given only
    once no cross and no sell is left (phase 2); until then they are empty.
    """

    crosses: tuple[Cross, ...]
    sells: tuple[NetOrder, ...]
    buys: tuple[NetOrder, ...]


async def remaining_work(
    conn: AsyncConnection,
    run_id: int,
    *,
    fractionable: Collection[str],
    headroom: Decimal = DEFAULT_BUY_HEADROOM,
) -> Work:
    """What the run still has to do, from its saved state (restart-safe, see `net_run`)."""
    netted = await net_run(conn, run_id, fractionable=fractionable)
    sells = tuple(o for o in netted.orders if o.side == "sell")
    if netted.crosses or sells:
        return Work(netted.crosses, sells, ())
    buys = await affordable_buy_orders(conn, run_id, fractionable=fractionable, headroom=headroom)
    return Work((), (), tuple(buys))


async def close_intents(
    conn: AsyncConnection,
    run_id: int,
    symbol: str,
    side: Side,
    reason: IntentClosure,
    *,
    strategy_id: str | None = None,
) -> None:
    """Close the day's intents of (run, symbol, side) (one book's, if given): a resume skips them.

    What they were filled stays booked; the rest is not asked for again today.
    """
    which = [
        IntentRow.run_id == run_id,
        IntentRow.symbol == symbol,
        IntentRow.side == side,
        IntentRow.closed_at.is_(None),
    ]
    if strategy_id is not None:
        which.append(IntentRow.strategy_id == strategy_id)
    await conn.execute(
        update(IntentRow).where(*which).values(closed_reason=reason, closed_at=func.now())
    )
