"""Alchemiser: run Composer strategies on one Alpaca account, each strategy in its own book."""

__version__ = "0.1.0"
