"""The ledger's public functions, one import away (`from alchemiser.books import ledger`).

Every function takes an `AsyncConnection` inside a transaction the caller owns
(`async with engine.begin() as conn:`, or `retry.transact` which retries on
deadlock), so a step of the daily run is written whole or not at all. The work
is done in modules along the daily run's steps:

- `funding`: the `unallocated` book, deposits, new books, capital transfers;
- `runs`: a run's record (runs, signals, its plan, prices);
- `orders`: orders recorded before they are sent, adopted by client order id
  (`order_ids`: the ids, from a run's natural key);
- `fills`: broker executions and internal crosses, split among the books
  (`fill_batch`: many reports at once, a few statements in all);
- `postings`: the only code that writes lots, holdings and cash;
- `work`: a run's remaining work (crosses, sells, buys capped to cash);
- `activities`: fees, dividends and splits from the broker's account activities.
"""

from __future__ import annotations

from alchemiser.books.activities import (
    Activity,
    book_activities,
    fetch_activities,
    parse_activity,
)
from alchemiser.books.fill_batch import BookedFill
from alchemiser.books.fills import (
    ExecutionReport,
    OrderProgress,
    advance_orders,
    book_cross,
    book_execution,
    book_order_progress,
    book_parked,
    book_reports,
    foreign_fills,
)
from alchemiser.books.funding import (
    SyncResult,
    apply_allocation,
    deposit,
    ensure_unallocated,
    load_books,
    open_account,
    rebalance_capital,
    retire_book,
    sync_strategies,
    transfer_cash,
)
from alchemiser.books.order_ids import client_order_id, parse_client_order_id
from alchemiser.books.orders import (
    BrokerOrderRecord,
    OrderQuote,
    adopt_order,
    find_broker_orders,
    next_order,
    next_steps,
    record_broker_order,
    record_new_orders,
    reject_orders,
)
from alchemiser.books.postings import LedgerError, utcnow
from alchemiser.books.runs import (
    RunRecord,
    input_hash,
    load_intents,
    record_plan,
    record_prices,
    record_signal,
    set_run_status,
    start_run,
)
from alchemiser.books.work import (
    DEFAULT_BUY_HEADROOM,
    Work,
    affordable_buy_orders,
    close_intents,
    net_run,
    remaining_work,
)

__all__ = [
    "DEFAULT_BUY_HEADROOM",
    "Activity",
    "BookedFill",
    "BrokerOrderRecord",
    "ExecutionReport",
    "LedgerError",
    "OrderProgress",
    "OrderQuote",
    "RunRecord",
    "SyncResult",
    "Work",
    "adopt_order",
    "advance_orders",
    "affordable_buy_orders",
    "apply_allocation",
    "book_activities",
    "book_cross",
    "book_execution",
    "book_order_progress",
    "book_parked",
    "book_reports",
    "client_order_id",
    "close_intents",
    "deposit",
    "ensure_unallocated",
    "fetch_activities",
    "find_broker_orders",
    "foreign_fills",
    "input_hash",
    "load_books",
    "load_intents",
    "net_run",
    "next_order",
    "next_steps",
    "open_account",
    "parse_activity",
    "parse_client_order_id",
    "rebalance_capital",
    "record_broker_order",
    "record_new_orders",
    "record_plan",
    "record_prices",
    "record_signal",
    "reject_orders",
    "remaining_work",
    "retire_book",
    "set_run_status",
    "start_run",
    "sync_strategies",
    "transfer_cash",
    "utcnow",
]
