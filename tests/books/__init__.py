"""Tests of the books: planner, netting, ledger, reconciliation, views."""
