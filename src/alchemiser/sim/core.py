"""The simulator's state and its admin operations, shared by the HTTP admin API and tests."""

from __future__ import annotations

import itertools
import math
import time
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from alchemiser.market_calendar import get_calendar
from alchemiser.sim.broker import Broker
from alchemiser.sim.clock import SimClock
from alchemiser.sim.config import SimConfig
from alchemiser.sim.errors import bad_request
from alchemiser.sim.faults import (
    HTTP_ACTIONS,
    STREAM_ACTIONS,
    Faults,
    HttpFault,
    StreamFault,
    TokenBucket,
)
from alchemiser.sim.market import CorporateAction, MarketModel, Quote
from alchemiser.sim.orders import AssetFlags
from alchemiser.sim.streams import StreamHub
from alchemiser.sim.timeline import Timeline
from alchemiser.sim.views import order_json

RETRYABLE_FAULTS = frozenset({429, 500, 502, 503, 504})
# Virtual time looks at the market this often (simulated seconds) while orders wait on it.
VIRTUAL_STEP_S = 1.0
# Settings the admin API may change at run time (SimConfig fields).
TUNABLE = (
    "fill_wait_scale",
    "partial_fill_notional",
    "partial_fill_probability",
    "ack_latency_s",
    "replace_latency_s",
    "cancel_latency_s",
    "auto_fill",
    "margin_multiplier",
    "pdt_protection",
)


class Simulator:
    """Clock + market + broker + streams. Every method runs on the simulator's loop."""

    def __init__(self, config: SimConfig) -> None:
        self.config = config
        self.clock = SimClock(config.now, 0.0 if config.virtual_time else config.speed)
        self.timeline = Timeline(self.clock, lambda: config.fill_wait_scale)
        self.timeline.virtual = config.virtual_time
        self.market = MarketModel(config.seed, get_calendar(), config.history_start)
        self._trade_ids = itertools.count(1)  # one sequence for every trade the sim reports
        keys = (config.api_key, config.secret_key)
        self.hub = StreamHub(self.clock, self.market, keys, self.next_trade_id)
        self.broker = Broker(config, self.clock, self.market, self.timeline, self.hub.publish)

    def next_trade_id(self) -> int:
        """The id of the next market-data trade (REST and stream alike)."""
        return next(self._trade_ids)

    # --- admin operations (each returns a JSON-able summary) -----------------------------

    def state(self) -> dict[str, Any]:
        return {
            "now": self.clock.now().isoformat(),
            "speed": self.clock.speed,
            "anchor_wall": self.clock.anchor_wall,
            "anchor_sim": self.clock.anchor_sim,
            "cash": str(self.broker.cash),
            "positions": {s: str(p.qty) for s, p in self.broker.positions.items()},
            "open_orders": len(self.broker.open_orders),
            "fill_wait_scale": self.config.fill_wait_scale,
            "partial_fill_notional": str(self.config.partial_fill_notional),
            "websockets": len(self.hub.sockets),
            "trade_listeners": len(self.hub.trade_listeners),
            "stream_auth_failures": self.hub.auth_failures,
            "stream_swallowed": self.hub.faults.swallowed,
            "virtual_time": self.timeline.virtual,
            "data_subscribers": len(self.hub.data_subscribers),
        }

    def set_clock(
        self,
        now: datetime | None = None,
        speed: float | None = None,
        advance: float | None = None,
        virtual: bool | None = None,
    ) -> dict[str, Any]:
        """Set, speed up or advance the clock. In virtual time the clock stands still
        between calls, and moving it forward fires every event that falls due, in order."""
        if virtual is not None:
            self.config.virtual_time = virtual
            self.timeline.set_virtual(virtual)
            self.clock.set(speed=0.0 if virtual else (speed if speed is not None else 1.0))
        if self.timeline.virtual:
            if now is not None:
                if now.timestamp() > self.clock.epoch():
                    self._advance_to(now.timestamp())
                else:
                    self.clock.jump_to(now.timestamp())
            if advance:
                self._advance_to(self.clock.epoch() + advance)
            self.broker.on_clock_jump()
            self.hub.push_quotes_soon()  # the data stream moves with the virtual clock only
            return self.state()
        if now is not None or speed is not None:
            self.clock.set(now, speed)
        if advance:
            self.clock.advance(advance)
        self.broker.on_clock_jump()
        return self.state()

    def _advance_to(self, target: float) -> None:
        self.timeline.advance_to(target, self.broker.on_tick, self._next_market_step)

    def _next_market_step(self, now: float) -> float:
        """When the market next needs a look: every step while live orders wait on the
        moving price, else the next open or close (queued orders, expiries, fees)."""
        opens, closes = self.market.session_bounds(self.market.session_index(now))
        if now < opens:
            return opens
        if now >= closes:
            return math.inf  # past the model's last session
        if self.broker.waits_on_market():
            return min(now + VIRTUAL_STEP_S, closes)
        return closes

    def fund(self, amount: Decimal) -> dict[str, Any]:
        self.broker.cash += amount
        return self.state()

    def set_price(
        self, symbol: str, price: Decimal | None = None, spread_bps: float | None = None
    ) -> dict[str, Any]:
        """Pin a ticker's price (None clears the pin) and/or its spread in basis points."""
        symbol = symbol.upper()
        if price is None:
            self.market.price_overrides.pop(symbol, None)
        else:
            self.market.price_overrides[symbol] = price
        if spread_bps is not None:
            self.market.spread_overrides[symbol] = spread_bps
        self.broker.on_clock_jump()
        quote = self.broker.quote(symbol)
        return {
            "symbol": symbol,
            "bid": str(quote.bid),
            "ask": str(quote.ask),
            "last": str(quote.last),
        }

    def set_quote(
        self,
        symbol: str,
        *,
        bid: Decimal | None = None,
        ask: Decimal | None = None,
        bid_size: int = 1,
        ask_size: int = 1,
        stale_seconds: float = 0.0,
    ) -> dict[str, Any]:
        """Set a quote outright, until cleared (bid and ask None): a zero side is one-sided,
        bid == ask locked, bid > ask crossed; `stale_seconds` back-dates it."""
        symbol = symbol.upper()
        if bid is None and ask is None:
            self.market.quote_overrides.pop(symbol, None)
        else:
            if bid is None or ask is None or bid < 0 or ask < 0:
                raise bad_request("bid and ask are both required, each >= 0 (0: no such side)")
            sides = [p for p in (bid, ask) if p > 0]
            last = sum(sides, Decimal(0)) / len(sides) if sides else self.broker.quote(symbol).last
            stamp = self.clock.epoch() - stale_seconds
            quote = Quote(bid, ask, bid_size, ask_size, last, stamp=stamp)
            self.market.quote_overrides[symbol] = quote
        self.broker.on_clock_jump()
        quote = self.broker.quote(symbol)
        return {"symbol": symbol, "bid": str(quote.bid), "ask": str(quote.ask)}

    def reset(self, cash: Decimal | None = None, seed: int | None = None) -> dict[str, Any]:
        """A fresh account and market. `seed` reseeds everything (prices, ids, fills)."""
        self.timeline.clear()
        if seed is not None:
            self.market.reseed(seed)
            self._trade_ids = itertools.count(1)
        else:
            self.market.price_overrides.clear()
            self.market.spread_overrides.clear()
            self.market.actions.clear()
            self.market.unknown.clear()
            self.market.frozen.clear()
            self.market.quote_overrides.clear()
        self.broker.reset(cash if cash is not None else self.config.cash, seed)
        self.broker.asset_flags.clear()
        self.hub.reset_faults()
        return self.state()

    def fill(
        self,
        order_id: str | None = None,
        client_order_id: str | None = None,
        qty: Decimal | None = None,
        price: Decimal | None = None,
    ) -> dict[str, Any]:
        """Fill an order (or part of it) now, at a given price: scripted executions."""
        if order_id:
            order = self.broker.get(order_id)
        elif client_order_id:
            order = self.broker.get_by_client_id(client_order_id)
        else:
            raise bad_request("order_id or client_order_id is required")
        return order_json(self.broker.fill_now(order, qty, price))

    def halt(self, symbol: str, halted: bool = True) -> dict[str, Any]:
        """A trading halt: resting orders stay open and do not fill, new orders are refused,
        quotes freeze where they are."""
        symbol = symbol.upper()
        if halted:
            self.market.freeze(symbol, self.clock.epoch())
            self.broker.halted.add(symbol)
        else:
            self.market.frozen.pop(symbol, None)
            self.broker.halted.discard(symbol)
            self.broker.on_clock_jump()
        return {"symbol": symbol, "halted": halted}

    def set_asset(
        self, symbol: str, fractionable: bool | None = None, tradable: bool | None = None
    ) -> dict[str, Any]:
        symbol = symbol.upper()
        current = self.broker.flags(symbol)
        self.broker.asset_flags[symbol] = AssetFlags(
            tradable=current.tradable if tradable is None else tradable,
            fractionable=current.fractionable if fractionable is None else fractionable,
        )
        return {"symbol": symbol, **vars_of(self.broker.asset_flags[symbol])}

    def set_unknown(self, symbol: str, unknown: bool = True) -> dict[str, Any]:
        """An unknown ticker has no bars, quotes or asset, like a delisted symbol."""
        symbol = symbol.upper()
        if unknown:
            self.market.unknown.add(symbol)
        else:
            self.market.unknown.discard(symbol)
        return {"symbol": symbol, "unknown": unknown}

    def corporate_action(
        self, symbol: str, day: date, split_ratio: float = 1.0, dividend: float = 0.0
    ) -> dict[str, Any]:
        """A split or cash dividend effective on `day`: adjusted history before it changes."""
        symbol = symbol.upper()
        if split_ratio <= 0 or dividend < 0:
            raise bad_request("split ratio must be > 0 and dividend >= 0")
        index = self.market.index_of_day(day)
        action = CorporateAction(index=index, split_ratio=split_ratio, dividend=dividend)
        self.market.actions.setdefault(symbol, []).append(action)
        self.broker.settlement.add_action(symbol, action)
        return {"symbol": symbol, "index": index, "split_ratio": split_ratio, "dividend": dividend}

    def set_faults(
        self,
        status: int | None = None,
        count: int | None = None,
        latency_ms: float | None = None,
        reject_orders: int | None = None,
        reject_reason: str | None = None,
        *,
        action: str = "status",
        method: str | None = None,
        path: str | None = None,
        after: bool = False,
        hang_ms: float | None = None,
        rate_limit_per_minute: int | None = None,
    ) -> dict[str, Any]:
        """HTTP faults for the next `count` matching requests (see faults.HttpFault), plus
        latency, rejected orders and Alpaca's rate limit (0 turns it off)."""
        faults = self.broker.faults
        if action not in HTTP_ACTIONS:
            raise bad_request(f"fault action must be one of {', '.join(HTTP_ACTIONS)}")
        if status is not None and status not in RETRYABLE_FAULTS:
            raise bad_request(f"fault status must be one of {sorted(RETRYABLE_FAULTS)}")
        if status is not None or action != "status":
            fault = HttpFault(action=action, status=status or 500, count=count or 1)
            fault.method, fault.path, fault.after = method, path, after
            if hang_ms is not None:
                fault.hang_s = hang_ms / 1000
            faults.http.append(fault)
        if latency_ms is not None:
            faults.latency_s = latency_ms / 1000
        if reject_orders is not None:
            faults.reject_next_orders = reject_orders
        if reject_reason is not None:
            faults.reject_reason = reject_reason
        if rate_limit_per_minute is not None:
            per_minute = int(rate_limit_per_minute)
            faults.rate_limit = TokenBucket(per_minute) if per_minute > 0 else None
        return faults.summary()

    def clear_faults(self) -> dict[str, Any]:
        self.broker.faults = Faults()
        self.hub.reset_faults()
        return self.broker.faults.summary()

    async def stream_down(self, seconds: float) -> dict[str, Any]:
        """Close the trade-update connections and refuse new ones for `seconds` (wall time);
        what happens meanwhile is lost, as Alpaca does not replay."""
        self.hub.faults.down_until = time.monotonic() + seconds
        return {"dropped": await self.hub.drop_trade_sockets(), "down_seconds": seconds}

    def stream_silent(self) -> dict[str, Any]:
        """Every open trade-update connection goes half-open: it stays up, answers no
        ping and delivers nothing (a new connection is healthy)."""
        return {"silenced": self.hub.silence()}

    def stream_fault(
        self, action: str, count: int = 1, delay_ms: float | None = None
    ) -> dict[str, Any]:
        """Drop, delay, duplicate or reorder the next `count` trade updates."""
        if action not in STREAM_ACTIONS:
            raise bad_request(f"stream fault must be one of {', '.join(STREAM_ACTIONS)}")
        if count < 1:
            raise bad_request("count must be >= 1")
        delay_s = (delay_ms or 0) / 1000
        self.hub.faults.pending = StreamFault(action=action, count=count, delay_s=delay_s)
        return {"action": action, "count": count, "delay_ms": delay_ms}

    async def drop_websockets(self) -> dict[str, Any]:
        return {"dropped": await self.hub.drop_all()}

    def configure(self, **knobs: Any) -> dict[str, Any]:
        """Change any of TUNABLE (None leaves a knob as it is)."""
        for name, value in knobs.items():
            if name not in TUNABLE:
                raise bad_request(f"unknown setting {name!r}; one of {', '.join(TUNABLE)}")
            if value is not None:
                setattr(self.config, name, _coerce(value, getattr(self.config, name), name))
        return {**self.state(), **{name: getattr(self.config, name) for name in TUNABLE}}


def _coerce(value: Any, current: Any, name: str) -> Any:
    """`value` as the type of the setting's current value."""
    try:
        if isinstance(current, bool):
            if not isinstance(value, bool):
                raise ValueError
            return value
        if isinstance(current, Decimal):
            return Decimal(str(value))
        return type(current)(value)
    except (ValueError, ArithmeticError):
        raise bad_request(f"invalid value for {name}: {value!r}") from None


def vars_of(obj: object) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in obj.__slots__}  # type: ignore[attr-defined]
