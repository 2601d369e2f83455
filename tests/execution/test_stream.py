"""The trade-update stream as a task in the loop, against the simulator's websocket."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from alchemiser.execution.broker import Broker, OrderRequest
from alchemiser.execution.stream import TradeEvent, TradeStream
from alchemiser.execution.watchdog import is_silent
from alchemiser.sim import SimThread
from tests.execution.conftest import alpaca_config
from tests.sim.conftest import WAIT_S


class Recorder:
    def __init__(self) -> None:
        self.events: list[TradeEvent] = []
        self.connects = 0
        self.changed = asyncio.Event()
        self.fail_next = False

    async def on_event(self, event: TradeEvent) -> None:
        self.events.append(event)
        self.changed.set()
        if self.fail_next:
            self.fail_next = False
            raise RuntimeError("a handler bug")

    async def on_connected(self) -> None:
        self.connects += 1
        self.changed.set()

    async def until(self, done: object) -> None:
        async def wait() -> None:
            while not done():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()

        await asyncio.wait_for(wait(), WAIT_S)


@pytest.fixture
async def recorded(sim: SimThread) -> AsyncIterator[tuple[TradeStream, Recorder]]:
    recorder = Recorder()
    stream = TradeStream(alpaca_config(sim), recorder.on_event, recorder.on_connected)
    stream.start()
    await recorder.until(lambda: recorder.connects == 1)
    yield stream, recorder
    await stream.stop()


def fills_of(recorder: Recorder, order_id: str) -> list[TradeEvent]:
    return [e for e in recorder.events if e.order.id == order_id and e.execution_id]


async def test_fills_arrive_as_decimal_executions_with_cumulative_orders(
    recorded: tuple[TradeStream, Recorder], broker: Broker
) -> None:
    _, recorder = recorded
    sent = await broker.submit(OrderRequest("stream-buy-1", "SPY", "buy", Decimal(7)))
    await recorder.until(lambda: any(e.event == "fill" for e in fills_of(recorder, sent.id)))
    fills = fills_of(recorder, sent.id)
    assert sum(e.qty or 0 for e in fills) == Decimal(7)  # executions add up to the order
    last = fills[-1]
    assert last.order.filled_qty == Decimal(7) and last.order.status == "filled"
    assert last.position_qty == Decimal(7)
    assert all(isinstance(e.price, Decimal) and e.price > 0 for e in fills)
    assert len({e.execution_id for e in fills}) == len(fills)


async def test_a_dropped_connection_reconnects_and_announces_it_for_catch_up(
    recorded: tuple[TradeStream, Recorder], sim: SimThread
) -> None:
    stream, recorder = recorded
    sim.drop_websockets()
    await recorder.until(lambda: recorder.connects == 2)
    assert stream.connections == 2
    await stream.reconnect()  # what the silent-stream watchdog does
    await recorder.until(lambda: recorder.connects == 3)


async def test_a_failing_handler_does_not_stop_the_stream(
    recorded: tuple[TradeStream, Recorder], broker: Broker
) -> None:
    _, recorder = recorded
    recorder.fail_next = True
    first = await broker.submit(OrderRequest("stream-buy-2", "SPY", "buy", Decimal(1)))
    await recorder.until(lambda: any(e.event == "fill" for e in fills_of(recorder, first.id)))
    second = await broker.submit(OrderRequest("stream-buy-3", "QQQ", "buy", Decimal(1)))
    await recorder.until(lambda: any(e.event == "fill" for e in fills_of(recorder, second.id)))


@pytest.mark.parametrize(
    ("stream_last", "rest_filled", "now", "silent"),
    [
        (None, None, 100.0, False),  # REST found nothing
        (50.0, 90.0, 95.0, False),  # not a whole interval since REST found fills
        (50.0, 90.0, 101.0, True),  # quiet for an interval after REST found fills
        (None, 90.0, 101.0, True),  # never spoke at all
        (95.0, 90.0, 101.0, False),  # the stream spoke since
    ],
)
def test_a_stream_is_silent_when_rest_finds_fills_it_never_spoke_of(
    stream_last: float | None, rest_filled: float | None, now: float, silent: bool
) -> None:
    assert is_silent(stream_last, rest_filled, now, interval=10.0) is silent
