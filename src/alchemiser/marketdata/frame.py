"""The evaluator's input: one polars frame of adjusted daily bars, "today" last.

Columns symbol, date, open, high, low, close, volume (float64), one row per symbol
and day, sorted by symbol then date. This is also the Parquet layout that
`alchemiser evaluate --bars` reads and `alchemiser data export` writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path
from typing import Literal

import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.marketdata.alpaca import LivePrice
from alchemiser.marketdata.series import FRAME_SCHEMA
from alchemiser.marketdata.store import read_bars

TodayPriceMode = Literal["live", "previous_close"]


async def build_price_frame(
    engine: AsyncEngine,
    tickers: Iterable[str],
    as_of: date,
    *,
    mode: TodayPriceMode = "live",
    today_prices: Mapping[str, LivePrice] | None = None,
    since: date | None = None,
) -> pl.DataFrame:
    """The price frame for a run on `as_of`.

    Bars strictly before `as_of` (never one after it, and never a partial bar of
    `as_of` itself), then in "live" mode one row per ticker dated `as_of` whose
    open/high/low/close are today's live price (volume 0). In "previous_close" mode
    the frame ends at the previous session, so the evaluator's "today" is
    yesterday's close (evaluate it as of that session: the evaluator needs a row
    on its as-of date; see `run.RunData.evaluation_date`). A ticker without a live
    price gets no `as_of` row: the freshness check fails its strategies.
    """
    if mode == "previous_close" or not today_prices:
        return await read_bars(engine, tickers, before=as_of, since=since)
    prices = {t: float(p.price) for t, p in today_prices.items()}
    return await read_bars(engine, tickers, before=as_of, since=since, today=(as_of, prices))


async def historical_frame(
    engine: AsyncEngine, tickers: Iterable[str], as_of: date, since: date | None = None
) -> pl.DataFrame:
    """Bars through `as_of` inclusive: the as-of session's close is "today" (backtests)."""
    return await read_bars(engine, tickers, before=as_of + timedelta(days=1), since=since)


def write_parquet(frame: pl.DataFrame, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.select(list(FRAME_SCHEMA)).write_parquet(path)
