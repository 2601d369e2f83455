"""JSON shapes of Alpaca's objects, and the small parsing helpers the handlers share."""

from __future__ import annotations

import functools
import uuid
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim.errors import bad_request

if TYPE_CHECKING:
    from alchemiser.sim.market import Quote

ASSET_ID_CACHE = 4096
TIMESTAMP_CACHE = 65536
ASSET_NAMESPACE = uuid.UUID("6f1f3c2e-5d57-4c3b-9a55-1b0c1e0a5a11")

# Market data as IEX sends it: the exchange code of IEX, the consolidated tape C,
# a regular quote's condition, a regular trade's condition.
IEX = "V"
TAPE = "C"
QUOTE_CONDITIONS = ("R",)
TRADE_CONDITIONS = ("@",)
# Every generated trade is this many shares (bars' trade counts are volume / this).
SHARES_PER_TRADE = 100


def quote_body(quote: Quote) -> dict[str, Any]:
    """A quote's fields as both the REST API and the data stream carry them (no time)."""
    return {
        "bx": IEX,
        "bp": float(quote.bid),
        "bs": quote.bid_size,
        "ax": IEX,
        "ap": float(quote.ask),
        "as": quote.ask_size,
        "c": list(QUOTE_CONDITIONS),
        "z": TAPE,
    }


def trade_body(price: Decimal, trade_id: int) -> dict[str, Any]:
    """A trade's fields as both the REST API and the data stream carry them (no time)."""
    return {
        "i": trade_id,
        "x": IEX,
        "p": float(price),
        "s": SHARES_PER_TRADE,
        "c": list(TRADE_CONDITIONS),
        "z": TAPE,
    }


@functools.lru_cache(maxsize=ASSET_ID_CACHE)
def asset_id(symbol: str) -> str:
    """A stable asset id per symbol, like Alpaca's."""
    return str(uuid.uuid5(ASSET_NAMESPACE, symbol))


def iso_z(epoch: float | None) -> str | None:
    """RFC3339 UTC with microseconds, as the trading API stamps orders."""
    return None if epoch is None else _iso_z(epoch)


@functools.lru_cache(maxsize=TIMESTAMP_CACHE)  # an order's stamps are formatted on every read
def _iso_z(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def iso_et(moment: datetime) -> str:
    return moment.astimezone(NEW_YORK).isoformat()


def dec_str(value: Decimal | None) -> str | None:
    """Decimal as Alpaca's string, without exponent or trailing zeros."""
    if value is None:
        return None
    text = format(value.normalize(), "f")
    return text if text != "-0" else "0"


def parse_decimal(value: Any, name: str) -> Decimal | None:
    if value is None:
        return None
    try:
        result = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise bad_request(f"invalid {name}") from None
    if not result.is_finite():
        raise bad_request(f"invalid {name}")
    return result


def parse_time(value: str | None, name: str) -> datetime | None:
    """RFC3339 or a plain date (midnight New York), as the APIs accept."""
    if not value:
        return None
    text = value.strip().replace(" ", "+").replace("Z", "+00:00")
    try:
        if len(text) == 10:
            d = date.fromisoformat(text)
            return datetime(d.year, d.month, d.day, tzinfo=NEW_YORK)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise bad_request(f"invalid {name}: {value}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_date(value: str | None, name: str) -> date | None:
    moment = parse_time(value, name)
    return None if moment is None else moment.astimezone(NEW_YORK).date()


def symbols_param(value: str | None) -> list[str]:
    if not value:
        raise bad_request("symbols is required")
    return [s.strip().upper() for s in value.split(",") if s.strip()]
