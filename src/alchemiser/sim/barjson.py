"""Daily bars as Alpaca's JSON, formatted with numpy instead of per-bar Python.

/v2/stocks/bars must serve millions of bars quickly (20 years x 500 tickers in a few
seconds), so every bar of a ticker is rendered at once into a fixed-width ASCII record:
numbers are right-aligned and padded with spaces, which JSON allows between tokens.
A page is then a byte slice of the ticker's records.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alchemiser.sim.market import FloatArray, History, MarketModel, round_prices
from alchemiser.sim.wire import SHARES_PER_TRADE

UInt8Array = npt.NDArray[np.uint8]
IntArray = npt.NDArray[np.int64]

ADJUSTMENTS = ("raw", "split", "dividend", "all")
SPACE, ZERO, DOT = ord(" "), ord("0"), ord(".")
TIME_WIDTH = len("2024-06-03T04:00:00Z")
RAW_DECIMALS_AT_OR_ABOVE_ONE = 2
FINE_DECIMALS = 4  # sub-dollar raw prices, and every adjusted price, as Alpaca gives them
INT32_LIMIT = 2**31
RECORD_CACHE_TICKERS = 600  # about 1 MB of JSON per ticker for 26 years


@dataclass(frozen=True, slots=True)
class BarRecords:
    """`rows` bars of one ticker, each exactly `width` bytes and ending with a comma."""

    data: bytes
    width: int
    rows: int

    def json(self, lo: int, hi: int, descending: bool = False) -> bytes:
        """Records [lo, hi) joined by commas (no trailing comma)."""
        if hi <= lo:
            return b""
        if not descending:
            return self.data[lo * self.width : hi * self.width - 1]
        grid = np.frombuffer(self.data, dtype=np.uint8).reshape(self.rows, self.width)
        return grid[lo:hi][::-1].tobytes()[:-1]


def ascii_digits(values: IntArray, width: int, pad: int = SPACE) -> UInt8Array:
    """Non-negative integers as right-aligned ASCII digits, left-padded with `pad`;
    shape (width, len(values)), one row per digit position."""
    out = np.empty((width, len(values)), dtype=np.uint8)
    # int32 division is several times faster than int64, and enough for prices and volumes.
    fits = len(values) == 0 or int(values.max()) < INT32_LIMIT
    rest = values.astype(np.int32) if fits else values.copy()
    for pos in range(width - 1, -1, -1):
        quotient = rest // 10
        out[pos] = ZERO + (rest - quotient * 10)
        if pad != ZERO and pos < width - 1:
            out[pos][rest == 0] = pad  # a leading zero (a lone "0" is kept at the end)
        rest = quotient
    return out


def digits_needed(values: IntArray) -> int:
    return len(str(int(values.max()))) if len(values) else 1


def ascii_decimal(values: FloatArray, decimals: int) -> list[UInt8Array]:
    """Columns of a fixed-point number: padded whole part, the dot, zero-padded fraction."""
    scaled = np.round(values * 10**decimals).astype(np.int64)
    whole, frac = np.divmod(scaled, 10**decimals)
    return [
        ascii_digits(whole, digits_needed(whole)),
        np.full((1, len(values)), DOT, dtype=np.uint8),
        ascii_digits(frac, decimals, pad=ZERO),
    ]


def _literal(text: str, rows: int) -> UInt8Array:
    column = np.frombuffer(text.encode(), dtype=np.uint8)[:, None]
    return np.broadcast_to(column, (len(text), rows))


def render(times: UInt8Array, ohlcv: tuple[FloatArray, ...], decimals: int) -> BarRecords:
    """Fixed-width JSON records for bars given as columns (times: rows x TIME_WIDTH ASCII)."""
    o, h, lo, c, v = ohlcv
    rows = len(o)
    volume = v.astype(np.int64)
    trades = volume // SHARES_PER_TRADE + 1
    vwap = (h + lo + c) / 3
    parts = [
        _literal('{"t":"', rows),
        times.T,
        _literal('","o":', rows),
        *ascii_decimal(o, decimals),
        _literal(',"h":', rows),
        *ascii_decimal(h, decimals),
        _literal(',"l":', rows),
        *ascii_decimal(lo, decimals),
        _literal(',"c":', rows),
        *ascii_decimal(c, decimals),
        _literal(',"v":', rows),
        ascii_digits(volume, digits_needed(volume)),
        _literal(',"n":', rows),
        ascii_digits(trades, digits_needed(trades)),
        _literal(',"vw":', rows),
        *ascii_decimal(vwap, decimals),
        _literal("},", rows),
    ]
    # Built column-major (each digit position is one contiguous row), written row-major.
    grid = np.vstack(parts)
    return BarRecords(grid.T.tobytes(), grid.shape[0], rows)  # C order: row-major bytes


def time_grid(model: MarketModel) -> UInt8Array:
    """The bar time of every model session as ASCII rows (computed once per model)."""
    joined = "".join(model.bar_times).encode()
    return np.frombuffer(joined, dtype=np.uint8).reshape(-1, TIME_WIDTH)


class BarFormatter:
    """Caches each ticker's unadjusted records; tickers with corporate actions are rendered
    per request (they are few)."""

    def __init__(self, model: MarketModel) -> None:
        self.model = model
        self.times = time_grid(model)
        self._raw: OrderedDict[str, BarRecords] = OrderedDict()
        self._seed = model.seed  # a reseeded model makes every cached record stale

    def records(self, symbol: str, hi: int, adjustment: str) -> BarRecords:
        """Records for model indices [0, hi) of `symbol` under `adjustment`."""
        if symbol in self.model.actions:
            return self._adjusted(symbol, self.model.history(symbol), hi, adjustment)
        if self._seed != self.model.seed:
            self._raw.clear()
            self._seed = self.model.seed
        cached = self._raw.get(symbol)
        if cached is None or cached.rows < hi:
            cached = self._raw[symbol] = self._render_raw(self.model.history(symbol), hi)
            if len(self._raw) > RECORD_CACHE_TICKERS:
                self._raw.popitem(last=False)
        else:
            self._raw.move_to_end(symbol)
        return cached

    def _render_raw(self, h: History, hi: int) -> BarRecords:
        sl = slice(0, hi)
        decimals = RAW_DECIMALS_AT_OR_ABOVE_ONE if float(h.low[sl].min()) >= 1 else FINE_DECIMALS
        columns = (h.open[sl], h.high[sl], h.low[sl], h.close[sl], h.volume[sl])
        return render(self.times[sl], columns, decimals)

    def _adjusted(self, symbol: str, h: History, hi: int, adjustment: str) -> BarRecords:
        """Raw prices are what traded (tick-rounded); adjusted ones scale them by the later
        splits and dividends, so they equal raw prices after the last action."""
        size = self.model.size
        actions = self.model.actions.get(symbol, [])
        split_before = np.ones(size)
        for a in actions:
            if a.split_ratio != 1.0:
                split_before[max(a.index, 0) :] *= a.split_ratio
        factor = np.ones(size)
        volume_factor = split_before
        if adjustment in ("split", "all"):
            factor = split_before / split_before[-1]
            volume_factor = np.full(size, split_before[-1])
        if adjustment in ("dividend", "all"):
            raw_close = round_prices(h.close / split_before)
            for a in actions:
                if a.dividend and 0 < a.index < size:
                    factor[: a.index] *= 1.0 - a.dividend / float(raw_close[a.index - 1])
        sl = slice(0, hi)

        def adjust(prices: FloatArray) -> FloatArray:
            raw = round_prices(prices[sl] / split_before[sl])
            return raw if adjustment == "raw" else np.round(raw * factor[sl], FINE_DECIMALS)

        volume = np.round(h.volume[sl] * volume_factor[sl])
        columns = (adjust(h.open), adjust(h.high), adjust(h.low), adjust(h.close), volume)
        return render(self.times[sl], columns, FINE_DECIMALS)
