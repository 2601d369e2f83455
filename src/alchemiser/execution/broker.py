"""The broker adapter: alpaca-py's synchronous `TradingClient`, made safe for one event loop.

alpaca-py's REST client blocks, has no timeout and retries 429s with a blocking
`time.sleep(3)` (wire reference §6). Here every call runs on a small thread pool
(one client per thread: a `requests.Session` is not thread-safe) with a timeout,
passes a sliding-window limit of Alpaca's 200 requests a minute, and is retried
with capped exponential backoff when the failure is temporary. Orders are sent with
the ledger's deterministic client order id, so a retried POST whose first answer
was lost meets 422 "client_order_id must be unique", and the order is fetched by
that id instead of being sent twice. Answers come back as `OrderSnapshot`s with
`Decimal` money, converted once, here.
"""

from __future__ import annotations

import asyncio
import functools
import random
from collections.abc import Callable, Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, Literal, cast

from alpaca.trading.client import TradingClient
from alpaca.trading.enums import OrderSide, QueryOrderStatus, TimeInForce
from alpaca.trading.requests import (
    GetCalendarRequest,
    GetOrdersRequest,
    LimitOrderRequest,
    MarketOrderRequest,
    ReplaceOrderRequest,
)

from alchemiser.clientpool import ClientPool
from alchemiser.execution.errors import (
    BrokerError,
    OrderNotFound,
    OrderRejected,
    TemporaryBrokerError,
    classify,
)
from alchemiser.execution.ratelimit import SlidingWindowLimiter
from alchemiser.logging import get_logger
from alchemiser.market_calendar import NEW_YORK, Session
from alchemiser.settings import AlpacaConfig, ExecutionConfig

log = get_logger(__name__)

# raw_data=True: alpaca-py returns the JSON as parsed, whatever its annotations say.
Json = Any
Side = Literal["buy", "sell"]

# Alpaca's trading API limit per account, less a margin for the user's own app or scripts.
REQUESTS_PER_MINUTE = 190
RATE_WINDOW_SECONDS = 60.0
# Concurrent REST calls. Alpaca's rate limit bounds throughput; this bounds how long a
# hundred walks stepping at once queue for a client (~10 ms a call): 4 cost ~0.5 s a run.
CLIENTS = 8
BACKOFF_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 8.0
ORDERS_PAGE = 500  # Alpaca's maximum `limit` for GET /v2/orders
ONE_MICROSECOND = timedelta(microseconds=1)
ACTIVITIES_PAGE = 100  # and `page_size` for GET /v2/account/activities
OPEN_STATUSES = frozenset(
    {
        "new",
        "partially_filled",
        "accepted",
        "pending_new",
        "pending_replace",
        "pending_cancel",
        "accepted_for_bidding",
        "held",
        "calculated",
    }
)


@dataclass(frozen=True, slots=True)
class OrderRequest:
    """A DAY order as the walk asks for it: a limit when `limit_price` is set, else market."""

    client_order_id: str
    symbol: str
    side: Side
    qty: Decimal
    limit_price: Decimal | None = None


@dataclass(frozen=True, slots=True)
class OrderSnapshot:
    """One order as the broker reported it at one moment (cumulative fill progress)."""

    id: str
    client_order_id: str
    symbol: str
    side: Side
    status: str
    qty: Decimal | None
    filled_qty: Decimal
    filled_avg_price: Decimal | None
    limit_price: Decimal | None
    replaces: str | None
    replaced_by: str | None
    updated_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @classmethod
    def from_wire(cls, body: Mapping[str, Any]) -> OrderSnapshot:
        return cls(
            id=str(body["id"]),
            client_order_id=str(body["client_order_id"]),
            symbol=str(body["symbol"]),
            side=cast(Side, str(body["side"])),
            status=str(body["status"]),
            qty=_decimal(body.get("qty")),
            filled_qty=_decimal(body.get("filled_qty")) or Decimal(0),
            filled_avg_price=_decimal(body.get("filled_avg_price")),
            limit_price=_decimal(body.get("limit_price")),
            replaces=_text(body.get("replaces")),
            replaced_by=_text(body.get("replaced_by")),
            updated_at=_time(body.get("updated_at")),
        )


@dataclass(frozen=True, slots=True)
class AccountSnapshot:
    status: str
    cash: Decimal
    equity: Decimal
    buying_power: Decimal  # includes margin: never size buys from it
    trading_blocked: bool


@dataclass(frozen=True, slots=True)
class PositionSnapshot:
    symbol: str
    qty: Decimal
    avg_entry_price: Decimal
    qty_available: Decimal | None


def make_trading_client(alpaca: AlpacaConfig, timeout_seconds: float) -> TradingClient:
    """A raw-data client with a request timeout and without alpaca-py's blocking retries."""
    client = TradingClient(
        alpaca.api_key.get_secret_value() or None,
        alpaca.secret_key.get_secret_value() or None,
        paper=alpaca.paper,
        raw_data=True,
        url_override=alpaca.trading_url,
    )
    client._retry = 0  # we retry ourselves, without blocking a thread in time.sleep
    session = client._session
    session.request = functools.partial(session.request, timeout=timeout_seconds)  # type: ignore[method-assign]
    return client


class Broker:
    """Async, retried, rate-limited calls to Alpaca's trading API."""

    def __init__(
        self,
        alpaca: AlpacaConfig,
        execution: ExecutionConfig,
        *,
        limiter: SlidingWindowLimiter | None = None,
        backoff_seconds: float = BACKOFF_SECONDS,
        factory: Callable[[], TradingClient] | None = None,
    ) -> None:
        self.timeout = execution.order_timeout_seconds
        self.attempts = execution.max_retries + 1
        self.backoff = backoff_seconds
        self.limiter = limiter or SlidingWindowLimiter(REQUESTS_PER_MINUTE, RATE_WINDOW_SECONDS)
        self._pool = ThreadPoolExecutor(CLIENTS, thread_name_prefix="alpaca-trading")
        # The session has the same timeout; the pool's is the backstop for a wedged thread.
        self._clients = ClientPool(
            factory or (lambda: make_trading_client(alpaca, self.timeout)),
            CLIENTS,
            timeout=self.timeout * 2,
            executor=self._pool,
        )
        self._random = random.Random()

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def quiet(self, seconds: float) -> bool:
        """Wait until no request is on the wire, including those whose caller was
        cancelled (a stopped run's submit can still create its order); False when some
        have not returned within `seconds`."""
        try:
            await asyncio.wait_for(self._clients.quiet(), seconds)
        except TimeoutError:
            return False
        return True

    # --- reads ---------------------------------------------------------------------------

    async def account(self) -> AccountSnapshot:
        body = await self._call(lambda c: c.get_account(), "read the account")
        return AccountSnapshot(
            status=str(body["status"]),
            cash=Decimal(str(body["cash"])),
            equity=Decimal(str(body["equity"])),
            buying_power=Decimal(str(body["buying_power"])),
            trading_blocked=bool(body.get("trading_blocked", False)),
        )

    async def positions(self) -> list[PositionSnapshot]:
        rows = await self._call(lambda c: c.get_all_positions(), "read the positions")
        return [
            PositionSnapshot(
                symbol=str(r["symbol"]),
                qty=Decimal(str(r["qty"])),
                avg_entry_price=Decimal(str(r["avg_entry_price"])),
                qty_available=_decimal(r.get("qty_available")),
            )
            for r in rows
        ]

    async def clock(self) -> dict[str, Any]:
        return cast(dict[str, Any], await self._call(lambda c: c.get_clock(), "read the clock"))

    async def calendar(self, start: date, end: date) -> list[Session]:
        """The broker's trading sessions from `start` to `end` (its early closes included)."""
        request = GetCalendarRequest(start=start, end=end)
        rows = await self._call(lambda c: c.get_calendar(request), "read the calendar")
        return [_session(row) for row in rows]

    async def asset(self, symbol: str) -> dict[str, Any]:
        return cast(
            dict[str, Any], await self._call(lambda c: c.get_asset(symbol), f"read asset {symbol}")
        )

    async def fractionable(self, symbols: Collection[str]) -> set[str]:
        """Which of `symbols` Alpaca trades in fractions: one listing, then any it lacks."""
        listed = await self._call(lambda c: c.get_all_assets(), "list the assets")
        flags = {str(a["symbol"]): bool(a.get("fractionable")) for a in listed}
        missing = sorted(set(symbols) - set(flags))
        for asset in await asyncio.gather(*(self.asset(s) for s in missing)):
            flags[str(asset["symbol"])] = bool(asset.get("fractionable"))
        return {s for s in symbols if flags.get(s)}

    async def order(self, order_id: str) -> OrderSnapshot:
        body = await self._call(lambda c: c.get_order_by_id(order_id), f"read order {order_id}")
        return OrderSnapshot.from_wire(body)

    async def order_by_client_id(self, client_order_id: str) -> OrderSnapshot:
        body = await self._call(
            lambda c: c.get_order_by_client_id(client_order_id), f"read order {client_order_id}"
        )
        return OrderSnapshot.from_wire(body)

    async def find_order(self, client_order_id: str) -> OrderSnapshot | None:
        """The order with this client order id, or None when the broker never received it."""
        try:
            return await self.order_by_client_id(client_order_id)
        except OrderNotFound:
            return None

    async def orders(
        self, status: Literal["open", "closed", "all"], after: datetime, *, page: int = ORDERS_PAGE
    ) -> list[OrderSnapshot]:
        """Every order of `status` submitted after `after`, oldest first, across pages.

        Alpaca pages by time (`after` is exclusive), and orders sent together share a
        `submitted_at`: each next page starts a microsecond before the last one seen,
        and repeats are dropped by order id, so an order on a page boundary is not lost.
        """
        found: dict[str, OrderSnapshot] = {}
        since = after
        what = f"list {status} orders"
        while True:
            request = GetOrdersRequest(
                status=QueryOrderStatus(status), after=since, limit=page, direction="asc"
            )
            rows = await self._call(functools.partial(_get_orders, request=request), what)
            new = [row for row in rows if str(row["id"]) not in found]
            for row in new:
                found[str(row["id"])] = OrderSnapshot.from_wire(row)
            if len(rows) < page:
                return list(found.values())
            if not new:  # a whole page submitted in one microsecond: cannot page past it
                raise TemporaryBrokerError(what, f"more than {page} orders share one timestamp")
            last = datetime.fromisoformat(str(rows[-1]["submitted_at"]).replace("Z", "+00:00"))
            since = last - ONE_MICROSECOND

    async def activities(
        self, types: tuple[str, ...], after: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Account activities of `types` (FILL, FEE, DIV, SPLIT, ...), oldest first, all pages."""
        params: dict[str, Any] = {
            "activity_types": ",".join(types),
            "direction": "asc",
            "page_size": ACTIVITIES_PAGE,
        }
        if after is not None:
            params["after"] = after.isoformat()
        rows: list[dict[str, Any]] = []
        while True:
            page = await self._call(
                functools.partial(_get_activities, params=dict(params)), "read account activities"
            )
            rows.extend(page)
            if len(page) < ACTIVITIES_PAGE:
                return rows
            params["page_token"] = page[-1]["id"]

    # --- orders --------------------------------------------------------------------------

    async def submit(self, order: OrderRequest) -> OrderSnapshot:
        """Send an order once, whatever is lost on the way.

        Any failure (after the retries) asks the broker for the client order id: an
        order whose first answer was lost exists, and is returned instead of an error.
        """
        what = f"submit {order.side} {order.qty} {order.symbol} ({order.client_order_id})"
        request = _wire_request(order)
        try:
            body = await self._call(lambda c: c.submit_order(request), what)
        except (TemporaryBrokerError, OrderRejected):
            # A retry after a lost answer meets "must be unique", or a refusal checked
            # before it (quantity, buying power): if the order is there, it was sent.
            found = await self.find_order(order.client_order_id)
            if found is None:
                raise
            log.info("order already at the broker", client_order_id=order.client_order_id)
            return found
        return OrderSnapshot.from_wire(body)

    async def replace(
        self, order_id: str, qty: Decimal, limit_price: Decimal, client_order_id: str
    ) -> OrderSnapshot:
        """Replace a whole-share order, always stating the remaining quantity.

        Alpaca keeps the *original* quantity when a replace leaves `qty` out, even after
        a partial fill, so `qty` is required here. The new order carries its own
        client order id, so a replace whose answer was lost is found by it.
        """
        if qty != qty.to_integral_value():
            raise ValueError(f"a replace cannot change a fractional quantity ({qty})")
        request = ReplaceOrderRequest(
            qty=int(qty), limit_price=float(limit_price), client_order_id=client_order_id
        )
        what = f"replace {order_id} with {qty} at {limit_price} ({client_order_id})"
        try:
            body = await self._call(lambda c: c.replace_order_by_id(order_id, request), what)
        except (TemporaryBrokerError, OrderRejected):
            # A retried PATCH whose first attempt was applied meets "not replaceable":
            # the replacement exists under its client order id.
            found = await self.find_order(client_order_id)
            if found is None:
                raise
            return found
        return OrderSnapshot.from_wire(body)

    async def cancel(self, order_id: str) -> None:
        """Ask for a cancel; the outcome (canceled, or filled first) comes on the stream."""
        await self._call(lambda c: c.cancel_order_by_id(order_id), f"cancel order {order_id}")

    # --- plumbing ------------------------------------------------------------------------

    async def _call(self, fn: Callable[[TradingClient], object], what: str) -> Json:
        for attempt in range(1, self.attempts + 1):
            try:
                await self.limiter.acquire()
                return await self._clients.call(fn)
            except Exception as exc:  # every failure is classified, once
                error = classify(exc, what)
                if not isinstance(error, TemporaryBrokerError) or attempt == self.attempts:
                    raise error from exc
            delay = self._delay(attempt)
            log.warning("broker retry", what=what, reason=error.reason, attempt=attempt)
            await asyncio.sleep(delay)
        raise AssertionError("unreachable")

    def _delay(self, attempt: int) -> float:
        """Capped exponential backoff with full jitter, so retries of many walks spread out."""
        ceiling = min(self.backoff * 2 ** (attempt - 1), BACKOFF_MAX_SECONDS)
        return float(ceiling / 2 + self._random.uniform(0, ceiling / 2))


def _session(row: Mapping[str, Any]) -> Session:
    """A calendar row: a date and the open and close as ET wall times ("09:30")."""
    day = date.fromisoformat(str(row["date"]))

    def at(hhmm: object) -> datetime:
        return datetime.combine(day, time.fromisoformat(str(hhmm)), NEW_YORK)

    return Session(day, at(row["open"]), at(row["close"]))


def _get_orders(client: TradingClient, request: GetOrdersRequest) -> object:
    return client.get_orders(request)


def _get_activities(client: TradingClient, params: dict[str, Any]) -> object:
    # alpaca-py does not wrap this endpoint; its REST client's `get` adds /v2.
    return client.get("/account/activities", params)


def _wire_request(order: OrderRequest) -> MarketOrderRequest | LimitOrderRequest:
    common: dict[str, Any] = {
        "symbol": order.symbol,
        "qty": float(order.qty),
        "side": OrderSide(order.side),
        "time_in_force": TimeInForce.DAY,
        "client_order_id": order.client_order_id,
    }
    if order.limit_price is None:
        return MarketOrderRequest(**common)
    return LimitOrderRequest(limit_price=float(order.limit_price), **common)


def _decimal(value: object) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


def _text(value: object) -> str | None:
    return None if value is None or value == "" else str(value)


def _time(value: object) -> datetime | None:
    if not value:
        return None
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))


__all__ = ["Broker", "BrokerError", "OrderRequest", "OrderSnapshot"]
