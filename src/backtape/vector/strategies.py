"""Vectorized forms of built-in strategies (same semantics as the event engine's built-ins)."""

from __future__ import annotations

from typing import Any

from ..indicators import crossed_above, crossed_below, sma
from .engine import ArrayLike, VectorResult, simulate


def sma_crossover(
    close: ArrayLike, fast: int, slow: int, *, allow_short: bool = False, **options: Any
) -> VectorResult:
    """Long all-in (whole shares) when SMA(fast) crosses above SMA(slow), flat when it crosses below
    (short instead with ``allow_short``). ``options`` as in ``simulate`` (open, high, low, cash,
    commission, fill, ...). Example: ``sma_crossover(close, 10, 50, open=open_, commission=0.001)``.
    """
    f, s = sma(close, fast), sma(close, slow)
    up, down = crossed_above(f, s), crossed_below(f, s)
    if allow_short:
        return simulate(close, entries=up, exits=down, short_entries=down, short_exits=up, **options)
    return simulate(close, entries=up, exits=down, **options)
