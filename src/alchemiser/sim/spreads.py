"""How wide a ticker quotes: a whole number of ticks, tied to its price and liquidity, and
moving during the day (wider after the open, a fresh draw every minute).

The liquid ETFs quote one tick (a cent) wide most minutes; other tickers a few cents to a
few tenths, by their price and how much they trade. Pure functions of (seed, ticker, time).
"""

from __future__ import annotations

import math

from alchemiser.sim.hashing import unit_interval

LIQUID_ETFS = frozenset(
    {
        "SPY", "QQQ", "IWM", "DIA", "VOO", "IVV", "TQQQ", "SQQQ", "SOXL", "SOXS", "TLT",
        "UPRO", "SPXL", "SPXU", "SPXS", "SH", "SSO", "QLD", "PSQ", "TNA", "TZA", "TMF",
        "TMV", "IEF", "SHY", "BIL", "SGOV", "BND", "GLD", "UVXY", "VIXY", "XLK", "XLF",
        "XLE", "SOXX", "TECL", "FAS",
    }
)  # fmt: skip
# A liquid ETF's spread in ticks, by the minute's draw: mostly 1, sometimes 2 or 3.
LIQUID_TICKS = ((0.85, 1), (0.97, 2), (1.0, 3))
# Other tickers: basis points of price, from the most to the least traded.
SPREAD_BPS_RANGE = (2.0, 12.0)
MAX_TICKS = 40  # "a few tenths" at most, even for a dear, thinly traded ticker
MINUTE_JITTER = (0.6, 1.5)  # each minute's spread is the base times a draw in this range
OPENING_MINUTES = 30.0
OPENING_WIDENING = 2.0  # at the bell; fades linearly over OPENING_MINUTES
SECONDS_PER_MINUTE = 60


def spread_ticks(seed: int, symbol: str, mid_over_tick: float, epoch: float, opens: float) -> int:
    """Ticks between bid and ask at `epoch` (`opens`: the session's open, epoch seconds)."""
    minute = int(epoch // SECONDS_PER_MINUTE)
    draw = unit_interval(seed, symbol, "spread", minute)
    if symbol in LIQUID_ETFS:
        return next(ticks for limit, ticks in LIQUID_TICKS if draw < limit)
    liquidity = unit_interval(seed, symbol, "volume")  # the same draw sizes its volume
    lo, hi = SPREAD_BPS_RANGE
    base_bps = hi - (hi - lo) * liquidity
    jitter = MINUTE_JITTER[0] + (MINUTE_JITTER[1] - MINUTE_JITTER[0]) * draw
    since_open = max((epoch - opens) / SECONDS_PER_MINUTE, 0.0)
    opening = 1.0 + (OPENING_WIDENING - 1.0) * max(1.0 - since_open / OPENING_MINUTES, 0.0)
    ticks = mid_over_tick * base_bps * jitter * opening / 10_000
    return min(max(1, math.floor(ticks + 0.5)), MAX_TICKS)
