"""Account activities (`GET /v2/account/activities`): the account's exact record.

The contract agreed with the ledger (docs/simulator.md has the full table):
FILL per execution, FEE per symbol sold per day (regulatory SEC + FINRA TAF fees,
posted at the close, rounded up to the cent), DIV on the ex-date (= pay date),
SPLIT on the ex-date. Ids are "YYYYMMDDHHMMSSmmm::<uuid>", time-ordered, and the
uuid starts with a sequence number so that rows posted in the same millisecond
still sort in posting order. Numbers are plain decimal strings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal
from typing import TYPE_CHECKING, Any

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim.errors import bad_request
from alchemiser.sim.ids import IdSource
from alchemiser.sim.wire import dec_str, parse_time

if TYPE_CHECKING:
    from alchemiser.sim.orders import Order

ACTIVITY_TYPES = ("FILL", "FEE", "DIV", "SPLIT")
DEFAULT_PAGE_SIZE = 100
MAX_PAGE_SIZE = 100
CENT = Decimal("0.01")
# Regulatory fees on sells (2024 rates): SEC Section 31 per dollar of proceeds, and
# FINRA's Trading Activity Fee per share, capped per execution.
SEC_FEE_RATE = Decimal("0.0000278")
TAF_PER_SHARE = Decimal("0.000166")
TAF_MAX_PER_EXECUTION = Decimal("8.30")
FEE_DESCRIPTION = "REG/TAF fee"


def regulatory_fee(proceeds: Decimal, taf: Decimal) -> Decimal:
    """A day's fee for one symbol: SEC on the proceeds plus the (capped) TAF, up to the cent."""
    return (proceeds * SEC_FEE_RATE + taf).quantize(CENT, rounding=ROUND_CEILING)


def taf_for(qty: Decimal) -> Decimal:
    return min(qty * TAF_PER_SHARE, TAF_MAX_PER_EXECUTION)


@dataclass(slots=True)
class SellTotals:
    qty: Decimal = Decimal(0)
    proceeds: Decimal = Decimal(0)
    taf: Decimal = Decimal(0)


@dataclass(slots=True)
class Activity:
    id: str
    type: str
    moment: float  # when it was posted (a FILL: its execution), epoch seconds
    day: date  # the row's date (a FILL: the New York date of its execution)
    body: dict[str, Any]


@dataclass(slots=True)
class Activities:
    """Every activity since the last reset, plus the day's sells that fees are charged on."""

    ids: IdSource
    rows: list[Activity] = field(default_factory=list)
    sells: dict[tuple[date, str], SellTotals] = field(default_factory=dict)

    def _add(self, kind: str, moment: float, day: date, body: dict[str, Any]) -> None:
        stamp = datetime.fromtimestamp(moment, UTC).strftime("%Y%m%d%H%M%S%f")[:-3]
        row_id = f"{stamp}::{self.ids.ordered_uuid('activity')}"
        full = {"id": row_id, "activity_type": kind, **body}
        self.rows.append(Activity(row_id, kind, moment, day, full))

    def fill(self, order: Order, qty: Decimal, price: Decimal, moment: float, done: bool) -> None:
        """One execution of `order` (a broker Order, after the execution was applied)."""
        day = new_york_date(moment)
        self._add(
            "FILL",
            moment,
            day,
            {
                "transaction_time": iso_ms(moment),
                "type": "fill" if done else "partial_fill",
                "price": dec_str(price),
                "qty": dec_str(qty),
                "side": order.side,
                "symbol": order.symbol,
                "leaves_qty": dec_str(max((order.qty or qty) - order.filled_qty, Decimal(0))),
                "order_id": order.id,
                "cum_qty": dec_str(order.filled_qty),
                "order_status": order.status,
            },
        )
        if order.side == "sell":
            totals = self.sells.setdefault((day, order.symbol), SellTotals())
            totals.qty += qty
            totals.proceeds += qty * price
            totals.taf += taf_for(qty)

    def post_fees(self, day: date, moment: float) -> Decimal:
        """FEE rows for the sells of `day`; returns the total charged (positive)."""
        total = Decimal(0)
        for key in sorted(k for k in self.sells if k[0] == day):
            sold = self.sells.pop(key)
            fee = regulatory_fee(sold.proceeds, sold.taf)
            if fee <= 0:
                continue
            total += fee
            body = {
                "date": day.isoformat(),
                "net_amount": dec_str(-fee),
                "symbol": key[1],
                "qty": dec_str(sold.qty),
                "description": FEE_DESCRIPTION,
                "status": "executed",
            }
            self._add("FEE", moment, day, body)
        return total

    def dividend(
        self, symbol: str, day: date, qty: Decimal, per_share: Decimal, moment: float
    ) -> Decimal:
        """A cash dividend on `qty` shares; returns the amount paid (to the cent)."""
        amount = (qty * per_share).quantize(CENT, rounding=ROUND_HALF_UP)
        body = {
            "date": day.isoformat(),
            "net_amount": dec_str(amount),
            "symbol": symbol,
            "qty": dec_str(qty),
            "per_share_amount": dec_str(per_share),
            "description": f"Cash DIV @ {dec_str(per_share)}, Pos QTY: {dec_str(qty)}",
            "status": "executed",
        }
        self._add("DIV", moment, day, body)
        return amount

    def split(self, symbol: str, day: date, change: Decimal, ratio: Decimal, moment: float) -> None:
        body = {
            "date": day.isoformat(),
            "symbol": symbol,
            "qty": dec_str(change),
            "per_share_amount": dec_str(ratio),
            "net_amount": "0",
            "description": f"{dec_str(ratio)}-for-1 split",
            "status": "executed",
        }
        self._add("SPLIT", moment, day, body)

    def query(self, params: dict[str, str]) -> list[dict[str, Any]]:
        """Alpaca's filters and paging, over every row (see docs/simulator.md)."""
        return [a.body for a in select(self.rows, ActivityQuery.parse(params))]


@dataclass(frozen=True, slots=True)
class Bound:
    """A date bound compares with a row's date, a datetime bound with its moment."""

    day: date | None = None
    moment: float | None = None


@dataclass(frozen=True, slots=True)
class ActivityQuery:
    types: frozenset[str]
    on: date | None
    after: Bound | None
    until: Bound | None
    descending: bool
    page_size: int
    page_token: str | None

    @staticmethod
    def parse(q: dict[str, str]) -> ActivityQuery:
        asked = {t.strip().upper() for t in q.get("activity_types", "").split(",") if t.strip()}
        unknown = asked - set(ACTIVITY_TYPES)
        if unknown:
            raise bad_request(f"invalid activity_types: {','.join(sorted(unknown))}")
        direction = q.get("direction", "desc")
        if direction not in ("asc", "desc"):
            raise bad_request("direction must be asc or desc")
        try:
            size = int(q.get("page_size") or DEFAULT_PAGE_SIZE)
        except ValueError:
            raise bad_request("invalid page_size") from None
        if not 1 <= size <= MAX_PAGE_SIZE:
            raise bad_request(f"page_size must be between 1 and {MAX_PAGE_SIZE}")
        on = _bound(q.get("date"), "date")
        if on is not None and on.day is None:
            raise bad_request("date must be a date (YYYY-MM-DD)")
        return ActivityQuery(
            types=frozenset(asked or ACTIVITY_TYPES),
            on=on.day if on is not None else None,
            after=_bound(q.get("after"), "after"),
            until=_bound(q.get("until"), "until"),
            descending=direction == "desc",
            page_size=size,
            page_token=q.get("page_token") or None,
        )


def select(rows: list[Activity], query: ActivityQuery) -> list[Activity]:
    def keep(a: Activity) -> bool:
        if a.type not in query.types or (query.on is not None and a.day != query.on):
            return False
        if query.after is not None and not _is_after(a, query.after):
            return False
        return query.until is None or not _is_after(a, query.until)

    chosen = sorted((a for a in rows if keep(a)), key=lambda a: a.id, reverse=query.descending)
    token = query.page_token
    if token is not None:
        chosen = [a for a in chosen if (a.id < token if query.descending else a.id > token)]
    return chosen[: query.page_size]


def _is_after(a: Activity, bound: Bound) -> bool:
    if bound.day is not None:
        return a.day > bound.day
    assert bound.moment is not None
    return a.moment > bound.moment


def _bound(value: str | None, name: str) -> Bound | None:
    if not value:
        return None
    moment = parse_time(value, name)
    assert moment is not None
    if len(value.strip()) == len("YYYY-MM-DD"):
        return Bound(day=moment.date())
    return Bound(moment=moment.timestamp())


def iso_ms(epoch: float) -> str:
    """RFC3339 UTC to the millisecond, as activities stamp a fill."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_york_date(epoch: float) -> date:
    return datetime.fromtimestamp(epoch, NEW_YORK).date()
