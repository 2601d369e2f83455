"""The trade-update stream: alpaca-py's `TradingStream` as a task in our event loop.

`TradingStream.run()` calls `asyncio.run` and cannot live inside a loop, so its
private-but-stable `_run_forever` runs as a task and is stopped with `stop_ws`
(wire reference §4). Alpaca never replays what a dropped connection missed, so
every (re)connect is announced through `on_connected`: the owner reads open and
recent orders over REST then, and books them by order progress. `reconnect()`
is for a connection that has gone silent (half-open) while the REST side shows
activity the stream never delivered.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

from alpaca.trading.stream import TradingStream

from alchemiser.execution.broker import OrderSnapshot
from alchemiser.logging import get_logger
from alchemiser.settings import AlpacaConfig

log = get_logger(__name__)

T = TypeVar("T")

# alpaca-py's ping timeout is 180 s; a half-open connection should be noticed sooner.
PING_INTERVAL_SECONDS = 10.0
PING_TIMEOUT_SECONDS = 20.0
MAX_QUEUE = 1024


@dataclass(frozen=True, slots=True)
class TradeEvent:
    """One trade update. `qty`/`price` are this execution's; the order's are cumulative."""

    event: str
    order: OrderSnapshot
    at: datetime
    execution_id: str | None
    qty: Decimal | None
    price: Decimal | None
    position_qty: Decimal | None

    @classmethod
    def from_wire(cls, data: Mapping[str, Any]) -> TradeEvent:
        return cls(
            event=str(data["event"]),
            order=OrderSnapshot.from_wire(data["order"]),
            at=datetime.fromisoformat(str(data["timestamp"]).replace("Z", "+00:00")),
            execution_id=_optional(data.get("execution_id"), str),
            qty=_optional(data.get("qty"), _decimal),
            price=_optional(data.get("price"), _decimal),
            position_qty=_optional(data.get("position_qty"), _decimal),
        )


OnEvent = Callable[[TradeEvent], Awaitable[None]]
OnConnected = Callable[[], Awaitable[None]]


class _AnnouncingStream(TradingStream):
    """alpaca-py's stream, calling back each time it has connected and is listening."""

    def __init__(self, on_listening: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._on_listening = on_listening

    async def _start_ws(self) -> None:
        await super()._start_ws()  # type: ignore[no-untyped-call]
        self._on_listening()


class TradeStream:
    def __init__(
        self,
        alpaca: AlpacaConfig,
        on_event: OnEvent,
        on_connected: OnConnected,
        ping_timeout_seconds: float = PING_TIMEOUT_SECONDS,
    ) -> None:
        self._on_event = on_event
        self._on_connected = on_connected
        self._stream = _AnnouncingStream(
            self._listening,
            api_key=alpaca.api_key.get_secret_value(),
            secret_key=alpaca.secret_key.get_secret_value(),
            paper=alpaca.paper,
            raw_data=True,
            url_override=alpaca.stream_url,
            websocket_params={
                "ping_interval": min(PING_INTERVAL_SECONDS, ping_timeout_seconds),
                "ping_timeout": ping_timeout_seconds,
                "max_queue": MAX_QUEUE,
            },
        )
        self._stream.subscribe_trade_updates(self._dispatch)  # before it starts (§4)
        self._task: asyncio.Task[None] | None = None
        self._callbacks: set[asyncio.Task[None]] = set()
        self.connections = 0
        self.connected = asyncio.Event()
        self.last_event_at: float | None = None  # time.monotonic() of the last update

    def start(self) -> None:
        forever = self._stream._run_forever()  # type: ignore[no-untyped-call]
        self._task = asyncio.create_task(forever, name="trade-stream")

    async def stop(self) -> None:
        await self._stream.stop_ws()
        await self._stream.close()  # ends the 5 s receive wait at once
        if self._task is not None:
            await self._task
        for task in list(self._callbacks):
            await task
        self.connected.clear()

    async def reconnect(self) -> None:
        """Drop the connection; alpaca-py reconnects, and `on_connected` runs again."""
        log.warning("trade stream reconnecting", connections=self.connections)
        self.connected.clear()
        await self._stream.close()

    def _listening(self) -> None:
        self.connections += 1
        self.connected.set()
        log.info("trade stream listening", connections=self.connections)
        task = asyncio.create_task(self._run_on_connected())
        self._callbacks.add(task)
        task.add_done_callback(self._callbacks.discard)

    async def _run_on_connected(self) -> None:
        try:
            await self._on_connected()
        except Exception:
            log.exception("trade stream catch-up failed")

    async def _dispatch(self, message: Mapping[str, Any]) -> None:
        self.last_event_at = time.monotonic()
        try:
            event = TradeEvent.from_wire(message["data"])
        except (KeyError, TypeError, ValueError, ArithmeticError):
            log.error("trade update unreadable", message=str(message)[:500])
            return
        try:
            await self._on_event(event)
        except Exception:
            # One bad update must not stop the stream; REST catch-up books what it missed.
            log.exception("trade update handler failed", order_id=event.order.id)


def _decimal(value: object) -> Decimal:
    return Decimal(str(value))


def _optional(value: object, convert: Callable[[Any], T]) -> T | None:
    return None if value is None or value == "" else convert(value)
