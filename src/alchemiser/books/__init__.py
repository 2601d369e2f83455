"""The ledger: per-strategy books, fills, lots, cash, views and the rebalance planner.

Pure logic (no database; plain dataclasses, Decimal):
- `planner`: `is_rebalance_day`, `plan_book`, `plan_liquidation` → `Intent`s.
- `netting`: `net_intents` → `NetOrder`s + `Cross`es; `split_pro_rata`,
  `split_execution`; deterministic `cross_execution_id`.
- `order_ids`: `client_order_id` from a run's natural key, and its parser.
- `capital`: `capital_transfers` (allocation changes, drift policy).
- `reconcile.compare`: books against the broker, with tolerance.

Database (an `AsyncConnection` in a transaction the caller owns; run bookings
through `retry.transact`, which retries deadlock and serialization victims):
- `ledger`: every public function below, one import away.
- `funding`: `sync_strategies` (funding from `unallocated`), `rebalance_capital`,
  `deposit`, `open_account`, `transfer_cash`, `apply_allocation`, `retire_book`, `load_books`.
- `runs`: `start_run`, `set_run_status`, `record_signal`, `record_plan` (once, with
  `input_hash`), `load_intents`, `record_prices`.
- `orders`: `record_broker_order` (before sending; status only forward), `next_order`
  (a walk's next step and its id), `adopt_order`, `find_broker_orders`.
- `fills`: `book_execution` (stream), `book_order_progress` (REST), `book_reports`
  (a batch of both, and statuses), `book_cross`; fills of unrecorded own orders
  parked, `foreign_fills` reported. `fill_batch`: a batch's bookings, set-based.
- `postings`: the only writer of lots, holdings and cash.
- `bulk`: constant statements over one array per column, for the hot writes.
- `work`: `remaining_work` (crosses, sells, buys capped to cash), `net_run`,
  `affordable_buy_orders`, `close_intents`.
- `activities`: `fetch_activities`, `book_activities` (fees, dividends, splits).
- `reconcile`: `reconcile` (recorded), `ledger_problems` (self-check).
- `report`: the psql views as `alchemiser report` tables.

A halted strategy's book is simply not planned (it holds); a removed one is
liquidated with `plan_liquidation`, then `retire_book` sweeps its cash.
"""
