"""Packed per-ticker columns: the fast read path of the bar store.

Returning 1.5 million rows from `bars` costs Postgres about a microsecond a row in
any format, too slow for a run. So beside each ticker's rows, `bar_series` keeps its
bars up to `last_date` as six packed big-endian arrays (days since 2000-01-01 as
int4, then float8 open/high/low/close/volume): one row per ticker that numpy reads
in place. Bars after `last_date` (the daily top-ups) are the "tail", read from
`bars`; when a ticker's tail grows past a threshold it is folded into the arrays.

Invariant, kept by `store.write_bars` in the same transaction as the rows: the
arrays hold exactly the ticker's bars dated up to `last_date`, in date order.
`bars` stays the source of truth; `rebuild_series` restores the arrays from it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

import numpy as np
import numpy.typing as npt
import polars as pl

from alchemiser.marketdata.alpaca import BarRow

PRICE_COLUMNS = ("open", "high", "low", "close", "volume")
# The evaluator's names (dsl and `alchemiser evaluate --bars`).
FRAME_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "date": pl.Date(),
    **{c: pl.Float64() for c in PRICE_COLUMNS},
}
EPOCH = date(2000, 1, 1)  # Postgres' own date epoch
EPOCH_ORDINAL = EPOCH.toordinal()
# Days from 1970-01-01 (polars' Date) to Postgres' epoch: 10957.
POLARS_EPOCH_OFFSET = (EPOCH - date(1970, 1, 1)).days
DAY_TYPE, PRICE_TYPE = np.dtype(">i4"), np.dtype(">f8")
# A ticker's tail is folded into its arrays past TAIL_MIN + (hash % TAIL_SPREAD) bars,
# so tickers topped up together do not all fold on the same day.
TAIL_MIN, TAIL_SPREAD = 40, 40

IntArray = npt.NDArray[np.int32]
FloatArray = npt.NDArray[np.float64]


def days_since_epoch(day: date) -> int:
    return day.toordinal() - EPOCH_ORDINAL


def series_record(ticker: str, rows: Sequence[BarRow]) -> tuple[Any, ...]:
    """The `bar_series` row for a whole history; raises ValueError unless dates ascend."""
    columns = list(zip(*rows, strict=True))
    days = np.fromiter((d.toordinal() for d in columns[1]), np.int64, len(rows)) - EPOCH_ORDINAL
    if len(days) > 1 and not bool(np.all(days[1:] > days[:-1])):
        raise ValueError(f"{ticker}: bars are not in strictly ascending date order")
    prices = [np.asarray(columns[i], dtype=PRICE_TYPE).tobytes() for i in range(2, 7)]
    return (ticker, columns[1][-1], len(rows), days.astype(DAY_TYPE).tobytes(), *prices)


SERIES_COLUMNS = ("ticker", "last_date", "bar_count", "dates", *PRICE_COLUMNS)


def fold_thresholds(tickers: Sequence[str]) -> list[int]:
    return [TAIL_MIN + zlib.crc32(t.encode()) % TAIL_SPREAD for t in tickers]


def _packed(column: str, cast: str) -> str:
    return f"string_agg({cast}, ''::bytea ORDER BY b.date) AS {column}"


# Folds the tails that outgrew their threshold into the packed arrays.
FOLD_TAILS = f"""
UPDATE bar_series AS s SET
    dates = s.dates || t.dates,
    {", ".join(f"{c} = s.{c} || t.{c}" for c in PRICE_COLUMNS)},
    last_date = t.last_date,
    bar_count = s.bar_count + t.n
FROM unnest($1::text[], $2::int[]) AS f(ticker, threshold)
JOIN bar_series AS s2 ON s2.ticker = f.ticker
CROSS JOIN LATERAL (
    SELECT count(*) AS n, max(b.date) AS last_date,
        {_packed("dates", "int4send(b.date - DATE '2000-01-01')")},
        {", ".join(_packed(c, f"float8send(b.{c})") for c in PRICE_COLUMNS)}
    FROM bars AS b WHERE b.ticker = s2.ticker AND b.date > s2.last_date
) AS t
WHERE s.ticker = s2.ticker AND t.n >= f.threshold
"""
# Rebuild from `bars` (repair; not on any hot path).
REBUILD = f"""
INSERT INTO bar_series AS s ({", ".join(SERIES_COLUMNS)})
SELECT b.ticker, max(b.date), count(*),
    {_packed("dates", "int4send(b.date - DATE '2000-01-01')")},
    {", ".join(_packed(c, f"float8send(b.{c})") for c in PRICE_COLUMNS)}
FROM bars AS b WHERE b.ticker = ANY($1::text[])
GROUP BY b.ticker
ON CONFLICT (ticker) DO UPDATE SET
    {", ".join(f"{c} = excluded.{c}" for c in SERIES_COLUMNS[1:])}
"""

READ_PACKED = f"SELECT {', '.join(SERIES_COLUMNS)} FROM bar_series WHERE ticker = ANY($1::text[])"
READ_TAILS = """
SELECT t.ticker, b.date, b.open, b.high, b.low, b.close, b.volume
FROM unnest($1::text[]) AS t(ticker)
LEFT JOIN bar_series AS s ON s.ticker = t.ticker
CROSS JOIN LATERAL (
    SELECT date, open, high, low, close, volume FROM bars
    WHERE ticker = t.ticker AND date > coalesce(s.last_date, '-infinity'::date)
    ORDER BY date
) AS b
"""


async def read_frame(
    conn: Any,
    tickers: Sequence[str],
    before: date,
    since: date,
    today: tuple[date, Mapping[str, float]] | None = None,
) -> pl.DataFrame:
    """Bars of `tickers` with since <= date < before: packed arrays plus tails, one snapshot.

    `today` = (day, prices) appends a row on `day` to each priced ticker, with every
    price field set to its price and volume 0; the frame stays sorted without a sort.
    """
    names = sorted(set(tickers))
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        # Compiling these simple scans costs more than running them.
        await conn.execute("SET LOCAL jit = off")
        packed = {r["ticker"]: r for r in await conn.fetch(READ_PACKED, names)}
        tails: dict[str, list[Any]] = {}
        for r in await conn.fetch(READ_TAILS, names):
            tails.setdefault(r["ticker"], []).append(r)
    window = days_since_epoch(since), days_since_epoch(before)
    day, prices = (days_since_epoch(today[0]), today[1]) if today else (0, {})
    parts = [
        _ticker_columns(packed.get(t), tails.get(t, []), window, (day, prices.get(t)))
        for t in names
    ]
    counts = np.array([len(p[0]) for p in parts], dtype=np.int64)
    symbol_index = np.repeat(np.arange(len(names), dtype=np.int64), counts)
    days = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int32)
    return pl.DataFrame(
        {
            "symbol": pl.Series(names, dtype=pl.String).gather(symbol_index),
            "date": pl.Series(days.astype(np.int32) + POLARS_EPOCH_OFFSET).cast(pl.Date),
            **{
                c: np.concatenate([p[1][i] for p in parts]) if parts else np.empty(0)
                for i, c in enumerate(PRICE_COLUMNS)
            },
        },
        schema=FRAME_SCHEMA,
    )


def _ticker_columns(
    packed: Any, tail: list[Any], window: tuple[int, int], extra: tuple[int, float | None]
) -> tuple[IntArray, list[FloatArray]]:
    """One ticker's days and price columns within the window [lo, hi), then `extra`'s row."""
    days = np.frombuffer(packed["dates"], DAY_TYPE) if packed else np.empty(0, DAY_TYPE)
    prices = [
        np.frombuffer(packed[c], PRICE_TYPE) if packed else np.empty(0, PRICE_TYPE)
        for c in PRICE_COLUMNS
    ]
    if tail:
        days = np.concatenate([days, [days_since_epoch(r["date"]) for r in tail]])
        prices = [
            np.concatenate([p, np.array([r[c] for r in tail], dtype=np.float64)])
            for p, c in zip(prices, PRICE_COLUMNS, strict=True)
        ]
    keep = (days >= window[0]) & (days < window[1])
    days, prices = days[keep].astype(np.int32), [p[keep].astype(np.float64) for p in prices]
    day, price = extra
    if price is not None:
        days = np.append(days, np.int32(day))
        row = (price, price, price, price, 0.0)
        prices = [np.append(p, v) for p, v in zip(prices, row, strict=True)]
    return days, prices
