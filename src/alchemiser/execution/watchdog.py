"""While walks are live: read orders back over REST on a timer; revive a silent stream.

Alpaca never replays what the stream missed, and a half-open connection misses
everything without closing. So every `interval` the day's orders are read back
and booked (`Booker.catch_up`), and when REST has found fills that the stream has
not spoken of for a whole interval since, the stream is reconnected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import datetime

from alchemiser.execution.booking import Booker
from alchemiser.execution.broker import Broker
from alchemiser.execution.stream import TradeStream
from alchemiser.logging import get_logger

log = get_logger(__name__)


def is_silent(
    stream_last_event_at: float | None, rest_filled_at: float | None, now: float, interval: float
) -> bool:
    """REST found fills, and the stream has said nothing since, for a whole interval."""
    if rest_filled_at is None or now - rest_filled_at < interval:
        return False
    return stream_last_event_at is None or stream_last_event_at < rest_filled_at


@asynccontextmanager
async def watching(
    booker: Booker,
    broker: Broker,
    stream: TradeStream | None,
    since: Callable[[], datetime],
    interval: float,
) -> AsyncIterator[None]:
    async def watch() -> None:
        while True:
            await asyncio.sleep(interval)
            try:
                await booker.catch_up(broker, since())
            except Exception as exc:  # never end the watch: the walks poll their own orders
                log.warning("catch-up failed", reason=f"{type(exc).__name__}: {exc}")
            if stream is not None and is_silent(
                stream.last_event_at, booker.rest_filled_at, time.monotonic(), interval
            ):
                log.warning("trade stream silent while orders fill; reconnecting")
                booker.rest_filled_at = None
                await stream.reconnect()

    task = asyncio.create_task(watch(), name="catch-up")
    try:
        yield
    finally:
        task.cancel()
        with suppress(asyncio.CancelledError):
            await task
