"""Indicators (spec §4) and the price store they read.

`PriceHistory` wraps a price frame (symbol, date, close, ...). Each indicator is
computed once per (indicator, ticker, parameters) as a whole series with polars,
cached, so evaluating another date or another strategy is a list lookup. A
filter's asset children are computed together in one query (`prefetch`).
max-drawdown is the exception: a whole series costs days x window, so its value
is computed (in plain Python) for each requested day and kept.

Group NAVs (spec §5) are simulated by the columns (`dsl.columns`), which compute
an indicator on many NAV windows at once with `values_on`; `value_on` is its
one-window twin (max-drawdown on demand).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, NoReturn

import numpy as np
import numpy.typing as npt
import polars as pl
from numpy.lib.stride_tricks import sliding_window_view

from alchemiser.dsl.ast import Params, param, window_of
from alchemiser.dsl.errors import StrategyDataError

# Sample standard deviation (ddof 1) for stdev-return and stdev-price (spec §4).
STDEV_DDOF = 1
# max-drawdown over the last N closes, as the spec's table defines it ("largest
# peak-to-trough fall over the last N closes"), not over N returns (N+1 closes).
MAX_DRAWDOWN_SPANS_N_RETURNS = False
# Recursive indicators on a group's simulated NAV get this many extra days (spec §5).
NAV_WARMUP_DAYS = 250
# RSI when the average loss is 0 (spec §4), whatever the average gain.
RSI_WHEN_NO_LOSS = 100.0
PERCENT = 100.0

# Computed per requested day rather than as a whole series (see `_drawdown`).
_LAZY = frozenset({"max-drawdown"})

RECURSIVE = frozenset(
    {
        "rsi",
        "exponential-moving-average-price",
        "percentage-price-oscillator",
        "percentage-price-oscillator-signal",
    }
)

NAN = math.nan

Floats = npt.NDArray[np.float64]
Bools = npt.NDArray[np.bool_]
Ints = npt.NDArray[np.int64]


def _p(params: Params, key: str) -> int:
    """A parameter the indicator cannot do without (the parser guarantees it)."""
    value = param(params, key)
    if value is None:
        raise ValueError(f"indicator parameter :{key} is missing")
    return value


def closes_needed(name: str, params: Params) -> int:
    """How many closes (ending today) an indicator needs at least."""
    if name == "current-price":
        return 1
    if name in ("moving-average-price", "stdev-price", "exponential-moving-average-price"):
        return _p(params, "window")
    if name == "max-drawdown":
        return _p(params, "window") + (1 if MAX_DRAWDOWN_SPANS_N_RETURNS else 0)
    if name in ("moving-average-return", "cumulative-return", "stdev-return", "rsi"):
        return _p(params, "window") + 1
    long = max(_p(params, "short-window"), _p(params, "long-window"))
    if name == "percentage-price-oscillator":
        return long
    return long + _p(params, "smooth-window") - 1


# --------------------------------------------------------------- whole series


# Each whole series is one polars expression over the column `c` of closes, so
# computing it is a single query (per-call overhead, not arithmetic, dominates).
_C = pl.col("c")


def _seeded_ema(values: pl.Expr, window: int, alpha: float, start: int = 0) -> pl.Expr:
    """EMA of `values` seeded with the mean of its first `window` values from row
    `start` on; null before the seed."""
    idx = pl.int_range(pl.len())
    seed_at = start + window - 1
    seed = values.slice(start, window).mean()
    seeded = pl.when(idx < seed_at).then(None).when(idx == seed_at).then(seed).otherwise(values)
    return seeded.ewm_mean(alpha=alpha, adjust=False)


def _ema(values: pl.Expr, window: int, start: int = 0) -> pl.Expr:
    return _seeded_ema(values, window, 2.0 / (window + 1), start)


def _rsi_averages(window: int) -> tuple[pl.Expr, pl.Expr]:
    """RSI's average gain and average loss (null before their seed)."""
    change = _C.diff()  # null at row 0, so the seed covers rows 1..window
    gain = _seeded_ema(change.clip(lower_bound=0.0), window, 1.0 / window, start=1)
    loss = _seeded_ema((-change).clip(lower_bound=0.0), window, 1.0 / window, start=1)
    return gain, loss


def _rsi_from_averages(gain: Floats, loss: Floats) -> Floats:
    """RSI from its averages (NaN where they are): the same IEEE operations, in
    the same order, as a polars expression would do, without computing the
    (recursive) average loss once for each of its three uses there."""
    with np.errstate(all="ignore"):
        value = PERCENT - PERCENT / (1 + gain / loss)
    out: Floats = np.where(loss == 0, RSI_WHEN_NO_LOSS, value)
    out[np.isnan(loss)] = NAN
    return out


def _ppo(params: Params) -> pl.Expr:
    short = _ema(_C, _p(params, "short-window"))
    long = _ema(_C, _p(params, "long-window"))
    return (short - long) / long * PERCENT


@functools.lru_cache(maxsize=1024)
def _query(name: str, params: Params, grouped: bool) -> tuple[pl.Expr, ...]:
    """The expressions a series is computed from (RSI: its two averages), NaN for
    null, over each ticker id `g` when `grouped`. Kept: building them costs."""
    parts = _rsi_averages(_p(params, "window")) if name == "rsi" else (_expression(name, params),)
    return tuple(
        (e.over("g") if grouped else e).fill_null(NAN).alias(f"v{k}") for k, e in enumerate(parts)
    )


def _expression(name: str, params: Params) -> pl.Expr:
    w = param(params, "window") or 0
    if name == "current-price":
        return _C
    if name == "moving-average-price":
        return _C.rolling_mean(w)
    if name == "stdev-price":
        return _C.rolling_std(w, ddof=STDEV_DDOF)
    if name == "exponential-moving-average-price":
        return _ema(_C, w)
    if name == "moving-average-return":
        return _C.pct_change().rolling_mean(w) * PERCENT
    if name == "stdev-return":
        return _C.pct_change().rolling_std(w, ddof=STDEV_DDOF) * PERCENT
    if name == "cumulative-return":
        return (_C / _C.shift(w) - 1) * PERCENT
    if name == "rsi":
        raise ValueError("rsi is computed from its two averages (see `_query`)")
    if name in _LAZY:
        raise ValueError(f"{name} is computed per day, not as a whole series")
    if name == "percentage-price-oscillator":
        return _ppo(params)
    start = closes_needed("percentage-price-oscillator", params) - 1
    return _ema(_ppo(params), _p(params, "smooth-window"), start)


def value_on(name: str, params: Params, closes: Sequence[float]) -> float:
    """The indicator's value on the last of `closes`; NaN if too short.

    Used for group NAVs, which are short lists that exist once per (node, date):
    plain Python here is far cheaper than building polars series each time.
    """
    need = closes_needed(name, params)
    if len(closes) < need:
        return NAN
    if name in _SCALAR_RECURSIVE:
        return _SCALAR_RECURSIVE[name](list(closes), params)
    return _SCALAR_WINDOWED[name](list(closes[len(closes) - need :]))


def _mean(xs: Sequence[float]) -> float:
    return sum(xs) / len(xs)


def _stdev(xs: Sequence[float]) -> float:
    m = _mean(xs)
    return math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - STDEV_DDOF))


def _returns(xs: Sequence[float]) -> list[float]:
    return [b / a - 1 for a, b in itertools.pairwise(xs)]


def _drawdown(xs: Sequence[float]) -> float:
    peak, worst = xs[0], 0.0
    for x in xs:
        peak = max(peak, x)
        worst = max(worst, 1 - x / peak)
    return worst * PERCENT


def _ema_list(xs: Sequence[float], window: int) -> list[float]:
    """EMA at each index from window-1 on (seeded with the first window's mean)."""
    alpha = 2.0 / (window + 1)
    value = _mean(xs[:window])
    out = [value]
    for x in xs[window:]:
        value = alpha * x + (1 - alpha) * value
        out.append(value)
    return out


def _rsi_scalar(xs: list[float], params: Params) -> float:
    n = _p(params, "window")
    changes = [b - a for a, b in itertools.pairwise(xs)]
    gain = _mean([max(c, 0.0) for c in changes[:n]])
    loss = _mean([max(-c, 0.0) for c in changes[:n]])
    for c in changes[n:]:
        gain = (gain * (n - 1) + max(c, 0.0)) / n
        loss = (loss * (n - 1) + max(-c, 0.0)) / n
    return RSI_WHEN_NO_LOSS if loss == 0 else PERCENT - PERCENT / (1 + gain / loss)


def _ppo_list(xs: list[float], params: Params) -> list[float]:
    short_w, long_w = _p(params, "short-window"), _p(params, "long-window")
    short, long = _ema_list(xs, short_w), _ema_list(xs, long_w)
    offset = long_w - short_w  # both lists end today; align them on their tails
    short = short[offset:] if offset >= 0 else short
    long = long[-offset:] if offset < 0 else long
    return [(s - lg) / lg * PERCENT for s, lg in zip(short, long, strict=True)]


_SCALAR_WINDOWED: dict[str, Callable[[list[float]], float]] = {
    "current-price": lambda xs: xs[-1],
    "moving-average-price": _mean,
    "stdev-price": _stdev,
    "moving-average-return": lambda xs: _mean(_returns(xs)) * PERCENT,
    "cumulative-return": lambda xs: (xs[-1] / xs[0] - 1) * PERCENT,
    "stdev-return": lambda xs: _stdev(_returns(xs)) * PERCENT,
    "max-drawdown": _drawdown,
}
_SCALAR_RECURSIVE: dict[str, Callable[[list[float], Params], float]] = {
    "rsi": _rsi_scalar,
    "exponential-moving-average-price": lambda xs, p: _ema_list(xs, _p(p, "window"))[-1],
    "percentage-price-oscillator": lambda xs, p: _ppo_list(xs, p)[-1],
    "percentage-price-oscillator-signal": lambda xs, p: _ema_list(
        _ppo_list(xs, p), _p(p, "smooth-window")
    )[-1],
}


# ------------------------------------------------ many windows at once (columns)
#
# `values_on` is `value_on` for many windows of the same length at once: window
# j-th values are the column cols[j] (one row per window). The scalar helpers
# above use only + - * / and `sum`, which work on numpy arrays element by
# element in the same order, so these give the very same floats; the few that
# use max() or sqrt() have an array twin here.


def _stdev_columns(xs: list[Any]) -> Any:
    m = _mean(xs)
    return np.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - STDEV_DDOF))


def _drawdown_columns(xs: list[Any]) -> Any:
    peak, worst = xs[0], np.zeros_like(xs[0])
    for x in xs:
        peak = np.maximum(peak, x)
        worst = np.maximum(worst, 1 - x / peak)
    return worst * PERCENT


def _rsi_columns(xs: list[Any], params: Params) -> Any:
    n = _p(params, "window")
    changes = [b - a for a, b in itertools.pairwise(xs)]
    gain = _mean([np.maximum(c, 0.0) for c in changes[:n]])
    loss = _mean([np.maximum(-c, 0.0) for c in changes[:n]])
    for c in changes[n:]:
        gain = (gain * (n - 1) + np.maximum(c, 0.0)) / n
        loss = (loss * (n - 1) + np.maximum(-c, 0.0)) / n
    return np.where(loss == 0, RSI_WHEN_NO_LOSS, PERCENT - PERCENT / (1 + gain / loss))


_COLUMNS_WINDOWED: dict[str, Callable[[list[Any]], Any]] = {
    **_SCALAR_WINDOWED,
    "stdev-price": _stdev_columns,
    "stdev-return": lambda xs: _stdev_columns(_returns(xs)) * PERCENT,
    "max-drawdown": _drawdown_columns,
}
_COLUMNS_RECURSIVE: dict[str, Callable[[list[Any], Params], Any]] = {
    **_SCALAR_RECURSIVE,
    "rsi": _rsi_columns,
}


def values_on(name: str, params: Params, cols: Sequence[Floats]) -> Floats:
    """`value_on` of many windows: `cols[j]` is the j-th close of every window."""
    need = closes_needed(name, params)
    if len(cols) < need:
        return np.full(len(cols[0]) if cols else 0, NAN)
    with np.errstate(all="ignore"):
        if name in _COLUMNS_RECURSIVE:
            out = _COLUMNS_RECURSIVE[name](list(cols), params)
        else:
            out = _COLUMNS_WINDOWED[name](list(cols[len(cols) - need :]))
    return np.asarray(np.broadcast_to(out, cols[0].shape), dtype=np.float64)


# --------------------------------------------------------------- price store

# Days a calendar may span for a lookup table from day to calendar index.
_DAY_TABLE_LIMIT = 1 << 22


def _sorted_by_symbol_and_date(frame: pl.DataFrame) -> bool:
    """Rows in (symbol, date) order, as a stable sort would leave them."""
    if frame.schema["symbol"] != pl.String:  # compared as sorted: only strings here
        return False
    before = pl.col("symbol").shift(1)
    in_order = (pl.col("symbol") > before) | (
        (pl.col("symbol") == before) & (pl.col("date") >= pl.col("date").shift(1))
    )
    return bool(frame.select(in_order.fill_null(value=True).all()).item())


@dataclass(frozen=True)
class _Days:
    """Each row's calendar index, looked up for a ticker's rows when asked:
    `table[days[row] - first]`."""

    days: npt.NDArray[np.integer[Any]]
    table: Ints
    first: int

    def positions(self, offset: int, count: int) -> Ints:
        out: Ints = self.table[self.days[offset : offset + count] - self.first]
        return out

    def position(self, row: int) -> int:
        return int(self.table[int(self.days[row]) - self.first])


def _calendar_and_days(dates: pl.Series) -> tuple[list[date], _Days]:
    """Every distinct date, sorted, and each row's index in that list."""
    if dates.dtype == pl.Date and len(dates) > 0:
        days = dates.to_physical().to_numpy()  # days since 1970-01-01
        first, last = int(days.min()), int(days.max())
        if last - first < _DAY_TABLE_LIMIT:  # a table from day to index: no sort
            seen = np.zeros(last - first + 1, dtype=np.bool_)
            seen[days - first] = True
            present = np.flatnonzero(seen)
            table = np.full(len(seen), -1, dtype=np.int64)
            table[present] = np.arange(len(present), dtype=np.int64)
            calendar = pl.Series((present + first).astype(np.int32)).cast(pl.Date).to_list()
            return calendar, _Days(days, table, first)
    positions = (dates.rank("dense").cast(pl.Int64) - 1).to_numpy()
    calendar = dates.unique().sort().to_list()
    return calendar, _Days(positions, np.arange(len(calendar), dtype=np.int64), 0)


class PriceHistory:
    """Adjusted daily closes per ticker, with a cache of indicator series.

    `calendar` is every date in the frame; an evaluation date is an index into
    it. A ticker's indicator series run over its own rows; `row(ticker, i)` maps
    a calendar index to the ticker's row on that date (-1 when it has none).
    """

    def __init__(self, frame: pl.DataFrame) -> None:
        # A repeated (symbol, date) keeps its last row: the last of its run after a
        # stable sort (far cheaper than `unique(keep="last")` on millions of rows).
        # Price frames come sorted (`marketdata`): checking is cheaper than sorting.
        frame = frame.select(
            "symbol", "date", pl.col("close").cast(pl.Float64).alias("c")
        ).drop_nulls()
        if not _sorted_by_symbol_and_date(frame):
            frame = frame.sort("symbol", "date", maintain_order=True)
        last = (pl.col("symbol") != pl.col("symbol").shift(-1)) | (
            pl.col("date") != pl.col("date").shift(-1)
        )
        frame = frame.filter(last.fill_null(value=True))
        self.calendar: list[date]
        self._days: _Days
        # Every ticker's rows are a slice of the rows (in symbol order): its closes
        # a view of one array, its calendar indices looked up when asked for.
        self.calendar, self._days = _calendar_and_days(frame["date"])
        self._index = {d: i for i, d in enumerate(self.calendar)}
        self._all_closes: Floats = frame["c"].to_numpy()
        counts = frame.group_by("symbol", maintain_order=True).len()
        self._spans: dict[str, tuple[int, int]] = {}  # ticker -> (offset, row count)
        start = 0
        for symbol, count in counts.iter_rows():
            self._spans[symbol] = (start, count)
            start += count
        # Closes with an integer ticker id (the symbol's dense rank: the frame is
        # sorted by symbol), for batch queries over slices of it.
        ids = np.repeat(np.arange(1, len(counts) + 1, dtype=np.uint32), counts["len"].to_numpy())
        self._frame = pl.DataFrame({"g": ids, "c": frame["c"]})
        self._spans_contiguous: dict[str, tuple[int, int] | None] = {}
        self._rows: dict[str, list[int]] = {}
        self._series: dict[tuple[str, str, Params], list[float]] = {}
        self._aligned: dict[tuple[str, str, Params], list[float | None]] = {}
        self._drawdowns: dict[tuple[str, Params, int], float] = {}
        self._columns: dict[tuple[str, str, Params], Floats] = {}
        self._arrays: dict[tuple[str, str, Params], Floats] = {}  # `_series` as numpy
        self._present: dict[str, Bools] = {}
        self._returns: dict[str, Floats] = {}
        # The evaluator's per-strategy memo (its last block of columns) lives with
        # the prices it was computed from (opaque here: indicators know nothing of nodes).
        self.memos: dict[int, object] = {}

    def _positions(self, ticker: str) -> Ints:
        """The ticker's calendar index on each of its rows."""
        offset, count = self._spans[ticker]
        return self._days.positions(offset, count)

    def _last_position(self, ticker: str) -> int:
        offset, count = self._spans[ticker]
        return self._days.position(offset + count - 1)

    def _closes(self, ticker: str) -> Floats:
        """The ticker's closes, one per row (a view)."""
        offset, count = self._spans[ticker]
        return self._all_closes[offset : offset + count]

    def __contains__(self, ticker: str) -> bool:
        return ticker in self._spans

    def index_of(self, day: date) -> int:
        """Calendar index of `day`; -1 if no ticker has a row that day."""
        return self._index.get(day, -1)

    def row(self, ticker: str, index: int) -> int:
        if ticker not in self._spans or not 0 <= index < len(self.calendar):
            return -1
        span = self._contiguous(ticker)
        if span is not None:  # the common case: no list of rows
            return index - span[0] if span[0] <= index <= span[1] else -1
        rows = self._rows.get(ticker)
        if rows is None:
            rows = self._build_rows(ticker)
        return rows[index]

    def _contiguous(self, ticker: str) -> tuple[int, int] | None:
        """(first, last) calendar index when the ticker has a row every day between."""
        if ticker in self._spans_contiguous:
            return self._spans_contiguous[ticker]
        offset, count = self._spans[ticker]
        first, last = self._days.position(offset), self._days.position(offset + count - 1)
        span = (first, last) if last - first + 1 == count else None
        self._spans_contiguous[ticker] = span
        return span

    def _build_rows(self, ticker: str) -> list[int]:
        """The ticker's row on each calendar day (-1: none), for a ticker with gaps."""
        rows = [-1] * len(self.calendar)
        for k, position in enumerate(self._positions(ticker).tolist()):
            rows[position] = k
        self._rows[ticker] = rows
        return rows

    def series(self, name: str, ticker: str, params: Params) -> list[float]:
        key = (name, ticker, params)
        values = self._series.get(key)
        if values is None:
            if key not in self._arrays:
                self._compute_many(name, params, [ticker])
            values = self._arrays[key].tolist()
            self._series[key] = values
        return values

    def prefetch(self, wanted: Iterable[tuple[str, str, Params]]) -> None:
        """Compute many series at once: one polars query per (indicator, params)
        over all the tickers that need it. Tickers without data are skipped (an
        evaluation that reads them fails there, with the details)."""
        groups: dict[tuple[str, Params], set[str]] = {}
        for name, ticker, params in wanted:
            if name in _LAZY or ticker not in self._spans:
                continue
            if (name, ticker, params) not in self._arrays:
                groups.setdefault((name, params), set()).add(ticker)
        for (name, params), tickers in groups.items():
            self._compute_many(name, params, sorted(tickers))

    def _compute_many(self, name: str, params: Params, tickers: list[str]) -> None:
        """Each ticker's whole series (NaN where history is short), cached; one query."""
        values: Floats
        if name == "current-price":  # the closes themselves (no nulls: they were dropped)
            values = np.concatenate([self._closes(t) for t in tickers])
        else:
            if len(tickers) == 1:
                rows = self._frame.slice(*self._spans[tickers[0]])
            else:
                parts = [self._frame.slice(*self._spans[t]) for t in tickers]
                rows = pl.concat(parts, rechunk=False)
            # A recursive series is seeded with a mean, which polars computes with
            # other float roundings outside a group: always grouped, so a series
            # is the same whichever tickers it was computed with. Rolling windows
            # are the same computation on one ticker's rows, grouped or not.
            grouped = len(tickers) > 1 or name in RECURSIVE
            exprs = _query(name, params, grouped)
            out = rows.select(*exprs)
            if name == "rsi":
                gain, loss = (out[:, k].to_numpy() for k in range(2))
                values = _rsi_from_averages(gain, loss)
            else:
                values = np.array(out[:, 0].to_numpy(), dtype=np.float64)
        need, start = closes_needed(name, params), 0
        for ticker in tickers:  # `rows` holds the tickers' rows in this order
            count = self._spans[ticker][1]
            array = values[start : start + count]
            array[: need - 1] = NAN
            self._arrays[(name, ticker, params)] = array
            start += count

    def value(self, name: str, ticker: str, params: Params, index: int) -> float:
        """The indicator for `ticker` as of calendar `index`, or a StrategyDataError."""
        if name in _LAZY:
            return self._drawdown(ticker, params, index)
        aligned = self._aligned.get((name, ticker, params))
        if aligned is None:
            aligned = self._align(name, ticker, params, index)
        value = aligned[index]
        if value is not None and not math.isnan(value):
            return value
        return self._explain(name, ticker, params, index)

    def aligned(self, name: str, ticker: str, params: Params) -> list[float | None] | None:
        """The whole series indexed by calendar day (None where the ticker has no
        row, NaN where history is short); None if not available as a series."""
        if name in _LAZY or ticker not in self._spans:
            return None
        aligned = self._aligned.get((name, ticker, params))
        if aligned is None:
            aligned = self._align(name, ticker, params, self._last_position(ticker))
        return aligned

    def _drawdown(self, ticker: str, params: Params, index: int) -> float:
        """max-drawdown on demand: a whole series costs O(days x window), and
        evaluations read it on few days; each value is kept once computed."""
        row = self.checked_row(ticker, index, "max-drawdown", params)
        key = (ticker, params, row)
        value = self._drawdowns.get(key)
        if value is None:
            need = closes_needed("max-drawdown", params)  # a window: its last closes
            closes = self._closes(ticker)[max(0, row + 1 - need) : row + 1].tolist()
            value = value_on("max-drawdown", params, closes)
            if math.isnan(value):
                return self._explain("max-drawdown", ticker, params, index)
            self._drawdowns[key] = value
        return value

    def _align(self, name: str, ticker: str, params: Params, index: int) -> list[float | None]:
        """The series indexed by calendar day: None where the ticker has no row."""
        self.checked_row(ticker, index, name, params)
        series = self.series(name, ticker, params)
        span = self._contiguous(ticker)
        aligned: list[float | None]
        if span is not None:  # splice instead of a loop
            aligned = [None] * len(self.calendar)
            aligned[span[0] : span[1] + 1] = series
        else:
            rows = self._rows.get(ticker) or self._build_rows(ticker)  # gaps: a loop
            aligned = [series[r] if r >= 0 else None for r in rows]
        self._aligned[(name, ticker, params)] = aligned
        return aligned

    def _explain(self, name: str, ticker: str, params: Params, index: int) -> NoReturn:
        """Raise the error for a value that is missing (no row) or NaN (short history)."""
        row = self.checked_row(ticker, index, name, params)
        raise StrategyDataError(
            ticker,
            name,
            window_of(params),
            self.calendar[index],
            f"needs {closes_needed(name, params)} daily closes, only {row + 1} available",
        )

    def checked_row(self, ticker: str, index: int, what: str, params: Params = ()) -> int:
        if ticker not in self._spans:
            raise StrategyDataError(
                ticker, what, window_of(params), self.day(index), "no price data for this ticker"
            )
        row = self.row(ticker, index)
        if row < 0:
            raise StrategyDataError(
                ticker, what, window_of(params), self.day(index), "no price on this date"
            )
        return row

    def day(self, index: int) -> date | None:
        return self.calendar[index] if 0 <= index < len(self.calendar) else None

    def daily_return(self, ticker: str, index: int) -> float:
        """Close-to-close return from calendar day index-1 to index."""
        row = self.checked_row(ticker, index, "daily return")
        before = self.row(ticker, index - 1)
        if before < 0 or before != row - 1:
            raise StrategyDataError(
                ticker, "daily return", None, self.day(index), "no price on the previous day"
            )
        closes = self._closes(ticker)
        return float(closes[row]) / float(closes[before]) - 1

    # ------------------------------------------------- whole columns (numpy)

    def present(self, ticker: str) -> Bools:
        """True on the calendar days the ticker has a row."""
        out = self._present.get(ticker)
        if out is None:
            out = np.zeros(len(self.calendar), dtype=np.bool_)
            if ticker in self._spans:
                out[self._positions(ticker)] = True
            self._present[ticker] = out
        return out

    def column(self, name: str, ticker: str, params: Params) -> Floats:
        """The indicator on every calendar day: NaN where `value` would raise."""
        key = (name, ticker, params)
        out = self._columns.get(key)
        if out is None:
            out = np.full(len(self.calendar), NAN)
            if ticker in self._spans:
                own = (
                    self._drawdown_column(ticker, params)
                    if name in _LAZY
                    else self._array(name, ticker, params)
                )
                out[self.present(ticker)] = own
            self._columns[key] = out
        return out

    def _array(self, name: str, ticker: str, params: Params) -> Floats:
        if (name, ticker, params) not in self._arrays:
            self._compute_many(name, params, [ticker])
        return self._arrays[(name, ticker, params)]

    def _drawdown_column(self, ticker: str, params: Params) -> Floats:
        """max-drawdown on each of the ticker's rows (NaN where history is short)."""
        closes = self._closes(ticker)
        need = closes_needed("max-drawdown", params)
        out = np.full(len(closes), NAN)
        if len(closes) >= need:
            windows = sliding_window_view(closes, need)
            out[need - 1 :] = values_on("max-drawdown", params, list(windows.T))
        return out

    def return_column(self, ticker: str) -> Floats:
        """Close-to-close return into each calendar day; NaN where `daily_return` raises."""
        out = self._returns.get(ticker)
        if out is None:
            closes = self.column("current-price", ticker, ())
            out = np.full(len(self.calendar), NAN)
            with np.errstate(all="ignore"):
                out[1:] = closes[1:] / closes[:-1] - 1
            self._returns[ticker] = out
        return out
