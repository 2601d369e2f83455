"""Alpaca JSON for the simulator's objects (orders, positions, account, assets, clock)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from alchemiser.sim.broker import Broker
from alchemiser.sim.market import tick_for
from alchemiser.sim.orders import Order, Position
from alchemiser.sim.wire import asset_id, dec_str, iso_et, iso_z

MONEY = Decimal("0.01")
PRICE = Decimal("0.000001")
RATIO = Decimal("1e-10")


def order_json(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "client_order_id": order.client_order_id,
        "created_at": iso_z(order.created_at),
        "updated_at": iso_z(order.updated_at),
        "submitted_at": iso_z(order.submitted_at),
        "filled_at": iso_z(order.filled_at),
        "expired_at": iso_z(order.expired_at),
        "canceled_at": iso_z(order.canceled_at),
        "failed_at": iso_z(order.failed_at),
        "replaced_at": iso_z(order.replaced_at),
        "replaced_by": order.replaced_by,
        "replaces": order.replaces,
        "asset_id": asset_id(order.symbol),
        "symbol": order.symbol,
        "asset_class": "us_equity",
        "notional": dec_str(order.notional),
        "qty": dec_str(order.qty),
        "filled_qty": dec_str(order.filled_qty),
        "filled_avg_price": dec_str(order.filled_avg_price),
        "order_class": "",
        "order_type": order.type,
        "type": order.type,
        "side": order.side,
        "position_intent": "buy_to_open" if order.side == "buy" else "sell_to_close",
        "time_in_force": order.time_in_force,
        "limit_price": dec_str(order.limit_price),
        "stop_price": None,
        "status": order.status,
        "extended_hours": order.extended_hours,
        "legs": None,
        "trail_percent": None,
        "trail_price": None,
        "hwm": None,
        "subtag": None,
        "source": None,
        "expires_at": iso_z(order.expires_at),
    }


def position_json(broker: Broker, p: Position) -> dict[str, Any]:
    quote = broker.quote(p.symbol)
    price = quote.last
    prev_close = broker.previous_close(p.symbol)
    market_value = p.qty * price
    unrealized = market_value - p.cost_basis
    intraday = p.qty * (price - prev_close)
    return {
        "asset_id": asset_id(p.symbol),
        "symbol": p.symbol,
        "exchange": broker.exchange(p.symbol),
        "asset_class": "us_equity",
        "asset_marginable": True,
        "avg_entry_price": dec_str(p.avg_entry_price.quantize(PRICE)),
        "qty": dec_str(p.qty),
        "qty_available": dec_str(broker.qty_available(p.symbol)),
        "side": "long",
        "market_value": dec_str(market_value.quantize(MONEY)),
        "cost_basis": dec_str(p.cost_basis.quantize(MONEY)),
        "unrealized_pl": dec_str(unrealized.quantize(MONEY)),
        "unrealized_plpc": dec_str((unrealized / p.cost_basis).quantize(RATIO))
        if p.cost_basis
        else "0",
        "unrealized_intraday_pl": dec_str(intraday.quantize(MONEY)),
        "unrealized_intraday_plpc": dec_str(((price - prev_close) / prev_close).quantize(RATIO)),
        "current_price": dec_str(price),
        "lastday_price": dec_str(prev_close),
        "change_today": dec_str(((price - prev_close) / prev_close).quantize(RATIO)),
    }


def account_json(broker: Broker, created: datetime) -> dict[str, Any]:
    long_value = broker.market_value()
    equity = broker.cash + long_value
    last_equity = broker.cash + broker.previous_market_value()
    power = broker.buying_power()
    return {
        "id": broker.account_id,
        "account_number": broker.account_number,
        "status": "ACTIVE",
        "crypto_status": "INACTIVE",
        "currency": "USD",
        "cash": dec_str(broker.cash),
        "buying_power": dec_str(power.quantize(MONEY)),
        "regt_buying_power": dec_str(power.quantize(MONEY)),
        "daytrading_buying_power": "0",
        "non_marginable_buying_power": dec_str(broker.cash_buying_power().quantize(MONEY)),
        "effective_buying_power": dec_str(power.quantize(MONEY)),
        "accrued_fees": "0",
        "pending_transfer_in": "0",
        "portfolio_value": dec_str(equity.quantize(MONEY)),
        "equity": dec_str(equity.quantize(MONEY)),
        "last_equity": dec_str(last_equity.quantize(MONEY)),
        "long_market_value": dec_str(long_value.quantize(MONEY)),
        "short_market_value": "0",
        "initial_margin": "0",
        "maintenance_margin": "0",
        "last_maintenance_margin": "0",
        "sma": "0",
        "multiplier": dec_str(broker.config.margin_multiplier),
        "pattern_day_trader": False,
        "trading_blocked": False,
        "transfers_blocked": False,
        "account_blocked": False,
        "trade_suspended_by_user": False,
        "shorting_enabled": False,
        "daytrade_count": broker.day_trade_count(),
        "created_at": created.isoformat(),
        "options_trading_level": 0,
    }


def asset_json(broker: Broker, symbol: str) -> dict[str, Any]:
    flags = broker.flags(symbol)
    return {
        "id": asset_id(symbol),
        "class": "us_equity",
        "exchange": broker.exchange(symbol),
        "symbol": symbol,
        "name": f"{symbol} (simulated)",
        "status": "active",
        "tradable": flags.tradable,
        "marginable": True,
        "shortable": False,
        "easy_to_borrow": False,
        "fractionable": flags.fractionable,
        "min_order_size": "1" if not flags.fractionable else "0.000000001",
        "min_trade_increment": "1" if not flags.fractionable else "0.000000001",
        "price_increment": str(tick_for(broker.quote(symbol).last)),  # 0.0001 below $1
        "maintenance_margin_requirement": 30,
        "attributes": ["fractional_eh_enabled"] if flags.fractionable else [],
    }


def clock_json(broker: Broker) -> dict[str, Any]:
    now = broker.clock.now()
    cal = broker.market.calendar
    return {
        "timestamp": iso_et(now),
        "is_open": cal.is_open(now),
        "next_open": iso_et(cal.next_open(now)),
        "next_close": iso_et(cal.next_close(now)),
    }
