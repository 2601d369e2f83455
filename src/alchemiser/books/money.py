"""Exact arithmetic for the ledger: quantities to 9 decimals, money unrounded.

Products of a 9-decimal quantity and a price are exact in a 60-digit context, so
cash, cost and P&L add up to the cent and beyond; only quantities are quantised.
"""

from __future__ import annotations

from decimal import ROUND_FLOOR, Context, Decimal, Inexact

# Alpaca's fractional shares have 9 decimals; so do the ledger's quantities.
QUANTITY_QUANTUM = Decimal("0.000000001")
WHOLE_SHARE = Decimal(1)
ZERO = Decimal(0)
# Wide enough that sums and products of ledger values never round.
EXACT = Context(prec=60, traps=[Inexact])
WIDE = Context(prec=60)


def quantum_for(fractionable: bool) -> Decimal:
    """Smallest tradable step: 1e-9 shares where the asset is fractionable, else 1."""
    return QUANTITY_QUANTUM if fractionable else WHOLE_SHARE


def floor_to(value: Decimal, quantum: Decimal) -> Decimal:
    """Round toward −∞ to a multiple of `quantum`, a power of ten (1e-9 or 1 share)."""
    return value.quantize(quantum, rounding=ROUND_FLOOR, context=WIDE)


def mul(a: Decimal, b: Decimal) -> Decimal:
    """a × b exactly (raises if it would round)."""
    return EXACT.multiply(a, b)


def div(a: Decimal, b: Decimal) -> Decimal:
    """a / b to 60 significant digits (for weights and shares, never stored as money)."""
    return WIDE.divide(a, b)


def add(*values: Decimal) -> Decimal:
    total = ZERO
    for value in values:
        total = EXACT.add(total, value)
    return total
