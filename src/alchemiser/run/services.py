"""What a run talks to, wired once: the ledger, the broker, market data, the trade stream.

`trade-now` opens these for one run; the daemon keeps them for its lifetime. The
stream books every update (`Booker.event`) and hands it to the walk that owns the
order; after every (re)connect the orders of the day are read back over REST and
booked (`Booker.catch_up`), since Alpaca never replays what a dropped stream missed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.execution.booking import Booker
from alchemiser.execution.broker import Broker
from alchemiser.execution.pricing import Quote
from alchemiser.execution.quotes import QuoteBoard
from alchemiser.execution.stream import TradeEvent, TradeStream
from alchemiser.execution.walk import WalkRouter
from alchemiser.logging import get_logger
from alchemiser.market_calendar import NEW_YORK
from alchemiser.marketdata.alpaca import DataClient
from alchemiser.settings import Settings

log = get_logger(__name__)


@dataclass
class Services:
    engine: AsyncEngine
    booker: Booker
    broker: Broker
    data: DataClient
    router: WalkRouter
    stream: TradeStream | None = None
    # The broker's clock minus ours: the run's time comes from the broker.
    clock_offset: timedelta = timedelta(0)

    def __post_init__(self) -> None:
        self.quotes = QuoteBoard(self.data)

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    async def quote(self, symbol: str) -> Quote:
        return await self.quotes.quote(symbol)

    async def on_event(self, event: TradeEvent) -> None:
        await self.booker.event(event)  # first the books, then the walk
        await self.router.on_event(event)

    async def on_connected(self) -> None:
        await self.booker.catch_up(self.broker, self.start_of_day())

    def start_of_day(self) -> datetime:
        today = self.now().astimezone(NEW_YORK).date()
        return datetime.combine(today, datetime.min.time(), NEW_YORK).astimezone(UTC)

    async def sync_clock(self) -> datetime:
        """Read the broker's clock; `now()` follows it from here on."""
        clock = await self.broker.clock()
        broker_now = datetime.fromisoformat(str(clock["timestamp"]).replace("Z", "+00:00"))
        self.clock_offset = broker_now - datetime.now(UTC)
        return broker_now


@asynccontextmanager
async def open_services(settings: Settings, engine: AsyncEngine) -> AsyncIterator[Services]:
    broker = Broker(settings.alpaca, settings.execution)
    services = Services(
        engine,
        Booker(engine),
        broker,
        DataClient(settings.alpaca, settings.marketdata),
        WalkRouter(),
    )
    try:
        await services.sync_clock()
        services.stream = TradeStream(settings.alpaca, services.on_event, services.on_connected)
        services.stream.start()
        yield services
    finally:
        if services.stream is not None:
            await services.stream.stop()
        broker.close()
