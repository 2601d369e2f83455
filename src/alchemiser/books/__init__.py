"""The ledger: per-strategy books, fills, lots, cash, views and the rebalance planner."""
