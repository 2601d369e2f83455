"""Account activities: regulatory fees, dividends and splits, booked to the books that caused them.

Alpaca reports them only as account activities (`GET /v2/account/activities`,
which alpaca-py does not wrap: `fetch_activities` calls the REST client's
`get`). Each is booked once, keyed by its id, in the caller's transaction:

- FEE (a day's SEC + TAF fee on one symbol's sells): to the books whose broker
  sells of that symbol that day caused it, weighted by sell value;
- DIV: to the books holding the symbol at the close before the ex-date (from
  their lots' open and close times), weighted by shares; what the broker paid
  on shares no book held goes to `unallocated`;
- SPLIT: every open lot scaled (quantity × ratio, cost unchanged); a book of a
  whole-share asset keeps whole shares, and the fractions go to `unallocated`
  at their cost (the broker settles them as cash in lieu).

Amounts are split by largest remainder to the cent, so they add up to the
broker's. Where the books' shares differ from the activity's, it is booked
anyway (it happened) and `ledger_problems` reports the difference. FILL
activities are not booked here: fills are booked from the trade-update stream
and order progress (`fills`), which carry our client order ids.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from alchemiser.books.kinds import CashKind
from alchemiser.books.models import AccountActivity, BookHolding, Lot
from alchemiser.books.money import (
    CENT,
    PRICE_QUANTUM,
    QUANTITY_QUANTUM,
    WIDE,
    ZERO,
    add,
    allocate,
    floor_to,
)
from alchemiser.books.postings import LedgerError, add_to_holding, cash_entry
from alchemiser.logging import get_logger
from alchemiser.settings import UNALLOCATED_BOOK

log = get_logger(__name__)

BOOKED_TYPES = ("FEE", "DIV", "SPLIT")
PAGE_SIZE = 100
# The trading day a time belongs to: fees are per New York day, dividends per ex-date.
MARKET_ZONE = "America/New_York"


@dataclass(frozen=True)
class Activity:
    """One row of the account activities contract (numbers parsed, exactly)."""

    id: str
    activity_type: str
    on: date
    symbol: str
    quantity: Decimal
    net_amount: Decimal
    per_share_amount: Decimal | None
    raw: Mapping[str, Any]


class RestClient(Protocol):
    """alpaca-py's `TradingClient` as far as activities need it."""

    def get(self, path: str, data: dict[str, Any] | None = None) -> Any: ...


def fetch_activities(
    client: RestClient, after: str | None = None, types: Sequence[str] = BOOKED_TYPES
) -> list[dict[str, Any]]:
    """Every activity of `types` after `after` (ISO date or time), oldest first, all pages."""
    rows: list[dict[str, Any]] = []
    params: dict[str, Any] = {
        "activity_types": ",".join(types),
        "direction": "asc",
        "page_size": PAGE_SIZE,
    }
    if after is not None:
        params["after"] = after
    while True:
        page = client.get("/account/activities", params)
        if not isinstance(page, list):
            raise LedgerError(f"account activities: expected a list, got {type(page).__name__}")
        rows += page
        if len(page) < PAGE_SIZE:
            return rows
        params["page_token"] = page[-1]["id"]


def parse_activity(row: Mapping[str, Any]) -> Activity:
    """A contract row as an `Activity`; a row that breaks the contract is refused, named."""
    kind = str(row.get("activity_type", ""))
    per_share = row.get("per_share_amount")
    try:
        return Activity(
            id=str(row["id"]),
            activity_type=kind,
            on=date.fromisoformat(str(row["date"])),
            symbol=str(row["symbol"]),
            quantity=_number(row, "qty"),
            net_amount=_number(row, "net_amount"),
            per_share_amount=None if per_share is None else _number(row, "per_share_amount"),
            raw=dict(row),
        )
    except KeyError as missing:
        raise LedgerError(f"activity {row.get('id')} ({kind}) has no {missing.args[0]}") from None


def _number(row: Mapping[str, Any], key: str) -> Decimal:
    value = row.get(key)
    if not isinstance(value, str):
        raise LedgerError(
            f"activity {row.get('id')}: {key} must be a decimal string, got {value!r}"
        )
    if "e" in value.lower():
        raise LedgerError(f"activity {row.get('id')}: {key} {value!r} is in exponent form")
    try:
        return Decimal(value)
    except InvalidOperation:
        raise LedgerError(f"activity {row.get('id')}: {key} {value!r} is not a number") from None


async def book_activities(
    conn: AsyncConnection, rows: Iterable[Mapping[str, Any]], *, fractionable: Collection[str]
) -> list[str]:
    """Book each FEE, DIV and SPLIT row once; returns the ids booked now (others: skipped).

    `fractionable`: the symbols tradable in fractions (a split keeps the others whole).
    """
    booked = []
    for row in rows:
        if row.get("activity_type") not in BOOKED_TYPES:
            continue
        activity = parse_activity(row)
        if await _book(conn, activity, activity.symbol in fractionable):
            booked.append(activity.id)
    return booked


async def _book(conn: AsyncConnection, activity: Activity, fractionable: bool) -> bool:
    inserted = await conn.scalar(
        insert(AccountActivity)
        .values(
            id=activity.id,
            activity_type=activity.activity_type,
            activity_date=activity.on,
            symbol=activity.symbol,
            quantity=activity.quantity,
            net_amount=activity.net_amount,
            per_share_amount=activity.per_share_amount,
            raw=dict(activity.raw),
        )
        .on_conflict_do_nothing(index_elements=[AccountActivity.id])
        .returning(AccountActivity.id)
    )
    if inserted is None:
        return False  # booked before
    if activity.activity_type == "FEE":
        books_quantity = await _book_fee(conn, activity)
    elif activity.activity_type == "DIV":
        books_quantity = await _book_dividend(conn, activity)
    else:
        books_quantity = await _book_split(conn, activity, fractionable)
    await conn.execute(
        update(AccountActivity)
        .where(AccountActivity.id == activity.id)
        .values(books_quantity=books_quantity)
    )
    if books_quantity != activity.quantity:
        log.warning(
            "activity differs from the books",
            activity_id=activity.id,
            activity_type=activity.activity_type,
            symbol=activity.symbol,
            broker=str(activity.quantity),
            books=str(books_quantity),
        )
    return True


# Each book's broker sells of a symbol on a New York trading day: (quantity, value).
_SELLS = text(f"""
    SELECT f.strategy_id, sum(f.quantity) AS quantity, sum(f.quantity * f.price) AS value
    FROM book_fills f JOIN executions e ON e.execution_id = f.execution_id
    WHERE e.kind = 'broker' AND f.side = 'sell' AND f.symbol = :symbol
      AND (f.filled_at AT TIME ZONE '{MARKET_ZONE}')::date = :day
    GROUP BY f.strategy_id""")

# Each book's shares of a symbol at the close before a day: its lots opened before the
# day began, with what fills on or after it closed of them added back.
_HELD = text(f"""
    SELECT l.strategy_id,
           sum(l.remaining + COALESCE((
               SELECT sum(c.quantity) FROM lot_closures c
               JOIN book_fills f ON f.id = c.book_fill_id
               WHERE c.lot_id = l.id AND f.filled_at >= CAST(:day AS timestamp)
                     AT TIME ZONE '{MARKET_ZONE}'), 0)) AS quantity
    FROM lots l
    WHERE l.symbol = :symbol AND l.opened_at < CAST(:day AS timestamp) AT TIME ZONE '{MARKET_ZONE}'
    GROUP BY l.strategy_id""")


async def _book_fee(conn: AsyncConnection, activity: Activity) -> Decimal:
    sells = (await conn.execute(_SELLS, {"symbol": activity.symbol, "day": activity.on})).all()
    weights = {row.strategy_id: row.value for row in sells if row.value > 0}
    await _post(conn, activity, CashKind.FEE, weights or {UNALLOCATED_BOOK: Decimal(1)})
    return add(*(row.quantity for row in sells))


async def _book_dividend(conn: AsyncConnection, activity: Activity) -> Decimal:
    rows = (await conn.execute(_HELD, {"symbol": activity.symbol, "day": activity.on})).all()
    weights = {row.strategy_id: row.quantity for row in rows if row.quantity > 0}
    held = add(*weights.values())
    if activity.quantity > held:
        # Paid on shares no book held (a manual trade): those go to `unallocated`.
        extra = activity.quantity - held
        weights[UNALLOCATED_BOOK] = weights.get(UNALLOCATED_BOOK, ZERO) + extra
    await _post(conn, activity, CashKind.DIVIDEND, weights or {UNALLOCATED_BOOK: Decimal(1)})
    return held


async def _post(
    conn: AsyncConnection, activity: Activity, kind: CashKind, weights: Mapping[str, Decimal]
) -> None:
    """The activity's amount to the books by weight (largest remainder, to the cent)."""
    for book, amount in sorted(allocate(activity.net_amount, weights, CENT).items()):
        if amount == 0:
            continue
        await cash_entry(conn, book, kind, amount, memo=activity.id, symbol=activity.symbol)
        # A fee or dividend is P&L of the symbol: realised, beside the lots' closures.
        await add_to_holding(conn, book, activity.symbol, quantity=ZERO, cost=ZERO, realised=amount)


async def _book_split(conn: AsyncConnection, activity: Activity, fractionable: bool) -> Decimal:
    """Scale every open lot by the ratio; returns the books' change in shares."""
    ratio = activity.per_share_amount
    if ratio is None or ratio <= 0:
        raise LedgerError(f"split {activity.id} has no positive ratio (per_share_amount)")
    lots = (
        await conn.execute(
            select(Lot)
            .where(Lot.symbol == activity.symbol, Lot.remaining > 0)
            .order_by(Lot.strategy_id, Lot.opened_at.desc(), Lot.id.desc())
            .with_for_update()
        )
    ).all()
    before = add(*(lot.remaining for lot in lots))
    moved_any = False
    for book in sorted({lot.strategy_id for lot in lots}):
        mine = [lot for lot in lots if lot.strategy_id == book]
        scaled = [(lot, *_scale(lot, ratio)) for lot in mine]
        fraction = ZERO
        if not fractionable:
            total = add(*(r for _, r, _, _ in scaled))
            fraction = total - floor_to(total, Decimal(1))
        for lot, remaining, quantity, cost_price in scaled:  # newest first: fractions leave them
            moved = min(fraction, remaining)
            fraction -= moved
            await conn.execute(
                update(Lot)
                .where(Lot.id == lot.id)
                .values(remaining=remaining - moved, quantity=quantity, cost_price=cost_price)
            )
            if moved > 0:
                moved_any = True
                await _move_fraction(conn, lot, moved, cost_price)
        await _resum_holding(conn, book, activity.symbol)
    if moved_any:
        await _resum_holding(conn, UNALLOCATED_BOOK, activity.symbol)
    after: Decimal = (
        await conn.scalar(
            select(func.coalesce(func.sum(Lot.remaining), 0)).where(Lot.symbol == activity.symbol)
        )
        or ZERO
    )
    return after - before


def _scale(lot: Any, ratio: Decimal) -> tuple[Decimal, Decimal, Decimal]:
    """A lot after a split: shares × ratio (to 1e-9), cost per share ÷ ratio (to 1e-12)."""
    return (
        floor_to(WIDE.multiply(lot.remaining, ratio), QUANTITY_QUANTUM),
        floor_to(WIDE.multiply(lot.quantity, ratio), QUANTITY_QUANTUM),
        WIDE.divide(lot.cost_price, ratio).quantize(PRICE_QUANTUM, context=WIDE),
    )


async def _move_fraction(conn: AsyncConnection, lot: Any, quantity: Decimal, cost: Decimal) -> None:
    """A whole-share book's fraction after a split, moved to `unallocated` at its cost."""
    await conn.execute(
        insert(Lot).values(
            strategy_id=UNALLOCATED_BOOK,
            symbol=lot.symbol,
            book_fill_id=None,
            opened_at=lot.opened_at,
            quantity=quantity,
            remaining=quantity,
            cost_price=cost,
        )
    )


async def _resum_holding(conn: AsyncConnection, book: str, symbol: str) -> None:
    """A book's holding after a split: its open lots' shares and cost, summed again."""
    totals = (
        await conn.execute(
            select(
                func.coalesce(func.sum(Lot.remaining), 0),
                func.coalesce(func.sum(Lot.remaining * Lot.cost_price), 0),
            ).where(Lot.strategy_id == book, Lot.symbol == symbol)
        )
    ).one()
    quantity, cost = Decimal(totals[0]), Decimal(totals[1])
    await conn.execute(
        insert(BookHolding)
        .values(strategy_id=book, symbol=symbol, quantity=quantity, cost_basis=cost, realised_pnl=0)
        .on_conflict_do_update(
            index_elements=[BookHolding.strategy_id, BookHolding.symbol],
            set_={"quantity": quantity, "cost_basis": cost, "updated_at": func.now()},
        )
    )
