"""Statistics of a daily value series, as backtest reports show them.

Returns are close-to-close; a year is 252 sessions for volatility and the
ratios, and 365.25 calendar days for CAGR. No risk-free rate (Composer's
Sharpe uses none either). Ratios are floats: they are not money.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

SESSIONS_PER_YEAR = 252
DAYS_PER_YEAR = 365.25
NAN = math.nan


@dataclass(frozen=True)
class Stats:
    start: date
    end: date
    final_value: Decimal
    cagr: float
    volatility: float
    sharpe: float
    sortino: float
    max_drawdown: float  # a fraction: 0.25 is a 25 % fall from the peak
    drawdown_peak: date
    drawdown_trough: date
    calmar: float
    turnover: float  # value traded (both sides) per year, as a multiple of the book's value
    trades: int


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else NAN


def statistics(dates: list[date], values: list[Decimal], trades: int, traded: float) -> Stats:
    """The series' statistics; needs at least one value."""
    floats = [float(v) for v in values]
    returns = [b / a - 1 for a, b in itertools.pairwise(floats) if a > 0]
    years = (dates[-1] - dates[0]).days / DAYS_PER_YEAR
    growth = floats[-1] / floats[0] if floats[0] > 0 else NAN
    cagr = growth ** (1 / years) - 1 if years > 0 and growth >= 0 else NAN
    mean = sum(returns) / len(returns) if returns else NAN
    stdev = (
        math.sqrt(sum((r - mean) ** 2 for r in returns) / (len(returns) - 1))
        if len(returns) > 1
        else NAN
    )
    downside = math.sqrt(sum(min(r, 0.0) ** 2 for r in returns) / len(returns)) if returns else NAN
    annual = math.sqrt(SESSIONS_PER_YEAR)
    drawdown, peak_at, trough_at = _max_drawdown(dates, floats)
    return Stats(
        start=dates[0],
        end=dates[-1],
        final_value=values[-1],
        cagr=cagr,
        volatility=stdev * annual,
        sharpe=_ratio(mean, stdev) * annual,
        sortino=_ratio(mean, downside) * annual,
        max_drawdown=drawdown,
        drawdown_peak=peak_at,
        drawdown_trough=trough_at,
        calmar=_ratio(cagr, drawdown),
        turnover=traded / years if years > 0 else NAN,
        trades=trades,
    )


def _max_drawdown(dates: list[date], values: list[float]) -> tuple[float, date, date]:
    """The largest fall from a peak to a later trough, and the peak's and trough's dates."""
    worst, peak, peak_at = 0.0, values[0], dates[0]
    best = (0.0, dates[0], dates[0])
    for day, value in zip(dates, values, strict=True):
        if value > peak:
            peak, peak_at = value, day
        fall = 1 - value / peak if peak > 0 else 0.0
        if fall > worst:
            worst = fall
            best = (fall, peak_at, day)
    return best


def drawdowns(values: list[float]) -> list[float]:
    """The fall from the running peak on each day (0 at a new high)."""
    out: list[float] = []
    peak = -math.inf
    for value in values:
        peak = max(peak, value)
        out.append(1 - value / peak if peak > 0 else 0.0)
    return out
