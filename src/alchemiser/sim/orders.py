"""An order's data and the pure arithmetic of how it fills (when, how much, at what price)."""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_DOWN, ROUND_FLOOR, Decimal

from alchemiser.sim.market import Quote, tick_for
from alchemiser.sim.timeline import Timer

PENDING_STATUSES = frozenset({"pending_replace", "pending_cancel"})
# Live at the exchange: these fill (an order pending a replace or cancel still can).
LIVE_STATUSES = frozenset({"new", "partially_filled"}) | PENDING_STATUSES
OPEN_STATUSES = LIVE_STATUSES | {"accepted", "pending_new"}
QTY_QUANTUM = Decimal("0.000000001")  # Alpaca accepts up to 9 decimals
# A limit resting at mid-spread waits this long (simulated seconds) on average to fill;
# the mean scales with the square of the distance to the far side.
LIMIT_FILL_MEAN_AT_MID_S = 120.0
MAX_FILL_PARTS = 4
# A random partial fill (config.partial_fill_probability) takes this share of what remains.
PARTIAL_SHARE_RANGE = (0.1, 0.9)
# Market impact: basis points per $10,000 of notional in one execution, capped.
IMPACT_BPS_PER_10K = Decimal("0.5")
MAX_IMPACT_BPS = Decimal("50")
BPS = Decimal("0.0001")


@dataclass(slots=True)
class Order:
    id: str
    client_order_id: str
    symbol: str
    side: str
    type: str
    time_in_force: str
    qty: Decimal | None
    notional: Decimal | None
    limit_price: Decimal | None
    extended_hours: bool
    created_at: float
    status: str = "accepted"
    updated_at: float = 0.0
    submitted_at: float = 0.0
    filled_at: float | None = None
    canceled_at: float | None = None
    expired_at: float | None = None
    failed_at: float | None = None
    replaced_at: float | None = None
    replaced_by: str | None = None
    replaces: str | None = None
    filled_qty: Decimal = Decimal(0)
    filled_avg_price: Decimal | None = None
    expires_at: float | None = None  # close of the session a DAY order lives in
    timer: Timer | None = field(default=None, repr=False)  # its next fill or acknowledgement
    parts_left: int = 1
    rng: random.Random = field(default_factory=random.Random, repr=False)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def is_live(self) -> bool:
        return self.status in LIVE_STATUSES

    @property
    def remaining(self) -> Decimal:
        return (self.qty or Decimal(0)) - self.filled_qty


@dataclass(slots=True)
class Position:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal

    @property
    def cost_basis(self) -> Decimal:
        return self.qty * self.avg_entry_price


@dataclass(slots=True)
class AssetFlags:
    tradable: bool
    fractionable: bool


def is_whole(qty: Decimal) -> bool:
    return qty == qty.to_integral_value()


def far_side(order: Order, quote: Quote) -> Decimal:
    return quote.ask if order.side == "buy" else quote.bid


def limit_wait_mean(order: Order, quote: Quote) -> float | None:
    """Mean simulated wait before a resting limit fills; None if it is behind the book."""
    assert order.limit_price is not None
    spread = quote.ask - quote.bid
    near = quote.bid if order.side == "buy" else quote.ask
    toward_far = order.limit_price - near if order.side == "buy" else near - order.limit_price
    frac = float(toward_far / spread) if spread > 0 else 1.0
    if frac < 0:
        return None
    return LIMIT_FILL_MEAN_AT_MID_S * ((1.0 - min(frac, 1.0)) / 0.5) ** 2


def marketable(order: Order, quote: Quote) -> bool:
    if order.limit_price is None:
        return True
    if order.side == "buy":
        return order.limit_price >= quote.ask
    return order.limit_price <= quote.bid


def parts_for(order: Order, quote: Quote, partial_fill_notional: Decimal) -> int:
    notional = order.notional or order.remaining * quote.last
    ratio = float(notional / partial_fill_notional)
    return max(1, min(MAX_FILL_PARTS, math.ceil(ratio)))


def execution_price(order: Order, quote: Quote) -> Decimal:
    far = far_side(order, quote)
    if order.limit_price is not None and not marketable(order, quote):
        return order.limit_price  # a resting limit fills at its own price
    chunk = order.notional or order.remaining / order.parts_left * far
    impact = min(chunk / Decimal(10000) * IMPACT_BPS_PER_10K, MAX_IMPACT_BPS) * BPS
    tick = tick_for(far)
    if order.side == "buy":
        price = (far * (1 + impact)).quantize(tick, rounding=ROUND_CEILING)
        return min(price, order.limit_price) if order.limit_price is not None else price
    price = (far * (1 - impact)).quantize(tick, rounding=ROUND_FLOOR)
    return max(price, order.limit_price) if order.limit_price is not None else price


def execution_qty(order: Order, price: Decimal, partial_probability: float) -> Decimal:
    """This execution's quantity: all that remains, its share of a large order's parts,
    or (with `partial_probability`) a random part of it, whatever the size."""
    if order.notional is not None:
        return (order.notional / price).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
    share = 1.0 / order.parts_left
    if order.rng.random() < partial_probability:
        share *= PARTIAL_SHARE_RANGE[0] + order.rng.random() * (
            PARTIAL_SHARE_RANGE[1] - PARTIAL_SHARE_RANGE[0]
        )
    if share >= 1.0:
        return order.remaining
    whole = order.qty == order.qty.to_integral_value() if order.qty is not None else False
    part = order.remaining * Decimal(str(share))
    part = part.to_integral_value(ROUND_DOWN) if whole else part.quantize(QTY_QUANTUM)
    return min(max(part, Decimal(1) if whole else QTY_QUANTUM), order.remaining)
