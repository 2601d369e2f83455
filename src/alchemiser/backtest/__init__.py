"""Backtests: strategies over years of daily bars, with the live evaluator and planner rule.

- `engine`: one book through a range of sessions (decide at each close, hold to the next).
- `stats`: CAGR, volatility, Sharpe, Sortino, drawdown, Calmar, turnover.
- `command`: `alchemiser backtest` (every file, and the configured account).
- `report`: values.parquet, allocations.parquet, PNG charts and report.html.
"""
