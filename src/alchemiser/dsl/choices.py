"""The open choices of the language's meaning (spec §3), in one place.

`evaluate` reads them from `evaluator`'s namespace each time it is called (a
test may flip one there); `allocations` reads them from here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

# An `if` branch vector with several forms is one unit whose forms share
# equally (spec §3); False spreads them into the parent as separate siblings.
BRANCH_VECTOR_IS_UNIT = True
# When a `weight-specified` child is empty its weight goes to the other
# children in proportion to their written weights (False: in equal parts).
SPECIFIED_EMPTY_SHARE_PROPORTIONAL = True
# A `filter` ranks every child, then drops selected children that hold nothing
# today (their share goes to the other selected ones). False: children that hold
# nothing today are left out of the ranking, so n non-empty children are chosen.
FILTER_RANKS_EMPTY_CHILDREN = True
# Children of `weight-inverse-volatility` whose volatility is exactly 0 would
# get an infinite weight; they share the node equally and the others get nothing.
ZERO_VOLATILITY_TAKES_ALL = True

# Every node's allocation sums to 1 by construction; the final sum may differ
# from 1 only by rounding. More than this means a weighting node is wrong.
WEIGHT_SUM_TOLERANCE = 1e-9

Column = npt.NDArray[np.float64]
# A child's allocation on each day, ticker by ticker.
Unit = dict[str, Column]


def weighted(pairs: list[tuple[Column, Unit]]) -> Unit:
    """Each unit scaled by its weight over the total weight, day by day. A weight
    is 0 on the days its unit does not take part; days where none does are NaN
    (the caller zeroes them)."""
    total = sum(w for w, _ in pairs)
    out: Unit = {}
    for weight, unit in pairs:
        for ticker, w in unit.items():
            out[ticker] = out.get(ticker, 0.0) + w * weight / total
    return out


@dataclass(frozen=True)
class Choices:
    branch_vector_is_unit: bool
    specified_empty_share_proportional: bool
    filter_ranks_empty_children: bool
    zero_volatility_takes_all: bool
    weighted: Callable[[list[tuple[Column, Unit]]], Unit]


DEFAULT_CHOICES = Choices(
    BRANCH_VECTOR_IS_UNIT,
    SPECIFIED_EMPTY_SHARE_PROPORTIONAL,
    FILTER_RANKS_EMPTY_CHILDREN,
    ZERO_VOLATILITY_TAKES_ALL,
    weighted,
)
