"""One simulator per test session, reset before every test, and real alpaca-py clients.

The REST clients are synchronous, so the simulator runs on its own thread and loop
(`SimThread`); trade updates are collected by a real `TradingStream` on a third thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable, Iterator
from datetime import datetime
from decimal import Decimal
from typing import TypeVar

import pytest
from alpaca.data.historical import StockHistoricalDataClient
from alpaca.trading.client import TradingClient
from alpaca.trading.models import TradeUpdate
from alpaca.trading.stream import TradingStream

from alchemiser.market_calendar import NEW_YORK
from alchemiser.sim import SimConfig, SimThread
from alchemiser.sim.core import TUNABLE

SEED = 7
# A Wednesday morning in the middle of a regular session.
BASE_NOW = datetime(2026, 11, 18, 11, 0, tzinfo=NEW_YORK)
FILL_WAIT_SCALE = 0.001  # simulated minutes of waiting become milliseconds
WAIT_S = 15.0  # generous upper bound for anything asynchronous; never a timing assertion
RETRY_WAIT_S = 0.05
REQUEST_TIMEOUT_S = 20


C = TypeVar("C", TradingClient, StockHistoricalDataClient)


def fast_client(client: C) -> C:
    """Short retry waits (the default is a blocking 3 s) and a request timeout."""
    client._retry_wait = RETRY_WAIT_S
    session = client._session
    session.request = functools.partial(session.request, timeout=REQUEST_TIMEOUT_S)
    return client


def wait_until(predicate: Callable[[], object], timeout: float = WAIT_S) -> None:
    done = threading.Event()
    deadline = threading.Timer(timeout, done.set)
    deadline.start()
    try:
        while not predicate():
            if done.wait(0.01):
                raise AssertionError("condition not reached")
    finally:
        deadline.cancel()


class TradeUpdates:
    """A real TradingStream on its own thread, recording every update it receives."""

    def __init__(self, sim: SimThread) -> None:
        self.stream = TradingStream(sim.api_key, sim.secret_key, url_override=sim.stream_url)
        self.received: list[TradeUpdate] = []
        self._cond = threading.Condition()
        self.stream.subscribe_trade_updates(self._on_update)
        self._thread = threading.Thread(target=self.stream.run, daemon=True)

    async def _on_update(self, update: TradeUpdate) -> None:
        with self._cond:
            self.received.append(update)
            self._cond.notify_all()

    def start(self) -> None:
        self._thread.start()

    def stop(self, sim: SimThread) -> None:
        self.stream.stop()
        sim.drop_websockets()  # ends the client's 5 s receive wait at once
        self._thread.join(10)

    def for_order(self, order_id: object) -> list[TradeUpdate]:
        with self._cond:
            return [u for u in self.received if str(u.order.id) == str(order_id)]

    def events(self, order_id: object) -> list[str]:
        return [str(u.event) for u in self.for_order(order_id)]

    def wait_event(self, order_id: object, event: str, timeout: float = WAIT_S) -> TradeUpdate:
        """The first `event` update for the order, waiting for it if needed."""

        def found() -> TradeUpdate | None:
            return next((u for u in self.for_order(order_id) if str(u.event) == event), None)

        with self._cond:
            if not self._cond.wait_for(lambda: found() is not None, timeout):
                raise AssertionError(f"no {event} for {order_id}: {self.events(order_id)}")
        result = found()
        assert result is not None
        return result


@pytest.fixture(scope="session")
def sim() -> Iterator[SimThread]:
    with SimThread(
        seed=SEED, now=BASE_NOW, fill_wait_scale=FILL_WAIT_SCALE, quote_interval=0.05
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def fresh_sim(sim: SimThread) -> Iterator[None]:
    sim.reset()
    sim.set_clock(now=BASE_NOW, speed=1.0, virtual=False)
    defaults = {name: getattr(SimConfig(), name) for name in TUNABLE}
    defaults.update(fill_wait_scale=FILL_WAIT_SCALE, partial_fill_notional=Decimal(50000))
    sim.configure(**defaults)
    yield
    # The broker's index of open orders agrees with the orders' statuses, whatever
    # the test did to them (fills, replaces, cancels, expiries, rejections).
    indexed, actual = sim.call(
        lambda s: (
            list(s.broker.open_orders),
            [o.id for o in s.broker.orders.values() if o.is_open],
        )
    )
    assert indexed == actual


@pytest.fixture(scope="session")
def trading(sim: SimThread) -> TradingClient:
    return fast_client(TradingClient(sim.api_key, sim.secret_key, url_override=sim.trading_url))


@pytest.fixture(scope="session")
def data(sim: SimThread) -> StockHistoricalDataClient:
    return fast_client(
        StockHistoricalDataClient(sim.api_key, sim.secret_key, url_override=sim.data_url)
    )


@pytest.fixture(scope="session")
def stream(sim: SimThread) -> Iterator[TradeUpdates]:
    updates = TradeUpdates(sim)
    updates.start()
    wait_until(lambda: sim.state()["trade_listeners"] >= 1)
    yield updates
    updates.stop(sim)


@pytest.fixture
def updates(stream: TradeUpdates, sim: SimThread) -> TradeUpdates:
    """The session's trade-update collector, connected (it may have been dropped)."""
    wait_until(lambda: sim.state()["trade_listeners"] >= 1)
    return stream
