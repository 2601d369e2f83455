"""/metrics: Prometheus text from a private registry, filled at each scrape.

Values come from the ledger snapshot (`status.read_snapshot`) and the daemon's own
state, so a scrape after a restart shows the books and the last run as they are.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Gauge, generate_latest

from alchemiser.daemon.status import Snapshot

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.book_value = Gauge(
            "alchemiser_book_value_dollars", "Each book's value", ["strategy"], registry=r
        )
        self.book_drift = Gauge(
            "alchemiser_book_drift",
            "Each book's share of the account minus its allocation",
            ["strategy"],
            registry=r,
        )
        self.run_duration = Gauge(
            "alchemiser_last_run_duration_seconds",
            "The last daily run's duration (of its final attempt, when it was resumed)",
            registry=r,
        )
        self.orders = Gauge(
            "alchemiser_last_run_orders",
            "The last daily run's broker orders by final status",
            ["status"],
            registry=r,
        )
        self.slippage = Gauge(
            "alchemiser_last_run_fill_slippage_bps",
            "Average fill against the plan's price, in basis points (positive: worse)",
            ["symbol", "side"],
            registry=r,
        )
        self.stream = Gauge(
            "alchemiser_trade_stream_connected", "1 while the trade-update stream is up", registry=r
        )
        self.last_success = Gauge(
            "alchemiser_last_successful_run_timestamp_seconds",
            "When the last daily run completed (Unix time)",
            registry=r,
        )
        self.reconciled = Gauge(
            "alchemiser_books_reconciled",
            "1 when the books last agreed with the broker",
            registry=r,
        )

    def render(self, snapshot: Snapshot, *, stream_connected: bool, reconciled: bool) -> bytes:
        for gauge in (self.book_value, self.book_drift, self.orders, self.slippage):
            gauge.clear()  # a book or symbol that is gone is not reported forever
        for book in snapshot.books:
            self.book_value.labels(book.strategy_id).set(float(book.value))
            if book.drift is not None:
                self.book_drift.labels(book.strategy_id).set(float(book.drift))
        run = snapshot.last_run
        if run is not None and run["finished_at"] is not None:
            self.run_duration.set(run_seconds(run))
        for status, count in snapshot.orders.items():
            self.orders.labels(status).set(count)
        for (symbol, side), bps in snapshot.slippage_bps.items():
            self.slippage.labels(symbol, side).set(float(bps))
        if snapshot.last_success is not None:
            self.last_success.set(snapshot.last_success.timestamp())
        self.stream.set(int(stream_connected))
        self.reconciled.set(int(reconciled))
        return generate_latest(self.registry)


def run_seconds(run: Mapping[str, Any]) -> float:
    """How long the run's final attempt took. A resumed run started hours earlier;
    the time in between (the daemon down) is not the run's. Each attempt records its
    step times from its own start, the last step last."""
    steps = [v for v in (run.get("timings") or {}).values() if isinstance(v, int | float)]
    if steps:
        return float(max(steps))
    return float((run["finished_at"] - run["started_at"]).total_seconds())
