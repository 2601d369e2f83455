"""Netting intents across books, and splitting executions back to the books.

Pure functions on plain dataclasses. For each symbol, buys and sells from
different books cross internally at the reference price (no broker order); only
the net goes to the broker, as one order per symbol and side. Every split uses
the largest-remainder method on a quantum (1e-9 shares, or 1 share for
non-fractionable assets), so the pieces add up exactly, no piece exceeds what
its book asked for, and ties go to the strategy id that sorts first. Whole
shares are used only where the numbers allow: when the total or an ask is
fractional (a dust exit of a non-fractionable asset), the split is in 1e-9.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext

from alchemiser.books.money import (
    QUANTITY_QUANTUM,
    WIDE,
    ZERO,
    floor_to,
    mul,
    quantum_for,
    scale_to_budget,
)
from alchemiser.books.planner import Intent, Side


@dataclass(frozen=True, slots=True)
class Share:
    """A book's part of a net order or a cross leg."""

    strategy_id: str
    quantity: Decimal


@dataclass(frozen=True)
class NetOrder:
    """What goes to the broker for one symbol and side; `shares` say which books asked."""

    symbol: str
    side: Side
    quantity: Decimal
    reference_price: Decimal
    shares: tuple[Share, ...]


@dataclass(frozen=True)
class Cross:
    """Buys and sells of one symbol matched inside the house at the reference price."""

    symbol: str
    price: Decimal
    quantity: Decimal
    buyers: tuple[Share, ...]
    sellers: tuple[Share, ...]


@dataclass(frozen=True)
class Netted:
    orders: tuple[NetOrder, ...]
    crosses: tuple[Cross, ...]


def cross_execution_id(run_id: int, symbol: str) -> str:
    """Deterministic id of a run's internal cross in one symbol (its executions row)."""
    return f"cross-{run_id}-{symbol}"


def split_pro_rata(
    total: Decimal, asks: Sequence[Share], quantum: Decimal = QUANTITY_QUANTUM
) -> list[Share]:
    """Split `total` (a multiple of `quantum`, ≤ Σ asks) among `asks` in proportion.

    Largest remainder: each gets floor(total × ask / Σ asks) in quanta, then the
    leftover quanta go one each to the largest remainders (ties: strategy id).
    The result adds up to `total` exactly and no piece exceeds its ask. Books
    whose piece is zero are left out. If `total` or an ask is not a multiple of
    `quantum` (a fractional ask in whole shares), the split is in 1e-9 instead:
    a whole quantum could exceed a fractional ask.
    """
    asked = sum((a.quantity for a in asks), ZERO)
    if total < 0 or total > asked:
        raise ValueError(f"cannot split {total} among asks totalling {asked}")
    if total == 0:
        return []
    if not all(_is_multiple(x, quantum) for x in (total, *(a.quantity for a in asks))):
        quantum = QUANTITY_QUANTUM
    with localcontext(WIDE):
        exact = [total * a.quantity / asked for a in asks]
        pieces = [floor_to(x, quantum) for x in exact]
        leftover = int((total - sum(pieces, ZERO)) / quantum)
        if leftover:
            order = sorted(
                range(len(asks)), key=lambda i: (-(exact[i] - pieces[i]), asks[i].strategy_id)
            )
            for i in order[:leftover]:
                pieces[i] += quantum
    return [Share(a.strategy_id, p) for a, p in zip(asks, pieces, strict=True) if p > 0]


def net_intents(
    intents: Iterable[Intent],
    fractionable: Collection[str] | None = None,
    cash: Mapping[str, Decimal] | None = None,
) -> Netted:
    """Net many books' intents: internal crosses plus one broker order per symbol and side.

    `fractionable`: symbols tradable in fractions (default: all); for the others the
    crossed quantity is split in whole shares, so every book keeps whole shares.
    `cash`: each book's cash now. When given, a book crosses only the buys its cash
    already pays for (crosses are booked before any broker sell fills, so a buy
    that relies on the book's own sells goes to the broker in phase 2 instead,
    where it is capped to the cash the sells actually brought).
    """
    by_symbol: dict[str, list[Intent]] = defaultdict(list)
    for intent in intents:
        by_symbol[intent.symbol].append(intent)
    available = None if cash is None else dict(cash)
    orders: list[NetOrder] = []
    crosses: list[Cross] = []
    for symbol in sorted(by_symbol):
        is_fractionable = fractionable is None or symbol in fractionable
        quantum = quantum_for(is_fractionable)
        cross, net = _net_symbol(symbol, by_symbol[symbol], quantum, available)
        if cross is not None:
            crosses.append(cross)
        orders.extend(net)
    return Netted(tuple(orders), tuple(crosses))


def _asks(intents: Sequence[Intent], side: Side) -> list[Share]:
    totals: dict[str, Decimal] = {}
    for i in intents:
        if i.side == side:
            totals[i.strategy_id] = totals.get(i.strategy_id, ZERO) + i.quantity
    return [Share(s, totals[s]) for s in sorted(totals)]


def _affordable(
    buys: Sequence[Share], price: Decimal, quantum: Decimal, cash: dict[str, Decimal] | None
) -> list[Share]:
    """Each buyer's ask, capped to what its cash pays for at `price` (None: uncapped)."""
    if cash is None:
        return list(buys)
    capped = []
    for buy in buys:
        (payable,) = scale_to_budget(
            [(buy.quantity, price, quantum)], cash.get(buy.strategy_id, ZERO)
        )
        if payable > 0:
            capped.append(Share(buy.strategy_id, payable))
    return capped


def _net_symbol(
    symbol: str,
    intents: Sequence[Intent],
    quantum: Decimal,
    cash: dict[str, Decimal] | None,
) -> tuple[Cross | None, list[NetOrder]]:
    price = intents[0].reference_price
    buys, sells = _asks(intents, "buy"), _asks(intents, "sell")
    crossable = _affordable(buys, price, quantum, cash)
    bought = sum((s.quantity for s in crossable), ZERO)
    sold = sum((s.quantity for s in sells), ZERO)
    crossed = floor_to(min(bought, sold), quantum)
    cross = None
    if crossed > 0:
        cross = Cross(
            symbol,
            price,
            crossed,
            tuple(split_pro_rata(crossed, crossable, quantum)),
            tuple(split_pro_rata(crossed, sells, quantum)),
        )
        if cash is not None:
            for leg in cross.buyers:
                cash[leg.strategy_id] -= mul(leg.quantity, price)
            for leg in cross.sellers:
                cash[leg.strategy_id] = cash.get(leg.strategy_id, ZERO) + mul(leg.quantity, price)
    # Usually one side is fully crossed. Both remain when crossing was limited by a
    # buyer's cash or by whole shares (a fractional exit of a non-fractionable asset).
    sides: tuple[tuple[Side, list[Share], tuple[Share, ...]], ...] = (
        ("sell", sells, cross.sellers if cross else ()),
        ("buy", buys, cross.buyers if cross else ()),
    )
    orders = []
    for side, asks, legs in sides:
        remaining = _subtract(asks, legs)
        quantity = sum((s.quantity for s in remaining), ZERO)
        if quantity > 0:
            orders.append(NetOrder(symbol, side, quantity, price, tuple(remaining)))
    return cross, orders


def _subtract(asks: Sequence[Share], crossed: Sequence[Share]) -> list[Share]:
    if not crossed:
        return list(asks)
    taken: Mapping[str, Decimal] = {s.strategy_id: s.quantity for s in crossed}
    left = [Share(a.strategy_id, a.quantity - taken.get(a.strategy_id, ZERO)) for a in asks]
    if any(s.quantity < 0 for s in left):
        raise ValueError(f"a cross leg exceeds its ask: {crossed} of {asks}")
    return [s for s in left if s.quantity > 0]


def split_execution(
    quantity: Decimal, remaining: Sequence[Share], quantum: Decimal = QUANTITY_QUANTUM
) -> tuple[list[Share], Decimal]:
    """Split one execution of a net order among the books still waiting for shares.

    `remaining`: each book's ask minus what earlier executions already gave it.
    Splitting pro rata to what is still wanted keeps every book within its ask,
    and a fully filled order gives each book exactly its ask. `quantum`: 1 for a
    non-fractionable asset (books keep whole shares where the numbers allow).
    Returns the pieces and the excess nobody asked for (an over-fill, or a fill
    with no intents: the caller books it to the unallocated book).
    """
    wanted = sum((s.quantity for s in remaining), ZERO)
    allocated = min(quantity, wanted)
    return split_pro_rata(allocated, remaining, quantum), quantity - allocated


def _is_multiple(value: Decimal, quantum: Decimal) -> bool:
    return floor_to(value, quantum) == value
