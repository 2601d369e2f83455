"""Alpaca's answers as typed errors, decided once, here.

The walk and the run match on these types, never on status codes or message text
(freqtrade's exception ladder is the model). `TemporaryBrokerError` is what a retry
may cure; everything else is final for the request that raised it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import requests
from alpaca.common.exceptions import APIError

# Alpaca's error codes (wire reference §7).
CODE_FORBIDDEN = 40310000
CODE_PATTERN_DAY_TRADER = 40310100
CODE_UNAUTHORIZED = 40110000
HTTP_UNAUTHORIZED = 401
HTTP_FORBIDDEN = 403
HTTP_NOT_FOUND = 404
HTTP_UNPROCESSABLE = 422
HTTP_TOO_MANY = 429
HTTP_SERVER_ERROR = 500
HTTP_TIMEOUT = 408
DUPLICATE_CLIENT_ORDER_ID = "client_order_id must be unique"


class BrokerError(Exception):
    """A request to the broker failed; `str()` says what was asked and what Alpaca said."""

    def __init__(self, what: str, reason: str, status: int | None = None) -> None:
        super().__init__(f"{what}: {reason}")
        self.what = what
        self.reason = reason
        self.status = status


class TemporaryBrokerError(BrokerError):
    """Worth another try: 5xx, a reset, a timeout (and 429, below)."""


class RateLimited(TemporaryBrokerError):
    """429: over Alpaca's 200 requests a minute."""


class BrokerAuthError(BrokerError):
    """The keys were refused (401): nothing will work until ALPACA_API_KEY/SECRET are fixed."""


class OrderNotFound(BrokerError):
    """404: no such order (or position)."""


class OrderRejected(BrokerError):
    """The broker refused an order request; the walk stops for that order."""


class InsufficientBuyingPower(OrderRejected):
    pass


class InsufficientQuantity(OrderRejected):
    """Selling more than `qty_available` (shares held and not reserved by open sells)."""


class WashTradeRejected(OrderRejected):
    """An opposite-side order rests on the same symbol."""


class PatternDayTraderRejected(OrderRejected):
    pass


class InvalidOrder(OrderRejected):
    """422: the request itself is wrong (quantity, price increment, asset, time in force)."""


class TradingHalted(OrderRejected):
    """The symbol is in a trading halt: no new orders until it lifts."""


class KillSwitch(OrderRejected):
    """`alchemiser halt` is in force: no new order is sent until `alchemiser resume`."""


class OrderNotChangeable(OrderRejected):
    """A replace or cancel the order's state does not allow (filled, pending, unchanged)."""


class DuplicateClientOrderId(InvalidOrder):
    """422: an order with this client order id exists (a retried POST whose answer was lost)."""


@dataclass(frozen=True, slots=True)
class _Answer:
    status: int | None
    code: int | None
    message: str


def classify(exc: Exception, what: str) -> BrokerError:
    """The typed error for an exception raised by alpaca-py or `requests`."""
    if isinstance(exc, BrokerError):
        return exc
    if isinstance(exc, requests.Timeout | requests.ConnectionError | TimeoutError):
        return TemporaryBrokerError(what, f"{type(exc).__name__}: no answer", None)
    if not isinstance(exc, APIError):
        return BrokerError(what, f"{type(exc).__name__}: {exc}")
    answer = _answer(exc)
    reason = f"HTTP {answer.status}: {answer.message}"
    return _kind(answer)(what, reason, answer.status)


def _kind(answer: _Answer) -> type[BrokerError]:
    status, text = answer.status, answer.message.lower()
    if status is None or status >= HTTP_SERVER_ERROR or status == HTTP_TIMEOUT:
        return TemporaryBrokerError
    if status == HTTP_TOO_MANY:
        return RateLimited
    if status == HTTP_UNAUTHORIZED or answer.code == CODE_UNAUTHORIZED:
        return BrokerAuthError
    if status == HTTP_NOT_FOUND:
        return OrderNotFound
    if answer.code == CODE_PATTERN_DAY_TRADER:
        return PatternDayTraderRejected
    if status == HTTP_FORBIDDEN:
        return _forbidden(text)
    if status == HTTP_UNPROCESSABLE:
        if DUPLICATE_CLIENT_ORDER_ID in text:
            return DuplicateClientOrderId
        if "halted" in text:
            return TradingHalted
        if "not cancelable" in text or "not replaceable" in text or "cannot be replaced" in text:
            return OrderNotChangeable
        return InvalidOrder
    return BrokerError


def _forbidden(text: str) -> type[BrokerError]:
    if "buying power" in text:
        return InsufficientBuyingPower
    if "insufficient qty" in text:
        return InsufficientQuantity
    if "wash trade" in text:
        return WashTradeRejected
    if "not changed" in text:
        return OrderNotChangeable
    if "not authorized" in text or "forbidden" in text:
        return BrokerAuthError
    return OrderRejected


def _answer(exc: APIError) -> _Answer:
    status = exc.status_code
    try:
        body = json.loads(str(exc))
    except ValueError:
        return _Answer(status, None, str(exc)[:200])
    if not isinstance(body, dict):
        return _Answer(status, None, str(body)[:200])
    code = body.get("code")
    return _Answer(status, code if isinstance(code, int) else None, str(body.get("message", "")))
