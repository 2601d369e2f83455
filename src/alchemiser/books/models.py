"""Ledger tables: strategies and their books, runs, signals, intents, orders, fills, lots, cash.

The ledger is append-only where money moves (executions, book_fills, lots closures,
cash_entries); `strategies.cash`/`net_funding` and `book_holdings` are running
totals kept in the same transaction as the entries they sum, so the reporting
views stay fast on a ledger of millions of fills. Migration 0002_ledger creates
all of this plus the views; keep the two in step (a test compares them).
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from alchemiser.books.kinds import SIDES, BookState, CashKind, ExecutionKind, RunStatus, values
from alchemiser.models import Base

# Quantities: 9 decimals, as Alpaca's fractional shares. Money and prices: exact numeric.
Quantity = Numeric(28, 9)
Money = Numeric()
Weight = Numeric(12, 9)
SYMBOL_LENGTH = 32
STRATEGY_ID_LENGTH = 100

STRATEGY_STATES = values(BookState)
RUN_STATUSES = values(RunStatus)
EXECUTION_KINDS = values(ExecutionKind)
CASH_KINDS = values(CashKind)


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def _now() -> Mapped[datetime]:
    return mapped_column(DateTime(timezone=True), server_default=func.now())


def _strategy_fk(nullable: bool = False) -> Mapped[Any]:
    return mapped_column(String(STRATEGY_ID_LENGTH), ForeignKey("strategies.id"), nullable=nullable)


def _run_fk() -> Mapped[int | None]:
    return mapped_column(BigInteger, ForeignKey("runs.id"), nullable=True)


class Book(Base):
    """A strategy's book (or `unallocated`): its running totals (cash, net funding received)."""

    __tablename__ = "strategies"
    __table_args__ = (CheckConstraint(_in("state", STRATEGY_STATES), name="state"),)

    id: Mapped[str] = mapped_column(String(STRATEGY_ID_LENGTH), primary_key=True)
    file: Mapped[str | None] = mapped_column(Text)
    allocation: Mapped[Decimal] = mapped_column(Weight, server_default=text("0"))
    capital: Mapped[Decimal | None] = mapped_column(Money)
    state: Mapped[str] = mapped_column(String(16))
    cash: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    # Σ funding/transfer/deposit entries: what the book was given, for P&L = value − funding.
    net_funding: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    created_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class Run(Base):
    """One row per (trading day, kind): a resumed run finds its row again."""

    __tablename__ = "runs"
    __table_args__ = (
        UniqueConstraint("trading_day", "kind"),
        CheckConstraint(_in("status", RUN_STATUSES), name="status"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    trading_day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(String(16))
    price_mode: Mapped[str | None] = mapped_column(String(32))
    input_hash: Mapped[str | None] = mapped_column(String(64))
    # Set when the plan (intents) is written: a run's plan is written once.
    planned_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Set when the run's crosses are computed and saved (`cross_legs`), once.
    crossed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime] = _now()
    # The broker's clock when the run started (time comes from the broker).
    broker_started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    timings: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    error: Mapped[str | None] = mapped_column(Text)
    # Running totals kept as signals, intents and orders are recorded. Fill totals are in
    # run_fill_totals: a booking never locks its run's row.
    strategies: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    failed_strategies: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    intents: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    broker_orders: Mapped[int] = mapped_column(Integer, server_default=text("0"))


class RunFillTotals(Base):
    """A run's fill totals: the last row a booking locks, and nothing else locks it."""

    __tablename__ = "run_fill_totals"

    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("runs.id"), primary_key=True)
    book_fills: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    traded_value: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))


class Signal(Base):
    """A strategy's evaluation in a run: allocation and decision trace, or its error."""

    __tablename__ = "signals"
    __table_args__ = (UniqueConstraint("run_id", "strategy_id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("runs.id"))
    strategy_id: Mapped[str] = _strategy_fk()
    allocation: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    trace: Mapped[Any | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()


class Intent(Base):
    """What one book wants to trade in a run (before netting)."""

    __tablename__ = "intents"
    __table_args__ = (
        UniqueConstraint("run_id", "strategy_id", "symbol", "side"),
        CheckConstraint(_in("side", SIDES), name="side"),
        CheckConstraint("quantity >= 0", name="quantity_not_negative"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("runs.id"))
    strategy_id: Mapped[str] = _strategy_fk()
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(4))
    # What the book may still be filled up to; lowered when phase 2 scales buys to cash.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    # The planned quantity, kept when `quantity` was scaled down.
    planned_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    reference_price: Mapped[Decimal] = mapped_column(Money)
    reason: Mapped[str] = mapped_column(String(32))
    # Closed for the day (rejected, expired at the close, abandoned): a resume leaves it be.
    closed_reason: Mapped[str | None] = mapped_column(String(32))
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = _now()


class CrossLeg(Base):
    """One book's side of a run's internal cross in a symbol, saved when first computed."""

    __tablename__ = "cross_legs"
    __table_args__ = (CheckConstraint(_in("side", SIDES), name="side"),)

    run_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("runs.id"), primary_key=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    strategy_id: Mapped[str] = mapped_column(
        String(STRATEGY_ID_LENGTH), ForeignKey("strategies.id"), primary_key=True
    )
    side: Mapped[str] = mapped_column(String(4), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    price: Mapped[Decimal] = mapped_column(Money)


class BrokerOrder(Base):
    """An order sent to the broker (one per walk-the-book step)."""

    __tablename__ = "broker_orders"
    __table_args__ = (CheckConstraint(_in("side", SIDES), name="side"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("runs.id"), index=True)
    client_order_id: Mapped[str] = mapped_column(String(128), unique=True)
    alpaca_order_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(4))
    step: Mapped[int] = mapped_column(Integer)
    order_type: Mapped[str] = mapped_column(String(16))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    limit_price: Mapped[Decimal | None] = mapped_column(Money)
    status: Mapped[str] = mapped_column(String(32))
    # What the ledger has booked of this order so far (quantity, and Σ quantity × price):
    # the broker's cumulative progress is booked as the difference from these.
    filled_quantity: Mapped[Decimal] = mapped_column(Quantity, server_default=text("0"))
    filled_value: Mapped[Decimal] = mapped_column(Money, server_default=text("0"))
    # Non-fractionable assets are split between books in whole shares.
    fractionable: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    # The client order id of the order this one replaced (a walk's earlier step).
    replaces: Mapped[str | None] = mapped_column(String(128))
    reject_reason: Mapped[str | None] = mapped_column(Text)
    # The quote the order was priced from: its slippage and spread (`execution_quality`).
    quote_bid: Mapped[Decimal | None] = mapped_column(Money)
    quote_ask: Mapped[Decimal | None] = mapped_column(Money)
    quote_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # broker time
    submitted_at: Mapped[datetime] = _now()
    updated_at: Mapped[datetime] = _now()


class ParkedFill(Base):
    """A fill of one of our client order ids whose order row is not recorded yet.

    Booked (and deleted) when the order is recorded or adopted. `key`: the
    execution id, or `<client order id>@<cumulative quantity>` for a REST report.
    """

    __tablename__ = "parked_fills"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    client_order_id: Mapped[str] = mapped_column(String(128), index=True)
    execution_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    price: Mapped[Decimal | None] = mapped_column(Money)
    cumulative_quantity: Mapped[Decimal] = mapped_column(Quantity)
    average_price: Mapped[Decimal | None] = mapped_column(Money)
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    parked_at: Mapped[datetime] = _now()


class ForeignFill(Base):
    """A fill of an order that is not ours (a manual trade): reported, never booked."""

    __tablename__ = "foreign_fills"

    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    client_order_id: Mapped[str | None] = mapped_column(String(128))
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    price: Mapped[Decimal] = mapped_column(Money)
    executed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    seen_at: Mapped[datetime] = _now()


class Execution(Base):
    """A fill: Alpaca's execution id (unique, so a replayed message is harmless),
    or an internal cross / opening balance with a deterministic id."""

    __tablename__ = "executions"
    __table_args__ = (
        CheckConstraint(_in("kind", EXECUTION_KINDS), name="kind"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_executions_symbol_executed_at", "symbol", "executed_at"),
    )

    execution_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("runs.id"), index=True)
    broker_order_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("broker_orders.id"), index=True
    )
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    # NULL for a cross: both sides are inside the house.
    side: Mapped[str | None] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    price: Mapped[Decimal] = mapped_column(Money)
    executed_at: Mapped[datetime] = _now()


class BookFill(Base):
    """One book's share of one execution."""

    __tablename__ = "book_fills"
    __table_args__ = (
        UniqueConstraint("execution_id", "strategy_id"),
        CheckConstraint(_in("side", SIDES), name="side"),
        CheckConstraint("quantity > 0", name="quantity_positive"),
        Index("ix_book_fills_strategy_symbol", "strategy_id", "symbol"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    execution_id: Mapped[str] = mapped_column(String(128), ForeignKey("executions.execution_id"))
    strategy_id: Mapped[str] = _strategy_fk()
    run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("runs.id"), index=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    side: Mapped[str] = mapped_column(String(4))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    price: Mapped[Decimal] = mapped_column(Money)
    filled_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class Lot(Base):
    """A FIFO tax lot opened by a buy fill; `remaining` falls as sells close it."""

    __tablename__ = "lots"
    __table_args__ = (
        CheckConstraint("remaining >= 0 AND remaining <= quantity", name="remaining_in_range"),
        Index(
            "ix_lots_open",
            "strategy_id",
            "symbol",
            "id",
            postgresql_where=text("remaining > 0"),
        ),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    strategy_id: Mapped[str] = _strategy_fk()
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    # NULL for shares a split moved here (a whole-share book's fraction).
    book_fill_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("book_fills.id"), index=True
    )
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    remaining: Mapped[Decimal] = mapped_column(Quantity)
    cost_price: Mapped[Decimal] = mapped_column(Money)


class LotClosure(Base):
    """Part of a lot closed by a sell fill, with its realised P&L."""

    __tablename__ = "lot_closures"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    lot_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("lots.id"), index=True)
    book_fill_id: Mapped[int] = mapped_column(BigInteger, ForeignKey("book_fills.id"), index=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    cost_price: Mapped[Decimal] = mapped_column(Money)
    sale_price: Mapped[Decimal] = mapped_column(Money)
    realised_pnl: Mapped[Decimal] = mapped_column(Money)


class CashEntry(Base):
    """Every movement of a book's cash; Σ amount = strategies.cash."""

    __tablename__ = "cash_entries"
    __table_args__ = (
        CheckConstraint(_in("kind", CASH_KINDS), name="kind"),
        Index("ix_cash_entries_strategy_id", "strategy_id"),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    strategy_id: Mapped[str] = _strategy_fk()
    kind: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(Money)
    book_fill_id: Mapped[int | None] = mapped_column(
        BigInteger, ForeignKey("book_fills.id"), index=True
    )
    run_id: Mapped[int | None] = _run_fk()
    counterparty: Mapped[str | None] = mapped_column(
        String(STRATEGY_ID_LENGTH), ForeignKey("strategies.id")
    )
    memo: Mapped[str | None] = mapped_column(Text)
    # The symbol a fee or dividend was paid on (its realised P&L).
    symbol: Mapped[str | None] = mapped_column(String(SYMBOL_LENGTH))
    created_at: Mapped[datetime] = _now()


class AccountActivity(Base):
    """A fee, dividend or split from the broker's account activities, booked once by its id."""

    __tablename__ = "account_activities"

    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    activity_type: Mapped[str] = mapped_column(String(16))
    activity_date: Mapped[date] = mapped_column(Date, index=True)
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH))
    # The broker's shares (sold that day, held at the record close, or the split's change)
    # and the books' own count of the same; they differ only when something is wrong.
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    books_quantity: Mapped[Decimal | None] = mapped_column(Quantity)
    net_amount: Mapped[Decimal] = mapped_column(Money)
    per_share_amount: Mapped[Decimal | None] = mapped_column(Money)
    raw: Mapped[dict[str, Any]] = mapped_column(JSONB)
    booked_at: Mapped[datetime] = _now()


class BookHolding(Base):
    """Running position of a book in a symbol: Σ open lots, and realised P&L to date."""

    __tablename__ = "book_holdings"

    strategy_id: Mapped[str] = mapped_column(
        String(STRATEGY_ID_LENGTH), ForeignKey("strategies.id"), primary_key=True
    )
    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    quantity: Mapped[Decimal] = mapped_column(Quantity)
    cost_basis: Mapped[Decimal] = mapped_column(Money)
    realised_pnl: Mapped[Decimal] = mapped_column(Money)
    updated_at: Mapped[datetime] = _now()


class Mark(Base):
    """A reference price for valuing books (today's prices of each run)."""

    __tablename__ = "marks"

    symbol: Mapped[str] = mapped_column(String(SYMBOL_LENGTH), primary_key=True)
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    price: Mapped[Decimal] = mapped_column(Money)
    run_id: Mapped[int | None] = _run_fk()


class Reconciliation(Base):
    """A check of Σ books against the broker, with every difference found."""

    __tablename__ = "reconciliations"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    run_id: Mapped[int | None] = mapped_column(BigInteger, ForeignKey("runs.id"), index=True)
    checked_at: Mapped[datetime] = _now()
    ok: Mapped[bool] = mapped_column(Boolean)
    tolerance: Mapped[Decimal] = mapped_column(Money)
    books_cash: Mapped[Decimal] = mapped_column(Money)
    broker_cash: Mapped[Decimal] = mapped_column(Money)
    differences: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)


class TradingHalt(Base):
    """`alchemiser halt`: scope '*' stops every new order; a strategy id holds that book."""

    __tablename__ = "trading_halts"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    reason: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = _now()
