"""Vectorized forms of built-in strategies (same semantics as the event engine's built-ins)."""

from __future__ import annotations

from typing import Unpack

import numpy as np

from .engine import ArrayLike, CostOptions, VectorResult, simulate
from .indicators import crossed_above, crossed_below, sma


def sma_crossover(
    close: ArrayLike, fast: int, slow: int, *, allow_short: bool = False, open: ArrayLike | None = None,
    high: ArrayLike | None = None, low: ArrayLike | None = None, **options: Unpack[CostOptions]
) -> VectorResult:
    """Long all-in (whole shares) when SMA(fast) crosses above SMA(slow), flat when it crosses below
    (short instead with ``allow_short``). ``options`` as in ``simulate`` (open, high, low, cash,
    commission, fill, ...). Example: ``sma_crossover(close, 10, 50, open=open_, commission=0.001)``.
    """
    prices = np.asarray(close, dtype=np.float64)
    f, s = sma(prices, fast), sma(prices, slow)
    up, down = crossed_above(f, s), crossed_below(f, s)
    return simulate(prices, open=open, high=high, low=low, entries=up, exits=down,
                    short_entries=down if allow_short else None, short_exits=up if allow_short else None,
                    **options)
