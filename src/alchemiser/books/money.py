"""Exact arithmetic for the ledger: quantities to 9 decimals, money unrounded.

Products of a 9-decimal quantity and a price are exact in a 60-digit context, so
cash, cost and P&L add up to the cent and beyond; only quantities are quantised.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import ROUND_FLOOR, Context, Decimal, Inexact

# Alpaca's fractional shares have 9 decimals; so do the ledger's quantities.
QUANTITY_QUANTUM = Decimal("0.000000001")
WHOLE_SHARE = Decimal(1)
CENT = Decimal("0.01")
# A price derived from an order's average (REST progress, split cost): exact to 1e-12,
# so quantity × price stays exact and adds up to the broker's average to far below a cent.
PRICE_QUANTUM = Decimal("1e-12")
ZERO = Decimal(0)
# Wide enough that sums and products of ledger values never round.
EXACT = Context(prec=60, traps=[Inexact])
WIDE = Context(prec=60)
# Rounds toward −∞: a quotient floored here and then to a quantum is floored exactly.
WIDE_FLOOR = Context(prec=60, rounding=ROUND_FLOOR)


def quantum_for(fractionable: bool) -> Decimal:
    """Smallest tradable step: 1e-9 shares where the asset is fractionable, else 1."""
    return QUANTITY_QUANTUM if fractionable else WHOLE_SHARE


def floor_to(value: Decimal, quantum: Decimal) -> Decimal:
    """Round toward −∞ to a multiple of `quantum`, a power of ten (1e-9 or 1 share)."""
    return value.quantize(quantum, rounding=ROUND_FLOOR, context=WIDE)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """a × b exactly (raises if it would round)."""
    return EXACT.multiply(a, b)


def add(*values: Decimal) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total


def scale_to_budget(
    wants: Sequence[tuple[Decimal, Decimal, Decimal]], budget: Decimal
) -> list[Decimal]:
    """Quantities that cost no more than `budget`: `wants` as is if they fit, else pro rata.

    `wants`: (quantity, price, quantum) each. Scaled down, each quantity becomes
    floor(quantity × budget / cost) in its quantum, rounded once toward zero, so
    the result never costs more than `budget` (nothing, if `budget` ≤ 0).
    """
    cost = add(*(mul(q, p) for q, p, _ in wants))
    if cost <= budget:
        return [q for q, _, _ in wants]
    if budget <= 0:
        return [ZERO for _ in wants]
    return [
        floor_to(WIDE_FLOOR.divide(WIDE_FLOOR.multiply(q, budget), cost), quantum)
        for q, _, quantum in wants
    ]


def allocate(
    total: Decimal, weights: Mapping[str, Decimal], quantum: Decimal
) -> dict[str, Decimal]:
    """Split `total` by `weights` (> 0) in multiples of `quantum`, adding up to `total` exactly.

    Largest remainder: each gets its share floored (toward zero) to the quantum,
    then the leftover quanta go one each to the largest remainders (ties: the key
    that sorts first). A total off the quantum leaves its last sub-quantum piece
    to the first of those.
    """
    if not weights or any(w <= 0 for w in weights.values()):
        raise ValueError(f"cannot allocate by weights {dict(weights)}")
    sign = -1 if total < 0 else 1
    amount = abs(total)
    whole = sum(weights.values(), ZERO)
    keys = sorted(weights)
    exact = {k: WIDE.divide(WIDE.multiply(amount, weights[k]), whole) for k in keys}
    pieces = {k: floor_to(exact[k], quantum) for k in keys}
    order = sorted(keys, key=lambda k: (-(exact[k] - pieces[k]), k))
    leftover = amount - sum(pieces.values(), ZERO)
    for k in order:
        if leftover < quantum:
            break
        pieces[k] += quantum
        leftover -= quantum
    pieces[order[0]] += leftover
    return {k: sign * p for k, p in pieces.items()}
