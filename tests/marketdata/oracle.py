"""A test oracle for the bar store: bars read straight from the `bars` rows.

The store's fast path reads each ticker's packed arrays (series.py); the tests
compare it with this slower read of the source of truth.
"""

from __future__ import annotations

import io
from collections.abc import Iterable
from datetime import date

import numpy as np
import polars as pl
from sqlalchemy.ext.asyncio import AsyncEngine

from alchemiser.marketdata.series import FRAME_SCHEMA, POLARS_EPOCH_OFFSET, PRICE_COLUMNS
from alchemiser.marketdata.store import transaction

# One row of `COPY ... (FORMAT binary)` for READ_ROWS: a field count, then each field's
# length and big-endian value (int4 ticker index, date as int4 days since 2000-01-01,
# five float8). Every field is fixed-width and NOT NULL, so numpy reads rows in place.
BINARY_ROW = np.dtype(
    [("fields", ">i2"), ("len_symbol", ">i4"), ("symbol", ">i4"), ("len_date", ">i4")]
    + [("date", ">i4")]
    + [field for c in PRICE_COLUMNS for field in ((f"len_{c}", ">i4"), (c, ">f8"))]
)
BINARY_HEADER = 19  # signature (11), flags (4), header extension length (4)
BINARY_TRAILER = 2
READ_ROWS = """
SELECT t.i::int4, b.date, b.open, b.high, b.low, b.close, b.volume
FROM unnest($1::text[]) WITH ORDINALITY AS t(ticker, i)
CROSS JOIN LATERAL (
    SELECT date, open, high, low, close, volume FROM bars
    WHERE ticker = t.ticker AND date < $2 AND date >= $3 ORDER BY date
) AS b
"""


async def read_bar_rows(
    engine: AsyncEngine, tickers: Iterable[str], before: date, since: date | None = None
) -> pl.DataFrame:
    """As `store.read_bars`, straight from the `bars` rows (the source of truth; slower)."""
    names = sorted(set(tickers))
    buffer = io.BytesIO()
    async with transaction(engine, readonly=True) as conn:
        await conn.copy_from_query(
            READ_ROWS, names, before, since or date.min, output=buffer, format="binary"
        )
    raw = buffer.getbuffer()
    count = (len(raw) - BINARY_HEADER - BINARY_TRAILER) // BINARY_ROW.itemsize
    rows = np.frombuffer(raw, dtype=BINARY_ROW, count=max(count, 0), offset=BINARY_HEADER)
    return pl.DataFrame(
        {
            "symbol": pl.Series(names, dtype=pl.String).gather(rows["symbol"].astype(np.int64) - 1),
            "date": pl.Series(rows["date"].astype(np.int32) + POLARS_EPOCH_OFFSET).cast(pl.Date),
            **{c: rows[c].astype(np.float64) for c in PRICE_COLUMNS},
        },
        schema=FRAME_SCHEMA,
    ).sort("symbol", "date")
