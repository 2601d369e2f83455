"""The account model and order engine: cash, positions, orders and their lifecycle.

All state lives on the simulator's event loop; nothing here is thread-safe and
nothing needs to be. Acknowledgements, fills and replace/cancel resolutions are
timeline events (real or virtual time); a periodic tick (`on_tick`) handles the
clock: queued orders go live at the open, DAY orders expire at the close, resting
limits fill when the moving quote crosses them, and the settlement posts the day's
fees and corporate actions.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Callable
from decimal import ROUND_DOWN, Decimal
from typing import Any

from alchemiser.sim.activities import Activities
from alchemiser.sim.clock import SimClock
from alchemiser.sim.config import SimConfig
from alchemiser.sim.errors import (
    CODE_BAD_REQUEST,
    CODE_PDT,
    CODE_UNPROCESSABLE,
    SimError,
    bad_request,
    forbidden,
    not_found,
)
from alchemiser.sim.faults import Faults
from alchemiser.sim.hashing import stable_hash, unit_interval
from alchemiser.sim.ids import IdSource
from alchemiser.sim.market import (
    CENT,
    MarketModel,
    Quote,
    tick_for,
)
from alchemiser.sim.orders import (
    OPEN_STATUSES,
    PENDING_STATUSES,
    QTY_QUANTUM,
    AssetFlags,
    Order,
    Position,
    execution_price,
    execution_qty,
    far_side,
    is_whole,
    limit_wait_mean,
    marketable,
    parts_for,
)
from alchemiser.sim.settlement import Settlement
from alchemiser.sim.timeline import Timeline
from alchemiser.sim.wire import dec_str, parse_decimal

MAX_CLIENT_ORDER_ID = 128
PDT_MIN_EQUITY = Decimal(25000)
PDT_MAX_DAY_TRADES = 3  # the 4th within the window is refused
PDT_WINDOW_SESSIONS = 5
AVG_PRICE_QUANTUM = Decimal("0.000001")
# Buying power held back for a market buy, over the ask, against the price moving.
MARKET_BUY_BUFFER = Decimal("1.03")
# Simulated seconds between the parts of an order that fills in pieces.
PARTIAL_FILL_GAP_S = 2.0
FRACTIONABLE_SHARE = 0.85  # share of tickers that are fractionable unless set by admin
SYMBOL_PATTERN = re.compile(r"^[A-Z][A-Z0-9.]{0,9}$")
EXCHANGES = ("NASDAQ", "NYSE", "ARCA")

Publisher = Callable[[str, "Order", dict[str, Any]], None]


class Broker:
    """One paper account: the REST handlers call it; it publishes trade updates."""

    def __init__(
        self,
        config: SimConfig,
        clock: SimClock,
        market: MarketModel,
        timeline: Timeline,
        publish: Publisher,
    ) -> None:
        self.config = config
        self.clock = clock
        self.market = market
        self.timeline = timeline
        self.publish = publish
        high, low = stable_hash(config.seed, "account"), stable_hash(config.seed, "account", 2)
        self.account_id = str(uuid.UUID(int=(high << 64) | low))
        self.account_number = f"PA{stable_hash(config.seed, 'number') % 10**10:010d}"
        self.faults = Faults()
        self.asset_flags: dict[str, AssetFlags] = {}
        self.generation = -1
        self.reset(config.cash, config.seed)

    def reset(self, cash: Decimal, seed: int | None = None) -> None:
        """A fresh account. With a seed, everything restarts from it (the same requests then
        give the same ids); without one, ids continue in a new generation, never reused."""
        self.timeline.clear()
        self.cash = cash
        if seed is not None:
            self.config.seed = seed
        self.generation = 0 if seed is not None else self.generation + 1
        self.ids = IdSource(self.config.seed, self.generation)
        self.activities = Activities(self.ids)
        self.settlement = Settlement(self)
        self.halted: set[str] = set()  # symbols in a trading halt
        # Pattern day trading: (session, symbol) bought, and the sessions of day trades.
        self.day_buys: set[tuple[int, str]] = set()
        self.day_trades: list[int] = []
        self.day_trade_orders: set[str] = set()
        self.positions: dict[str, Position] = {}
        self.orders: dict[str, Order] = {}  # every order since the reset, never pruned
        # The open ones, in submission order: what every tick and check loops over.
        self.open_orders: dict[str, Order] = {}
        self.by_client_id: dict[str, Order] = {}
        self.faults = Faults()

    # --- assets ----------------------------------------------------------------------

    def is_known(self, symbol: str) -> bool:
        """A well-formed ticker that the admin has not marked unknown (upper case)."""
        return bool(SYMBOL_PATTERN.match(symbol)) and symbol not in self.market.unknown

    def check_symbol(self, symbol: str) -> str:
        symbol = symbol.upper()
        if not self.is_known(symbol):
            raise not_found(f"asset not found for {symbol}")
        return symbol

    def flags(self, symbol: str) -> AssetFlags:
        flags = self.asset_flags.get(symbol)
        if flags is None:
            fractionable = unit_interval(self.config.seed, symbol, "frac") < FRACTIONABLE_SHARE
            flags = AssetFlags(tradable=True, fractionable=fractionable)
        return flags

    def exchange(self, symbol: str) -> str:
        return EXCHANGES[stable_hash(symbol, "exchange") % len(EXCHANGES)]

    # --- account ---------------------------------------------------------------------

    def quote(self, symbol: str) -> Quote:
        return self.market.quote(symbol, self.clock.epoch())

    def reserved_for_buys(self, exclude: Order | None = None) -> Decimal:
        total = Decimal(0)
        for o in self.open_orders.values():
            if o.side == "buy" and o is not exclude:
                total += self._buy_cost(o)
        return total

    def _buy_cost(self, order: Order) -> Decimal:
        if order.notional is not None:
            return order.notional - (order.filled_qty * (order.filled_avg_price or 0))
        if order.limit_price is not None:
            return order.remaining * order.limit_price
        return order.remaining * self.quote(order.symbol).ask * MARKET_BUY_BUFFER

    def buying_power(self, exclude: Order | None = None) -> Decimal:
        """Reg-T style: multiplier x cash + (multiplier - 1) x long value, less open buys.
        A paper account is a margin account (x2): more than the cash."""
        m = self.config.margin_multiplier
        power = m * self.cash + (m - 1) * self.market_value()
        return max(power - self.reserved_for_buys(exclude), Decimal(0))

    def cash_buying_power(self) -> Decimal:
        return max(self.cash - self.reserved_for_buys(), Decimal(0))

    def day_trade_count(self) -> int:
        """Day trades in the last PDT_WINDOW_SESSIONS sessions, today included."""
        today = self.market.session_index(self.clock.epoch())
        return sum(1 for index in self.day_trades if index > today - PDT_WINDOW_SESSIONS)

    def qty_available(self, symbol: str, exclude: Order | None = None) -> Decimal:
        held = self.positions.get(symbol)
        qty = held.qty if held else Decimal(0)
        for o in self.open_orders.values():
            if o.side == "sell" and o.symbol == symbol and o is not exclude:
                qty -= o.remaining if o.qty is not None else Decimal(0)
        return qty

    def previous_close(self, symbol: str) -> Decimal:
        """Close of the last completed session before the current one."""
        last = self.market.session_index(self.clock.epoch()) - 1
        return Decimal(str(self.market.raw_price(symbol, "close", max(last, 0))))

    def previous_market_value(self) -> Decimal:
        return sum(
            (p.qty * self.previous_close(p.symbol) for p in self.positions.values()), Decimal(0)
        )

    def market_value(self) -> Decimal:
        return sum((p.qty * self.quote(p.symbol).last for p in self.positions.values()), Decimal(0))

    # --- orders: submit ----------------------------------------------------------------

    def submit(self, body: dict[str, Any]) -> Order:
        """Answered `pending_new` in a session (then `new` on the stream), else `accepted`."""
        order = self._build_order(body)
        self._validate(order)
        self._store(order)
        if self.faults.reject_next_orders > 0:
            self.faults.reject_next_orders -= 1
            self.timeline.after(0.0, self._reject, order)
        else:
            self._admit(order)
        return order

    def _build_order(self, body: dict[str, Any]) -> Order:
        symbol = str(body.get("symbol") or "").upper()
        if not self.is_known(symbol):  # an order for it is a 400, not check_symbol's 404
            raise bad_request(f'asset "{symbol}" not found')
        side = str(body.get("side") or "")
        kind = str(body.get("type") or "")
        tif = str(body.get("time_in_force") or "")
        if side not in ("buy", "sell"):
            raise bad_request("side must be buy or sell")
        if kind not in ("market", "limit"):
            raise bad_request(f"order type {kind!r} is not supported by the simulator")
        if tif not in ("day", "gtc"):
            raise bad_request(f"time_in_force {tif!r} is not supported by the simulator")
        qty = parse_decimal(body.get("qty"), "qty")
        notional = parse_decimal(body.get("notional"), "notional")
        limit = parse_decimal(body.get("limit_price"), "limit_price")
        if (qty is None) == (notional is None):
            raise SimError(400, CODE_BAD_REQUEST, "qty or notional is required, not both")
        cid = str(body.get("client_order_id") or self.ids.uuid("client_order"))
        now = self.clock.epoch()
        return Order(
            id=self.ids.uuid("order"),
            client_order_id=cid,
            symbol=symbol,
            side=side,
            type=kind,
            time_in_force=tif,
            qty=qty,
            notional=notional,
            limit_price=limit,
            extended_hours=bool(body.get("extended_hours") or False),
            created_at=now,
            updated_at=now,
            submitted_at=now,
            rng=self._order_rng(cid),
        )

    def _order_rng(self, client_order_id: str) -> random.Random:
        """Each order's own random stream, from the seed and its client order id."""
        ids = self.ids
        return random.Random(stable_hash(ids.seed, ids.generation, "order", client_order_id))

    def _validate(self, order: Order, replacing: Order | None = None) -> None:
        if order.client_order_id in self.by_client_id:
            raise SimError(422, CODE_BAD_REQUEST, "client_order_id must be unique")
        if len(order.client_order_id) > MAX_CLIENT_ORDER_ID:
            raise bad_request(
                f"client_order_id must be no more than {MAX_CLIENT_ORDER_ID} characters"
            )
        if order.symbol in self.halted:
            raise SimError(422, CODE_UNPROCESSABLE, f"trading is halted for {order.symbol}")
        flags = self.flags(order.symbol)
        if not flags.tradable:
            raise SimError(422, CODE_UNPROCESSABLE, f"asset {order.symbol} is not tradable")
        self._validate_quantity(order, flags)
        self._validate_price(order)
        if order.extended_hours and (order.type != "limit" or order.time_in_force != "day"):
            raise bad_request("extended hours order must be DAY limit orders")
        self._check_wash_trade(order, replacing)
        self._check_pattern_day_trading(order)
        if order.side == "buy":
            self._check_buying_power(order, replacing)
        else:
            self._check_qty_available(order, replacing)

    def _validate_quantity(self, order: Order, flags: AssetFlags) -> None:
        amount = order.qty if order.qty is not None else order.notional
        assert amount is not None
        if amount <= 0:
            raise bad_request("qty must be > 0")
        if amount != amount.quantize(QTY_QUANTUM, rounding=ROUND_DOWN):
            raise bad_request("qty must have at most 9 decimal places")
        fractional = order.qty is None or order.qty != order.qty.to_integral_value()
        if fractional:
            if not flags.fractionable:
                raise SimError(422, CODE_UNPROCESSABLE, f"asset {order.symbol} is not fractionable")
            if order.time_in_force != "day":
                raise bad_request("fractional orders must be DAY orders")

    def _validate_price(self, order: Order) -> None:
        if order.type == "limit" and order.limit_price is None:
            raise bad_request("limit_price is required for limit orders")
        if order.type == "market" and order.limit_price is not None:
            raise bad_request("limit_price must not be given for market orders")
        price = order.limit_price
        if price is None:
            return
        if price <= 0:
            raise bad_request("limit_price must be > 0")
        if price != price.quantize(tick_for(price), rounding=ROUND_DOWN):
            raise bad_request(
                f"invalid limit_price {price}. sub-penny increment does not fulfill "
                "minimum pricing criteria"
            )

    def _check_wash_trade(self, order: Order, replacing: Order | None) -> None:
        for o in self.open_orders.values():
            if o is not replacing and o.symbol == order.symbol and o.side != order.side:
                raise forbidden("potential wash trade detected. use complex orders")

    def _check_pattern_day_trading(self, order: Order) -> None:
        """Protection: under $25k equity, a 4th day trade in 5 sessions is refused."""
        if not self.config.pdt_protection or order.side != "sell":
            return
        today = self.market.session_index(self.clock.epoch())
        if (today, order.symbol) not in self.day_buys:
            return
        equity = self.cash + self.market_value()
        if equity < PDT_MIN_EQUITY and self.day_trade_count() >= PDT_MAX_DAY_TRADES:
            raise SimError(403, CODE_PDT, "trade denied due to pattern day trading protection")

    def _check_buying_power(self, order: Order, replacing: Order | None) -> None:
        cost = self._buy_cost(order)
        power = self.buying_power(exclude=replacing)
        if cost > power:
            raise forbidden(
                "insufficient buying power",
                buying_power=str(power.quantize(CENT)),
                cost_basis=str(cost.quantize(CENT)),
            )

    def _check_qty_available(self, order: Order, replacing: Order | None) -> None:
        wanted = order.remaining
        if order.notional is not None:
            wanted = (order.notional / self.quote(order.symbol).bid).quantize(QTY_QUANTUM)
        available = self.qty_available(order.symbol, exclude=replacing)
        if wanted > available:
            raise forbidden(
                f"insufficient qty available for order (requested: {dec_str(wanted)}, "
                f"available: {dec_str(available)})"
            )

    def _store(self, order: Order) -> None:
        self.orders[order.id] = order
        self.by_client_id[order.client_order_id] = order
        if order.is_open:
            self.open_orders[order.id] = order

    def _close(self, order: Order, status: str) -> None:
        """Every change to a status that is not open goes through here."""
        assert status not in OPEN_STATUSES
        order.status = status
        self.open_orders.pop(order.id, None)

    def _reject(self, order: Order) -> None:
        self._close(order, "rejected")
        order.failed_at = order.updated_at = self.clock.epoch()
        self.publish("rejected", order, {})

    def _admit(self, order: Order) -> None:
        """A new order: acknowledged after a latency in a session, else queued (accepted)."""
        now = self.clock.epoch()
        opens, closes = self.market.session_bounds(self.market.session_index(now))
        if order.time_in_force == "day":
            order.expires_at = closes
        if opens <= now:
            order.status = "pending_new"
            order.timer = self.timeline.after(self.config.ack_latency_s, self._acknowledge, order)
        else:
            order.status = "accepted"

    def _acknowledge(self, order: Order) -> None:
        order.timer = None
        if order.status == "pending_new":
            order.status = "accepted"
            self._go_live_or_queue(order)

    def _go_live_or_queue(self, order: Order, now: float | None = None) -> None:
        """An accepted order goes live if the market is open; otherwise it waits."""
        now = self.clock.epoch() if now is None else now
        opens, _ = self.market.session_bounds(self.market.session_index(now))
        if opens <= now:
            self._go_live(order)

    def _go_live(self, order: Order) -> None:
        order.status = "new"
        order.updated_at = self.clock.epoch()
        self.publish("new", order, {})
        self._schedule_fill(order)

    # --- orders: fills -----------------------------------------------------------------

    def _schedule_fill(self, order: Order, quote: Quote | None = None) -> None:
        """Arrange the next execution of a live order, if it can fill at all."""
        self._cancel_timer(order)
        if not self.config.auto_fill or order.symbol in self.halted:
            return
        quote = quote or self.quote(order.symbol)
        if far_side(order, quote) <= 0:
            return  # nobody on the other side (a one-sided quote): wait for one
        if order.type == "market" or marketable(order, quote):
            delay_s = 0.0
        else:
            mean = limit_wait_mean(order, quote)
            if mean is None:
                return  # behind the near side: fills only if the market moves through it
            delay_s = order.rng.expovariate(1.0 / mean) if mean > 0 else 0.0
        self._after(order, delay_s)

    def _after(self, order: Order, sim_seconds: float) -> None:
        order.timer = self.timeline.after(sim_seconds, self._fill_step, order)

    def _fill_step(self, order: Order) -> None:
        order.timer = None
        if not order.is_live or order.symbol in self.halted:
            return
        if not self.market.calendar.is_open(self.clock.now()):
            return  # a GTC order overnight: the tick reschedules it after the open
        quote = self.quote(order.symbol)
        if far_side(order, quote) <= 0:
            return  # the other side emptied: the tick waits for it to return
        if order.limit_price is not None and limit_wait_mean(order, quote) is None:
            return  # the market moved away from the limit: the tick waits for it to return
        if order.parts_left == 1 and order.filled_qty == 0:
            order.parts_left = parts_for(order, quote, self.config.partial_fill_notional)
        price = execution_price(order, quote)
        qty = execution_qty(order, price, self.config.partial_fill_probability)
        if qty <= 0:
            return
        self._execute(order, qty, price)
        if order.filled_qty < (order.qty or 0):
            order.parts_left = max(order.parts_left - 1, 1)
            self._after(order, PARTIAL_FILL_GAP_S * (0.5 + order.rng.random()))

    def _execute(self, order: Order, qty: Decimal, price: Decimal) -> None:
        now = self.clock.epoch()
        if order.notional is not None:
            order.qty = qty
        previous = order.filled_qty * (order.filled_avg_price or Decimal(0))
        order.filled_qty += qty
        average = (previous + qty * price) / order.filled_qty
        order.filled_avg_price = average.quantize(AVG_PRICE_QUANTUM).normalize()
        order.updated_at = now
        done = order.filled_qty >= (order.qty or 0)
        if done:
            self._cancel_timer(order)
            self._close(order, "filled")
            order.filled_at = now
        elif order.status not in PENDING_STATUSES:  # a pending replace or cancel stays pending
            order.status = "partially_filled"
        position_qty = self._book_fill(order.symbol, order.side, qty, price)
        self._note_day_trade(order)
        self.activities.fill(order, qty, price, now, done)
        self.publish(
            "fill" if done else "partial_fill",
            order,
            {
                "execution_id": self.ids.uuid("execution"),
                "price": str(price),
                "qty": dec_str(qty),  # plain decimals: never "1E+2"
                "position_qty": dec_str(position_qty),
            },
        )

    def _note_day_trade(self, order: Order) -> None:
        """A buy and a sell of one symbol in one session: one day trade per closing order."""
        today = self.market.session_index(self.clock.epoch())
        if order.side == "buy":
            self.day_buys.add((today, order.symbol))
        elif (today, order.symbol) in self.day_buys and order.id not in self.day_trade_orders:
            self.day_trade_orders.add(order.id)
            self.day_trades.append(today)

    def _book_fill(self, symbol: str, side: str, qty: Decimal, price: Decimal) -> Decimal:
        """Move cash and the position; returns the position's quantity afterwards."""
        held = self.positions.get(symbol)
        if side == "buy":
            self.cash -= qty * price
            if held is None:
                held = self.positions[symbol] = Position(symbol, qty, price)
            else:
                total = held.qty + qty
                held.avg_entry_price = (held.cost_basis + qty * price) / total
                held.qty = total
            return held.qty
        self.cash += qty * price
        if held is None:  # validated away at submit; kept for robustness
            return -qty
        held.qty -= qty
        if held.qty == 0:
            del self.positions[symbol]
            return Decimal(0)
        return held.qty

    # --- orders: replace and cancel ------------------------------------------------------

    def get(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("order not found")
        return order

    def get_by_client_id(self, client_order_id: str) -> Order:
        order = self.by_client_id.get(client_order_id)
        if order is None:
            raise not_found("order not found")
        return order

    def replace(self, order_id: str, body: dict[str, Any]) -> Order:
        """Alpaca's replace: the old order goes `pending_replace` (and may still fill); the
        new one, answered `pending_new`, goes live only if the old one has not filled by
        the time the replace resolves. Without `qty` the new order takes the old one's
        ORIGINAL quantity, even after a partial fill (Alpaca-API#165)."""
        old = self.get(order_id)
        if old.status not in ("new", "partially_filled"):
            raise SimError(422, CODE_UNPROCESSABLE, f"order is not replaceable ({old.status})")
        if old.notional is not None:
            raise SimError(422, CODE_UNPROCESSABLE, "notional orders cannot be replaced")
        qty = parse_decimal(body.get("qty"), "qty")
        limit = parse_decimal(body.get("limit_price"), "limit_price")
        tif = body.get("time_in_force") or old.time_in_force
        if qty is not None and not (is_whole(qty) and old.qty is not None and is_whole(old.qty)):
            raise SimError(422, CODE_UNPROCESSABLE, "fractional orders cannot change qty")
        if (
            (qty is None or qty == old.qty)
            and (limit is None or limit == old.limit_price)
            and tif == old.time_in_force
        ):
            raise forbidden("order parameters are not changed")
        new = self._replacement(old, body, qty, limit, str(tif))
        self._validate(new, replacing=old)
        old.status = old_status = "pending_replace"
        old.updated_at = new.created_at
        self._store(new)
        new.status = "pending_new"
        self.publish(old_status, old, {})
        latency = self.config.replace_latency_s
        self.timeline.after(latency, self._resolve_replace, old, new)
        return new

    def _replacement(
        self, old: Order, body: dict[str, Any], qty: Decimal | None, limit: Decimal | None, tif: str
    ) -> Order:
        now = self.clock.epoch()
        cid = str(body.get("client_order_id") or self.ids.uuid("client_order"))
        return Order(
            id=self.ids.uuid("order"),
            client_order_id=cid,
            symbol=old.symbol,
            side=old.side,
            type=old.type,
            time_in_force=tif,
            qty=qty if qty is not None else old.qty,  # the original quantity, as Alpaca does
            notional=None,
            limit_price=limit if limit is not None else old.limit_price,
            extended_hours=old.extended_hours,
            created_at=now,
            updated_at=now,
            submitted_at=now,
            replaces=old.id,
            expires_at=old.expires_at if tif == old.time_in_force else None,
            rng=self._order_rng(cid),
        )

    def _resolve_replace(self, old: Order, new: Order) -> None:
        now = self.clock.epoch()
        if old.status != "pending_replace":  # filled or expired meanwhile: the new one never lives
            if new.status == "pending_new":  # (not canceled or expired already)
                self._close(new, "rejected")
                new.failed_at = new.updated_at = now
            self.publish("order_replace_rejected", old, {})
            return
        self._cancel_timer(old)
        self._close(old, "replaced")
        old.replaced_at = old.updated_at = now
        old.replaced_by = new.id
        self.publish("replaced", old, {})
        if new.status != "pending_new":  # the client canceled the replacement meanwhile
            return
        new.status = "accepted"
        if new.time_in_force == "day" and new.expires_at is None:
            new.expires_at = self.market.session_bounds(self.market.session_index(now))[1]
        self._go_live_or_queue(new, now)

    def cancel(self, order_id: str) -> Order:
        """The order goes `pending_cancel` (and may still fill) until the cancel resolves."""
        order = self.get(order_id)
        if not order.is_open or order.status in PENDING_STATUSES:
            raise SimError(422, CODE_UNPROCESSABLE, "order is not cancelable")
        if order.status in ("accepted", "pending_new"):  # not at the exchange: gone at once
            self._cancel_now(order)
            return order
        order.status = "pending_cancel"
        order.updated_at = self.clock.epoch()
        self.publish("pending_cancel", order, {})
        self.timeline.after(self.config.cancel_latency_s, self._resolve_cancel, order)
        return order

    def _resolve_cancel(self, order: Order) -> None:
        if order.status == "pending_cancel":
            self._cancel_now(order)
        elif order.status == "filled":
            self.publish("order_cancel_rejected", order, {})

    def _cancel_now(self, order: Order) -> None:
        self._cancel_timer(order)
        self._close(order, "canceled")
        order.canceled_at = order.updated_at = self.clock.epoch()
        self.publish("canceled", order, {})

    def cancel_all(self) -> list[Order]:
        return [
            self.cancel(o.id)
            for o in list(self.open_orders.values())
            if o.status not in PENDING_STATUSES
        ]

    def fill_now(self, order: Order, qty: Decimal | None, price: Decimal | None) -> Order:
        """A scripted execution (admin): `qty` (default: what remains) at `price` (default:
        the limit, or the far side of the quote), now, whatever the market model says."""
        if not order.is_live or order.symbol in self.halted:
            raise SimError(422, CODE_UNPROCESSABLE, f"order cannot fill ({order.status})")
        qty = order.remaining if qty is None else qty
        if not 0 < qty <= order.remaining:
            raise bad_request(f"fill qty must be > 0 and <= {dec_str(order.remaining)}")
        if price is None:
            price = order.limit_price or far_side(order, self.quote(order.symbol))
        if price <= 0:
            raise bad_request("fill price must be > 0 (the quote has no such side)")
        self._execute(order, qty, price)
        return order

    def close_position(self, symbol: str, qty: Decimal | None, percentage: Decimal | None) -> Order:
        held = self.positions.get(symbol)
        if held is None:
            raise not_found("position does not exist")
        amount = held.qty
        if qty is not None:
            amount = qty
        elif percentage is not None:
            amount = (held.qty * percentage / 100).quantize(QTY_QUANTUM, rounding=ROUND_DOWN)
        # Closing a position first cancels the open orders that would block it.
        for o in list(self.open_orders.values()):
            if o.symbol == symbol:
                self._cancel_now(o)
        return self.submit(
            {
                "symbol": symbol,
                "qty": str(amount),
                "side": "sell",
                "type": "market",
                "time_in_force": "day",
            }
        )

    @staticmethod
    def _cancel_timer(order: Order) -> None:
        if order.timer is not None:
            order.timer.cancel()
            order.timer = None

    # --- clock ---------------------------------------------------------------------------

    def waits_on_market(self) -> bool:
        """Whether a live order waits for the moving price to reach it (virtual time)."""
        return self.config.auto_fill and any(
            o.is_live and o.timer is None and o.symbol not in self.halted
            for o in self.open_orders.values()
        )

    def on_tick(self) -> None:
        """Opens, closes and price moves since the last tick (the clock may have jumped)."""
        now = self.clock.epoch()
        self.settlement.apply_due_actions(now)
        quotes: dict[str, Quote] = {}  # one quote per symbol per tick
        market_open = self.market.calendar.is_open(self.clock.now())
        for order in list(self.open_orders.values()):
            if not order.is_open:  # closed by an earlier order's step in this same tick
                continue
            if order.expires_at is not None and order.expires_at <= now:
                self._expire(order, order.expires_at)
            elif order.status == "accepted":
                self._go_live_or_queue(order, now)
            elif order.is_live and order.timer is None and market_open:
                # Waiting for the market: it moved through the limit, or it (re)opened.
                quote = quotes.get(order.symbol)
                if quote is None:
                    quote = quotes[order.symbol] = self.market.quote(order.symbol, now)
                self._schedule_fill(order, quote)
        self.settlement.end_of_days(now)

    def _expire(self, order: Order, at: float) -> None:
        self._cancel_timer(order)
        self._close(order, "expired")
        order.expired_at = order.updated_at = at
        self.publish("expired", order, {})

    def on_clock_jump(self) -> None:
        """After the admin moves the clock: reschedule live orders against the new quotes."""
        self.on_tick()
        for order in self.open_orders.values():  # an order filling in parts keeps its pace
            if order.is_live and order.timer is not None and order.filled_qty == 0:
                self._schedule_fill(order)
