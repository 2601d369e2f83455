"""The ledger: per-strategy books, fills, lots, cash, views and the rebalance planner.

Pure logic (no database; plain dataclasses, Decimal):
- `planner`: `is_rebalance_day`, `plan_book`, `plan_liquidation` → `Intent`s.
- `netting`: `net_intents` → `NetOrder`s + `Cross`es; `split_pro_rata`,
  `split_execution`; deterministic `cross_execution_id`.
- `order_ids`: `client_order_id` from a run's natural key, and its parser.
- `capital`: `capital_transfers` (allocation changes, drift policy).
- `reconcile.compare`: books against the broker, with tolerance.

Database (an `AsyncConnection` in a transaction the caller owns):
- `ledger`: `sync_strategies` (funding from `unallocated`), `rebalance_capital`, `deposit`,
  `open_account`, `transfer_cash`, `apply_allocation`, `retire_book`, `load_books`,
  `start_run`, `set_run_status`, `record_signal`, `record_plan` (once),
  `load_intents`, `record_prices`, `record_broker_order`, `find_broker_orders`,
  `net_run` (a run's remaining crosses and orders, restart-safe), `book_cross`,
  `book_execution`, `affordable_buy_orders`.
- `reconcile`: `reconcile` (recorded), `ledger_problems` (self-check).
- `report`: the psql views as `alchemiser report` tables.

A halted strategy's book is simply not planned (it holds); a removed one is
liquidated with `plan_liquidation`, then `retire_book` sweeps its cash.
"""
