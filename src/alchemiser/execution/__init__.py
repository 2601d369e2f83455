"""Broker adapter, trade-update stream, walk-the-book and the two-phase runner."""
