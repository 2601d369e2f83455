"""Today's prices at run time: the latest trade (or the quote mid) from snapshots.

They are evidence for the run's trades, so they are recorded exactly (numeric),
with Alpaca's timestamp, per trading day; a resumed run can reload the same ones.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date

from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.logging import get_logger
from alchemiser.marketdata.alpaca import DataClient, LivePrice, live_price
from alchemiser.marketdata.store import transaction

log = get_logger(__name__)

# Snapshot symbols per request (URL length, as for bars).
SNAPSHOT_BATCH = 200


async def fetch_today_prices(client: DataClient, tickers: Iterable[str]) -> dict[str, LivePrice]:
    """Live prices of `tickers`; a ticker with neither a trade nor a quote is left out.

    Raises DataApiError when the data API fails after retries.
    """
    wanted = sorted(set(tickers))
    prices: dict[str, LivePrice] = {}
    for i in range(0, len(wanted), SNAPSHOT_BATCH):
        snapshots = await client.snapshots(wanted[i : i + SNAPSHOT_BATCH])
        for ticker, snapshot in snapshots.items():
            price = live_price(ticker, snapshot or {})
            if price is not None:
                prices[ticker] = price
    missing = [t for t in wanted if t not in prices]
    if missing:
        log.warning("no live price", tickers=missing)
    return prices


UPSERT = """
INSERT INTO today_prices (trading_day, ticker, price, source, price_at)
SELECT $1, * FROM unnest($2::text[], $3::numeric[], $4::text[], $5::timestamptz[])
ON CONFLICT (trading_day, ticker) DO UPDATE SET
    price = excluded.price, source = excluded.source,
    price_at = excluded.price_at, fetched_at = now()
"""


async def record_today_prices(
    engine: AsyncEngine, trading_day: date, prices: Mapping[str, LivePrice]
) -> None:
    """Record (or replace) the prices used on `trading_day`."""
    rows = list(prices.values())
    async with transaction(engine) as conn:
        await conn.execute(
            UPSERT,
            trading_day,
            [p.ticker for p in rows],
            [p.price for p in rows],
            [p.source for p in rows],
            [p.at for p in rows],
        )


async def load_today_prices(engine: AsyncEngine, trading_day: date) -> dict[str, LivePrice]:
    """The prices recorded for `trading_day` (e.g. for a resumed run)."""
    query = "SELECT ticker, price, source, price_at FROM today_prices WHERE trading_day = $1"
    async with transaction(engine, readonly=True) as conn:
        records = await conn.fetch(query, trading_day)
    return {
        r["ticker"]: LivePrice(r["ticker"], r["price"], r["source"], r["price_at"]) for r in records
    }
