"""Walk-the-book: one task per net order, from a limit inside the spread to the market.

Step k places (or moves) a DAY limit at `step_fractions[k]` of the spread, waits
`step_interval_seconds` or until filled, and re-quotes; after the last fraction a
market order takes what remains. Alpaca's replaces and cancels are asynchronous:
the old order can still fill while `pending_replace`/`pending_cancel`, so every move
waits for the broker's confirmation before anything new is sent, and every order
states the remaining quantity explicitly (a replace without `qty` keeps the
original quantity, even after a partial fill). A fractional remainder cannot be
replaced, so it is cancelled and sent again.

The walk never books: each order is recorded by the ledger before it is sent,
and every snapshot the walk sees (stream or REST) goes to `ledger.progress`, which
books by cumulative order progress and is idempotent. The walk counts what is
filled from the same snapshots, so a fill that races a move shrinks what the next
step asks for.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Literal, Protocol

from alchemiser.execution.broker import Broker, OrderRequest, OrderSnapshot
from alchemiser.execution.errors import (
    BrokerError,
    OrderNotChangeable,
    OrderRejected,
    TradingHalted,
)
from alchemiser.execution.pricing import Quote, Side, limit_price, usable_quote
from alchemiser.execution.stream import TradeEvent
from alchemiser.logging import get_logger

log = get_logger(__name__)

# Where a replace or cancel has been answered for good.
SETTLED = frozenset({"filled", "canceled", "expired", "replaced", "rejected", "done_for_day"})
REFUSED = frozenset({"rejected", "suspended"})
# The working order is over: nothing more will fill unless the walk sends again.
ENDED = frozenset({"expired", "done_for_day", "canceled"}) | REFUSED
MOVE_REJECTED = frozenset({"order_replace_rejected", "order_cancel_rejected"})
UNACKNOWLEDGED = frozenset({"pending_new", "accepted"})  # not yet at the exchange
REPLACEABLE = frozenset({"new", "partially_filled"})
CONFIRM_POLLS = 5  # REST reads of an unconfirmed move before the walk gives up on it
NOT_SENT = "not sent: the quantity changed (a fill) while the order was being recorded"

Outcome = Literal["filled", "rejected", "halted", "expired", "unconfirmed", "error"]


@dataclass(frozen=True, slots=True)
class WalkPlan:
    """What one walk must trade. `price_cap`: a buy's limit never goes above it."""

    symbol: str
    side: Side
    qty: Decimal
    fractionable: bool
    price_cap: Decimal | None = None


@dataclass(frozen=True, slots=True)
class WalkConfig:
    step_fractions: tuple[Decimal, ...]
    step_interval_seconds: float
    confirm_timeout_seconds: float
    quote_max_age: timedelta
    # Broker time after which nothing is sent (a little before the close), if known.
    deadline: datetime | None = None
    # An unusable quote is priced as the last trade ± this fraction (0: wait instead).
    last_trade_band: Decimal = Decimal(0)


@dataclass(frozen=True, slots=True)
class StepOrder:
    """An order a walk is about to send (`replaces`: the client order id it replaces).

    `quote`: what it was priced from; `at`: broker time when it was decided.
    """

    symbol: str
    side: Side
    qty: Decimal
    limit_price: Decimal | None
    replaces: str | None = None
    quote: Quote | None = None
    at: datetime | None = None


class WalkLedger(Protocol):
    """What a walk tells the ledger: each order before it is sent, and all it learns."""

    async def record(self, order: StepOrder) -> str:
        """Record the order (pending_new, committed) and return its client order id."""

    async def progress(self, order: OrderSnapshot) -> None:
        """Book an order's cumulative progress and status (idempotent)."""

    async def rejected(self, client_order_id: str, reason: str) -> None:
        """The broker refused the order when it was sent."""


@dataclass(frozen=True, slots=True)
class WalkResult:
    outcome: Outcome
    filled: Decimal
    orders: tuple[str, ...]
    reason: str | None = None


@dataclass(slots=True)
class _Seen:
    """The newest snapshot of each of the walk's orders, and move rejections."""

    orders: dict[str, OrderSnapshot] = field(default_factory=dict)
    move_rejected: set[str] = field(default_factory=set)


class Walk:
    def __init__(
        self,
        plan: WalkPlan,
        broker: Broker,
        *,
        quote: Callable[[str], Awaitable[Quote]],
        ledger: WalkLedger,
        config: WalkConfig,
        now: Callable[[], datetime],
        router: WalkRouter | None = None,
    ) -> None:
        self.plan = plan
        self.broker = broker
        self._quote = quote
        self.ledger = ledger
        self.config = config
        self._now = now
        self._router = router
        self._seen = _Seen()
        self._changed = asyncio.Event()
        self.live: str | None = None  # the order now working, by broker id
        self._priced_from: Quote | None = None  # the last usable quote
        self.client_order_ids: set[str] = set()

    # --- what the walk knows -----------------------------------------------------------

    @property
    def filled(self) -> Decimal:
        return sum((o.filled_qty for o in self._seen.orders.values()), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return max(self.plan.qty - self.filled, Decimal(0))

    def _live_order(self) -> OrderSnapshot | None:
        return self._seen.orders.get(self.live) if self.live else None

    async def deliver(self, event: TradeEvent) -> None:
        """A trade update for one of this walk's orders (routed by client order id)."""
        if event.event in MOVE_REJECTED:
            self._seen.move_rejected.add(event.order.id)
        self._note(event.order)  # the stream's handler has booked it

    async def _observe(self, order: OrderSnapshot) -> None:
        """A snapshot from one of the walk's own REST calls: booked, then noted."""
        await self.ledger.progress(order)
        self._note(order)

    def _note(self, order: OrderSnapshot) -> None:
        known = self._seen.orders.get(order.id)
        # Statuses only move forward: never let an older snapshot undo a newer one.
        if known is None or order.filled_qty > known.filled_qty or _newer(order, known):
            self._seen.orders[order.id] = order
        self._changed.set()

    # --- the walk ----------------------------------------------------------------------

    async def run(self) -> WalkResult:
        """Walk the order; whatever ends the walk, none of its orders is left working."""
        outcome, reason = await self._walk()
        if outcome != "filled":
            await self._cancel_all()
            if self.remaining <= 0:  # a fill raced the end of the walk
                outcome, reason = "filled", None
        return self._result(outcome, reason)

    async def _walk(self) -> tuple[Outcome, str | None]:
        try:
            for fraction in self.config.step_fractions:
                if self.remaining <= 0 or self._ended():
                    break
                price = await self._step_price(fraction)
                if price is not None:
                    await self._place(price)
                await self._wait(self.config.step_interval_seconds)
            if self.remaining > 0 and not self._ended():
                if self._priced_from is None:
                    return "expired", "no usable quote at any step: not sent at the market blind"
                await self._place(self._final_price())
                await self._wait(None)
        except OrderRejected as exc:
            log.warning("walk rejected", symbol=self.plan.symbol, reason=exc.reason)
            return ("halted" if isinstance(exc, TradingHalted) else "rejected"), str(exc)
        except _PastDeadline as exc:
            return "expired", str(exc)
        except _Unconfirmed as exc:
            return "unconfirmed", str(exc)
        except BrokerError as exc:
            log.error("walk failed", symbol=self.plan.symbol, reason=str(exc))
            return "error", str(exc)
        except Exception as exc:  # a bug here must not orphan the order or the other walks
            log.exception("walk crashed", symbol=self.plan.symbol)
            return "error", f"{type(exc).__name__}: {exc}"
        if self.remaining <= 0:
            return "filled", None
        live = self._live_order()
        if live is not None and live.status in REFUSED:
            return "rejected", f"the broker {live.status} the order"
        return "expired", "the order ended before it filled (the close)"

    async def _cancel_all(self) -> None:
        """Cancel every order of this walk that may still work (best effort, each logged)."""
        for client_order_id in sorted(self.client_order_ids):
            try:
                known = self._by_client_id(client_order_id)
                order = known or await self.broker.find_order(client_order_id)
                if order is None or not order.is_open:
                    continue
                with contextlib.suppress(OrderNotChangeable):
                    await self.broker.cancel(order.id)
                self._seen.orders.setdefault(order.id, order)
                await self._confirm(order.id)
            except Exception:
                log.exception(
                    "could not cancel a walk's order; the next run settles it",
                    client_order_id=client_order_id,
                )

    def _by_client_id(self, client_order_id: str) -> OrderSnapshot | None:
        return next(
            (o for o in self._seen.orders.values() if o.client_order_id == client_order_id), None
        )

    def _result(self, outcome: Outcome, reason: str | None = None) -> WalkResult:
        return WalkResult(outcome, self.filled, tuple(self._seen.orders), reason)

    def _ended(self) -> bool:
        """The working order was ended by the broker (expired at the close, cancelled, refused)."""
        live = self._live_order()
        return live is not None and live.status in ENDED

    async def _step_price(self, fraction: Decimal) -> Decimal | None:
        try:
            quote = await self._quote(self.plan.symbol)
        except Exception as exc:  # no quote this step: wait for the next one
            log.warning("walk has no quote", symbol=self.plan.symbol, reason=str(exc))
            return None
        config = self.config
        usable, problem = usable_quote(
            quote, self._now(), config.quote_max_age, config.last_trade_band
        )
        if usable is None:
            log.warning("walk waits for a usable quote", symbol=self.plan.symbol, problem=problem)
            return None
        if problem is not None:
            log.info("walk prices from the last trade", symbol=self.plan.symbol, problem=problem)
        self._priced_from = usable
        return self._capped(limit_price(self.plan.side, usable, fraction))

    def _final_price(self) -> Decimal | None:
        """Market, except for a capped buy: a marketable limit at its cap."""
        return self.plan.price_cap if self.plan.side == "buy" else None

    def _capped(self, price: Decimal) -> Decimal:
        cap = self.plan.price_cap
        return min(price, cap) if cap is not None and self.plan.side == "buy" else price

    # --- placing and moving ------------------------------------------------------------

    async def _place(self, price: Decimal | None) -> None:
        """Work the remaining quantity at `price` (None: market), moving the live order."""
        deadline = self.config.deadline
        if deadline is not None and self._now() >= deadline:
            raise _PastDeadline(f"nothing sent after {deadline:%H:%M} (the close is near)")
        live = self._live_order()
        if live is not None and live.is_open:
            live = await self._acknowledged(live.id)
        if self.remaining <= 0:
            return  # filled while waiting for the acknowledgement
        if live is not None and live.is_open:
            if self._can_replace(live, price):
                assert price is not None
                await self._replace(live, price)
                return
            await self._cancel_live()
        if self.remaining > 0:
            await self._submit(price, replaces=live.client_order_id if live else None)

    def _can_replace(self, live: OrderSnapshot, price: Decimal | None) -> bool:
        """Alpaca replaces only a live whole-share limit order (not pending, not fractional)."""
        whole = self.remaining == self.remaining.to_integral_value() and (
            live.qty is not None and live.qty == live.qty.to_integral_value()
        )
        replaceable = live.status in REPLACEABLE and live.limit_price is not None
        return price is not None and replaceable and whole

    async def _submit(self, price: Decimal | None, replaces: str | None = None) -> None:
        step = self._step(self.remaining, price, replaces)
        client_order_id = await self._record(step)
        if self.remaining != step.qty:  # a fill arrived while recording: the next step re-asks
            await self.ledger.rejected(client_order_id, NOT_SENT)
            return
        request = OrderRequest(client_order_id, step.symbol, step.side, step.qty, price)
        try:
            sent = await self.broker.submit(request)
        except OrderRejected as exc:
            await self.ledger.rejected(client_order_id, exc.reason)
            raise
        self.live = sent.id
        log.info("order sent", symbol=step.symbol, qty=str(step.qty), limit=str(price))
        await self._observe(sent)

    async def _replace(self, live: OrderSnapshot, price: Decimal) -> None:
        if live.limit_price == price and live.qty == self.remaining + live.filled_qty:
            return  # nothing to change (Alpaca answers 403 "not changed")
        qty = self.remaining
        step = self._step(qty, price, live.client_order_id)
        client_order_id = await self._record(step)
        if self.remaining != qty:  # a fill arrived while recording: the next step re-asks
            await self.ledger.rejected(client_order_id, NOT_SENT)
            return
        try:
            new = await self.broker.replace(live.id, qty, price, client_order_id)
        except OrderNotChangeable as exc:
            await self.ledger.rejected(client_order_id, exc.reason)
            await self._refresh(live.id)  # filled or pending meanwhile: the next step sees it
            return
        await self._observe(new)
        log.info("order replaced", symbol=step.symbol, qty=str(qty), limit=str(price))
        await self._confirm(live.id)
        old = self._seen.orders[live.id]
        if old.status == "replaced":
            self.live = new.id
        await self._shrink_if_overfilling()

    async def _cancel_live(self) -> None:
        live = self._live_order()
        if live is None or not live.is_open:
            return
        with contextlib.suppress(OrderNotChangeable):  # filled meanwhile: confirm reads it
            await self.broker.cancel(live.id)
        await self._confirm(live.id)

    async def _shrink_if_overfilling(self) -> None:
        """A fill that raced the replace leaves the new order asking for too much: fix it."""
        live = self._live_order()
        if live is None or not live.is_open or live.qty is None:
            return
        if live.qty - live.filled_qty > self.remaining:
            log.info("walk shrinks a raced replace", symbol=self.plan.symbol)
            await self._cancel_live()
            if self.remaining > 0:
                await self._submit(live.limit_price, replaces=live.client_order_id)

    def _step(self, qty: Decimal, price: Decimal | None, replaces: str | None) -> StepOrder:
        plan = self.plan
        return StepOrder(
            plan.symbol, plan.side, qty, price, replaces, self._priced_from, self._now()
        )

    async def _record(self, order: StepOrder) -> str:
        client_order_id = await self.ledger.record(order)
        self.client_order_ids.add(client_order_id)
        if self._router is not None:
            self._router.claim(client_order_id, self)  # before sending: no event is lost
        return client_order_id

    # --- waiting -----------------------------------------------------------------------

    async def _confirm(self, order_id: str) -> None:
        """Wait until a move of `order_id` is settled: replaced, cancelled, filled or refused."""

        def settled() -> bool:
            order = self._seen.orders[order_id]
            return order.status in SETTLED or order_id in self._seen.move_rejected

        for _ in range(CONFIRM_POLLS):
            if await self._until(settled, self.config.confirm_timeout_seconds):
                return
            await self._refresh(order_id)  # the stream may be down: ask over REST
            if settled():
                return
        raise _Unconfirmed(f"order {order_id} never confirmed its replace or cancel")

    async def _acknowledged(self, order_id: str) -> OrderSnapshot:
        """The order once the broker has it live (`new`), or as it is after a few polls."""

        def acknowledged() -> bool:
            return self._seen.orders[order_id].status not in UNACKNOWLEDGED

        for _ in range(CONFIRM_POLLS):
            if await self._until(acknowledged, self.config.confirm_timeout_seconds):
                break
            await self._refresh(order_id)
            if acknowledged():
                break
        return self._seen.orders[order_id]

    async def _wait(self, seconds: float | None) -> None:
        """Until filled, the live order ends, or `seconds` pass (None: no limit).

        The live order is read over REST every `confirm_timeout_seconds` meanwhile, so
        a stream that is down or silent cannot leave the walk waiting on a fill.
        """

        def done() -> bool:
            return self.remaining <= 0 or self._ended()

        loop = asyncio.get_running_loop()
        deadline = None if seconds is None else loop.time() + seconds
        while not done():
            left = None if deadline is None else deadline - loop.time()
            if left is not None and left <= 0:
                return
            poll = self.config.confirm_timeout_seconds
            if await self._until(done, poll if left is None else min(left, poll)):
                return
            if self.live is not None and (left is None or left > poll):
                await self._refresh(self.live)

    async def _until(self, predicate: Callable[[], bool], seconds: float | None) -> bool:
        async def wait() -> None:
            while not predicate():
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _refresh(self, order_id: str) -> None:
        await self._observe(await self.broker.order(order_id))


class WalkRouter:
    """Routes each trade update to the walk that sent the order, by client order id."""

    def __init__(self) -> None:
        self._walks: dict[str, Walk] = {}

    def claim(self, client_order_id: str, walk: Walk) -> None:
        self._walks[client_order_id] = walk

    async def on_event(self, event: TradeEvent) -> bool:
        walk = self._walks.get(event.order.client_order_id)
        if walk is None:
            return False
        await walk.deliver(event)
        return True


class _PastDeadline(Exception):
    """The session is about to close: a DAY order sent now would fill tomorrow."""


class _Unconfirmed(Exception):
    """A replace or cancel the broker never settled, even when asked over REST."""


STATUS_ORDER = {"pending_new": 0, "accepted": 0, "new": 1, "partially_filled": 2}


def _newer(order: OrderSnapshot, known: OrderSnapshot) -> bool:
    """Whether `order` is a later state of `known` (terminal states are final)."""
    if known.status in SETTLED:
        return False
    if order.status in SETTLED:
        return True
    return STATUS_ORDER.get(order.status, 1) >= STATUS_ORDER.get(known.status, 1)
