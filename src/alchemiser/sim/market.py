"""The market model: seeded daily history for any ticker, and intraday prices and quotes.

Daily log returns are `leverage · beta · market + own noise`, where the market factor
has slowly varying volatility regimes and is shared by every ticker. Everything is a
pure function of (seed, ticker), generated over the whole calendar range at once, so
the same seed always gives the same history whatever the simulated "today" is.

Intraday, the price of a session moves from that day's open to that day's close along
a seeded Brownian-bridge-like path, so it always ends exactly at the bar's close.
"""

from __future__ import annotations

import math
import zlib
from collections import OrderedDict
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Literal

import numpy as np
import numpy.typing as npt

from alchemiser.market_calendar import NEW_YORK, MarketCalendar
from alchemiser.sim.hashing import stable_hash, unit_interval
from alchemiser.sim.spreads import spread_ticks

FloatArray = npt.NDArray[np.float64]
BarField = Literal["open", "high", "low", "close"]

MARKET_DAILY_VOL = 0.011
MARKET_DAILY_DRIFT = 0.0003
VOL_REGIME_PERSISTENCE = 0.98  # AR(1) coefficient of log volatility
VOL_REGIME_SHOCK = 0.12
# Pull of log price toward its trend line, and bounds on the trend's daily slope, so
# decades of leveraged compounding or decay stay in a plausible price range.
LOG_PRICE_REVERSION = 0.001
TREND_SLOPE_BOUNDS = (-0.0002, 0.0004)
OVERNIGHT_GAP_SHARE = 0.3  # share of a day's volatility that happens between close and open
INTRADAY_BRIDGE_TERMS = 12
MIN_PRICE = 0.5
HISTORY_CACHE_TICKERS = 600
BRIDGE_CACHE_SIZE = 20000
QUOTE_SIZE_RANGE = (1, 12)  # round lots of 100 shares
CENT = Decimal("0.01")
SUB_DOLLAR_TICK = Decimal("0.0001")


@dataclass(frozen=True, slots=True)
class Profile:
    """How a ticker moves relative to the market."""

    beta: float
    own_vol: float  # daily standard deviation of the ticker's own noise
    leverage: float = 1.0
    drift: float = 0.0  # extra daily log drift (e.g. VIX futures roll decay)


# Well-known tickers; anything else gets a profile drawn from its hash.
_EQUITY = Profile(beta=1.0, own_vol=0.002)
_NASDAQ = Profile(beta=1.25, own_vol=0.004)
_SEMIS = Profile(beta=1.6, own_vol=0.008)
_SMALL = Profile(beta=1.2, own_vol=0.005)
_BONDS = Profile(beta=-0.15, own_vol=0.008)
_VIX = Profile(beta=-4.0, own_vol=0.03, drift=-0.002)
KNOWN_PROFILES: dict[str, Profile] = {
    "SPY": _EQUITY,
    "VOO": _EQUITY,
    "IVV": _EQUITY,
    "QQQ": _NASDAQ,
    "IWM": _SMALL,
    "SSO": Profile(1.0, 0.002, leverage=2),
    "QLD": Profile(1.25, 0.004, leverage=2),
    "UPRO": Profile(1.0, 0.002, leverage=3),
    "SPXL": Profile(1.0, 0.002, leverage=3),
    "SPXU": Profile(1.0, 0.002, leverage=-3),
    "SPXS": Profile(1.0, 0.002, leverage=-3),
    "SH": Profile(1.0, 0.002, leverage=-1),
    "TQQQ": Profile(1.25, 0.004, leverage=3),
    "SQQQ": Profile(1.25, 0.004, leverage=-3),
    "PSQ": Profile(1.25, 0.004, leverage=-1),
    "TECL": Profile(1.4, 0.006, leverage=3),
    "TECS": Profile(1.4, 0.006, leverage=-3),
    "SOXX": _SEMIS,
    "SOXL": Profile(1.6, 0.008, leverage=3),
    "SOXS": Profile(1.6, 0.008, leverage=-3),
    "TNA": Profile(1.2, 0.005, leverage=3),
    "TZA": Profile(1.2, 0.005, leverage=-3),
    "LABU": Profile(1.3, 0.015, leverage=3),
    "LABD": Profile(1.3, 0.015, leverage=-3),
    "FAS": Profile(1.2, 0.008, leverage=3),
    "FAZ": Profile(1.2, 0.008, leverage=-3),
    "TLT": _BONDS,
    "IEF": Profile(-0.08, 0.004),
    "TMF": Profile(-0.15, 0.008, leverage=3),
    "TMV": Profile(-0.15, 0.008, leverage=-3),
    "BND": Profile(-0.03, 0.002),
    "SHY": Profile(-0.01, 0.0008),
    "BIL": Profile(0.0, 0.0001, drift=0.00008),
    "SGOV": Profile(0.0, 0.0001, drift=0.00008),
    "GLD": Profile(0.05, 0.009),
    "UVXY": Profile(-4.0, 0.03, leverage=1.5, drift=-0.003),
    "VIXY": _VIX,
    "VIXM": Profile(-2.0, 0.015, drift=-0.0008),
    "SVXY": Profile(2.0, 0.01, leverage=0.5),
}


def tick_for(price: Decimal) -> Decimal:
    return CENT if price >= 1 else SUB_DOLLAR_TICK


def ar1(shocks: FloatArray, phi: float) -> FloatArray:
    """x[i] = phi·x[i-1] + shocks[i], vectorised as phi^i · cumsum(phi^-j · shocks[j]).

    Exact enough in float64 while phi^-n stays moderate (phi=0.999 over 10,000 days: e^10).
    """
    powers = phi ** np.arange(len(shocks), dtype=np.float64)
    return np.asarray(powers * np.cumsum(shocks / powers), dtype=np.float64)


def round_prices(prices: FloatArray) -> FloatArray:
    """To the tick: cents at $1 and above, 1/100 cent below."""
    return np.where(prices >= 1, np.round(prices, 2), np.round(prices, 4))


def round_price(value: float) -> float:
    return round(value, 2) if value >= 1 else round(value, 4)


@dataclass(slots=True)
class History:
    """Generated (pre-corporate-action) daily bars, one entry per calendar session."""

    open: FloatArray
    high: FloatArray
    low: FloatArray
    close: FloatArray
    volume: FloatArray


@dataclass(frozen=True, slots=True)
class CorporateAction:
    """A split (ratio, e.g. 2 for 2-for-1) or a cash dividend, effective at session `index`."""

    index: int
    split_ratio: float = 1.0
    dividend: float = 0.0


@dataclass(frozen=True, slots=True)
class Quote:
    bid: Decimal
    ask: Decimal
    bid_size: int
    ask_size: int
    last: Decimal  # price of the latest trade
    stamp: float | None = None  # when it was quoted (epoch s); None: now. Old = stale.


class MarketModel:
    """Deterministic prices for any ticker, plus the overrides the admin API sets."""

    def __init__(self, seed: int, calendar: MarketCalendar, history_start: date) -> None:
        self.calendar = calendar
        self.base = calendar.first_index_on_or_after(history_start)
        self.size = len(calendar) - self.base
        self.reseed(seed)
        self.bar_times = [
            datetime(d.year, d.month, d.day, tzinfo=NEW_YORK)
            .astimezone(UTC)
            .strftime("%Y-%m-%dT%H:%M:%SZ")
            for d in calendar.days[self.base :]
        ]

    def reseed(self, seed: int) -> None:
        """Everything generated from the seed, and every admin override, starts afresh."""
        self.seed = seed
        self._market = self._market_returns()
        self._histories: OrderedDict[str, History] = OrderedDict()
        self.price_overrides: dict[str, Decimal] = {}
        self.spread_overrides: dict[str, float] = {}
        self.actions: dict[str, list[CorporateAction]] = {}
        self.unknown: set[str] = set()
        self._bridge_weights: dict[tuple[str, int], list[float]] = {}
        self.quote_overrides: dict[str, Quote] = {}  # set outright by the admin
        self.frozen: dict[str, Quote] = {}  # halted symbols' last quotes

    def freeze(self, symbol: str, epoch: float) -> None:
        self.frozen[symbol] = replace(self.quote(symbol, epoch), stamp=epoch)

    # --- daily history -------------------------------------------------------------

    def _market_returns(self) -> FloatArray:
        rng = np.random.default_rng([self.seed, 0])
        shocks = rng.standard_normal(self.size)
        regime = rng.standard_normal(self.size) * VOL_REGIME_SHOCK
        log_vol = np.empty(self.size)
        level = 0.0
        for i, x in enumerate(regime.tolist()):
            level = VOL_REGIME_PERSISTENCE * level + x
            log_vol[i] = level
        vol = MARKET_DAILY_VOL * np.exp(log_vol - log_vol.mean())
        return np.asarray(MARKET_DAILY_DRIFT + vol * shocks, dtype=np.float64)

    def profile(self, symbol: str) -> Profile:
        known = KNOWN_PROFILES.get(symbol)
        if known is not None:
            return known
        u = unit_interval(self.seed, symbol, "profile")
        v = unit_interval(self.seed, symbol, "vol")
        return Profile(beta=0.6 + 0.9 * u, own_vol=0.005 + 0.01 * v)

    def history(self, symbol: str) -> History:
        h = self._histories.get(symbol)
        if h is None:
            h = self._generate(symbol)
            self._histories[symbol] = h
            if len(self._histories) > HISTORY_CACHE_TICKERS:
                self._histories.popitem(last=False)
        else:
            self._histories.move_to_end(symbol)
        return h

    def _generate(self, symbol: str) -> History:
        p = self.profile(symbol)
        rng = np.random.default_rng([self.seed, stable_hash(symbol)])
        own = rng.standard_normal(self.size) * p.own_vol
        underlying = p.beta * self._market + own
        # Daily rebalancing costs a leveraged fund 0.5·(L²−L)·σ² a day (volatility drag).
        drag = 0.5 * (p.leverage**2 - p.leverage) * float(np.var(underlying))
        returns = p.leverage * underlying + p.drift - drag
        daily_vol = float(np.std(returns)) or 1e-4
        mean = float(np.mean(returns))
        slope = min(max(mean, TREND_SLOPE_BOUNDS[0]), TREND_SLOPE_BOUNDS[1])
        start = math.log(20.0 + 180.0 * unit_interval(self.seed, symbol, "price"))
        days = np.arange(self.size)
        log_close = start + slope * days + ar1(returns - mean, 1.0 - LOG_PRICE_REVERSION)
        close = np.maximum(np.exp(log_close), MIN_PRICE)
        prev_close = np.concatenate(([close[0]], close[:-1]))
        gap = rng.standard_normal(self.size) * daily_vol * OVERNIGHT_GAP_SHARE
        open_ = prev_close * np.exp(gap)
        wick = np.abs(rng.standard_normal((2, self.size))) * daily_vol * 0.5
        high = np.maximum(open_, close) * np.exp(wick[0])
        low = np.minimum(open_, close) * np.exp(-wick[1])
        base_volume = 10 ** (5 + 2.5 * unit_interval(self.seed, symbol, "volume"))
        volume = np.floor(base_volume * np.exp(rng.standard_normal(self.size) * 0.35))
        r = round_prices
        return History(r(open_), r(high), r(low), r(close), volume)

    def bar_time(self, index: int) -> str:
        """RFC3339 time of a daily bar: midnight New York, in UTC, as Alpaca stamps them."""
        return self.bar_times[index]

    def index_of_day(self, day: date) -> int:
        """Model index of the first session on or after `day` (may be negative or >= size)."""
        return self.calendar.first_index_on_or_after(day) - self.base

    def split_factor_before(self, symbol: str, index: int) -> float:
        """Product of split ratios effective at or before `index` (divides generated prices)."""
        factor = 1.0
        for a in self.actions.get(symbol, ()):
            if a.index <= index:
                factor *= a.split_ratio
        return factor

    def raw_price(self, symbol: str, field: BarField, index: int) -> float:
        """A generated bar price as it traded that day: divided by the splits in effect
        by then and rounded to the tick."""
        values: FloatArray = getattr(self.history(symbol), field)
        return round_price(float(values[index]) / self.split_factor_before(symbol, index))

    def session_index(self, epoch: float) -> int:
        """Model index of the session in progress at `epoch`, or else of the next one to
        open (equally: how many model sessions have closed by then). Clamped to the
        model's sessions, so that it always indexes the history and the calendar."""
        index = self.calendar.completed_sessions(epoch) - self.base
        return min(max(index, 0), self.size - 1)

    def session_bounds(self, index: int) -> tuple[float, float]:
        """Open and close (epoch seconds) of model session `index`."""
        cal_index = index + self.base
        return self.calendar.open_epochs[cal_index], self.calendar.close_epochs[cal_index]

    # --- intraday ------------------------------------------------------------------

    def mid(self, symbol: str, epoch: float) -> Decimal:
        """The traded price of `symbol` at instant `epoch` (seconds)."""
        frozen = self.quote_overrides.get(symbol) or self.frozen.get(symbol)
        if frozen is not None:
            return frozen.last
        override = self.price_overrides.get(symbol)
        if override is not None:
            return override
        index = self.session_index(epoch)
        open_epoch, close_epoch = self.session_bounds(index)
        if epoch < open_epoch:  # before the open: last trade is the previous close
            return Decimal(str(self.raw_price(symbol, "close", max(index - 1, 0))))
        h = self.history(symbol)
        factor = self.split_factor_before(symbol, index)
        frac = min((epoch - open_epoch) / (close_epoch - open_epoch), 1.0)
        o, c = float(h.open[index]) / factor, float(h.close[index]) / factor
        price = o * (c / o) ** frac * math.exp(self._bridge(symbol, index, frac))
        return Decimal(str(round_price(price)))

    def _bridge(self, symbol: str, index: int, frac: float) -> float:
        """Seeded wiggle that is zero at the open and the close."""
        key = (symbol, index)
        weights = self._bridge_weights.get(key)
        if weights is None:
            rng = np.random.default_rng([self.seed, stable_hash(symbol), index])
            z = rng.standard_normal(INTRADAY_BRIDGE_TERMS)
            amplitude = self.profile(symbol).own_vol + MARKET_DAILY_VOL * 0.5
            weights = [amplitude * float(z[k - 1]) / k for k in range(1, len(z) + 1)]
            if len(self._bridge_weights) >= BRIDGE_CACHE_SIZE:
                self._bridge_weights.clear()
            self._bridge_weights[key] = weights
        angle = math.pi * frac
        return sum(w * math.sin(k * angle) for k, w in enumerate(weights, start=1))

    def quote(self, symbol: str, epoch: float) -> Quote:
        """The admin's quote or a halted ticker's frozen one, else the model's."""
        fixed = self.quote_overrides.get(symbol) or self.frozen.get(symbol)
        if fixed is not None:
            return fixed
        mid = self.mid(symbol, epoch)
        tick = tick_for(mid)
        bps = self.spread_overrides.get(symbol)
        if bps is not None:  # the admin's spread, in basis points of the price
            half = mid * Decimal(str(bps)) / Decimal(20000)
            bid = (mid - half).quantize(tick, rounding=ROUND_FLOOR)
            ask = max((mid + half).quantize(tick, rounding=ROUND_CEILING), bid + tick)
        else:
            opens, _ = self.session_bounds(self.session_index(epoch))
            ticks = spread_ticks(self.seed, symbol, float(mid / tick), epoch, opens)
            bid = (mid - tick * ticks / 2).quantize(tick, rounding=ROUND_FLOOR)
            ask = bid + tick * ticks
        bid = max(bid, tick)
        lo, hi = QUOTE_SIZE_RANGE
        second = int(epoch)
        sizes = zlib.crc32(f"{symbol}:{second}".encode())  # cheap, and stable across runs
        bid_size = lo + sizes % (hi - lo + 1)
        ask_size = lo + (sizes >> 8) % (hi - lo + 1)
        return Quote(bid, ask, bid_size, ask_size, mid)
