"""Deterministic made-up daily prices, for tests, benchmarks and demos.

Pure: no I/O, no global random state. Each ticker gets a random walk whose
daily moves come from hashing (ticker, day, seed), so the same call always gives
the same frame, and adding a ticker does not change the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta

import polars as pl

_WEEKEND = 5
_HASH_SCALE = 1_000_000


def weekdays_ending(end: date, count: int) -> list[date]:
    """`count` Monday-to-Friday dates, the last one `end` (or the weekday before)."""
    days: list[date] = []
    day = end
    while len(days) < count:
        if day.weekday() < _WEEKEND:
            days.append(day)
        day -= timedelta(days=1)
    return days[::-1]


def random_walk_prices(tickers: Iterable[str], end: date, days: int, seed: int = 0) -> pl.DataFrame:
    """Columns symbol, date, open, high, low, close, volume; one row per ticker and day."""
    calendar = pl.DataFrame({"date": weekdays_ending(end, days)}).with_row_index("day")
    symbols = pl.DataFrame({"symbol": sorted(set(tickers))}, schema={"symbol": pl.String})
    frame = symbols.join(calendar, how="cross")
    uniform = (
        pl.concat_str(pl.col("symbol"), pl.col("day").cast(pl.String), separator="|")
        .hash(seed)
        .mod(_HASH_SCALE)
        .cast(pl.Float64)
        / _HASH_SCALE
    )
    vol = 0.005 + pl.col("symbol").hash(seed + 1).mod(30).cast(pl.Float64) / 1000
    move = ((uniform - 0.5) * 2 * vol * 1.7 + 0.0003).alias("move")
    frame = frame.with_columns(move).with_columns(
        (100.0 * (1 + pl.col("move")).log().cum_sum().over("symbol").exp()).alias("close")
    )
    return frame.select(
        "symbol",
        "date",
        (pl.col("close") * (1 - pl.col("move") / 2)).alias("open"),
        (pl.col("close") * (1 + vol)).alias("high"),
        (pl.col("close") * (1 - vol)).alias("low"),
        "close",
        (1_000_000.0 + pl.col("day").cast(pl.Float64)).alias("volume"),
    ).sort("symbol", "date")
