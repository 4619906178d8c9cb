"""Entry-time calculations: ``CalculationAdapter`` and the built-ins, by name for the CLI.

``get_calculation("ema_5m")`` builds a fresh adapter; ``CALCULATIONS`` lists the names.
"""

from __future__ import annotations

from collections.abc import Callable

from ..errors import ConfigError
from .base import CalculationAdapter
from .builtins import ATR, EMA, RSI, OpeningRange, RealizedVolatility, RelativeVolume, SessionVWAP

#: name -> (factory, one-line description)
CALCULATIONS: dict[str, tuple[Callable[[], CalculationAdapter], str]] = {
    "ema_1m": (lambda: EMA(20, "1min"), "EMA(20) of 1-minute closes"),
    "ema_5m": (lambda: EMA(20, "5min"), "EMA(20) of 5-minute closes"),
    "vwap": (SessionVWAP, "session VWAP of the typical price so far"),
    "atr": (ATR, "Wilder ATR(14) of daily bars"),
    "rsi": (RSI, "Wilder RSI(14) of 5-minute closes"),
    "realized_vol": (RealizedVolatility, "sqrt(sum r^2) of the last 30 five-minute log returns"),
    "opening_range": (OpeningRange, "high/low of the first 30 minutes of the session"),
    "rvol": (RelativeVolume, "session volume so far vs the same time in the last 10 sessions"),
    "cum_delta": (lambda: _ticks().CumDeltaAdapter(), "buy minus sell volume, last 30 min (Lee-Ready)"),
    "tick_flow": (lambda: _ticks().TickFlowAdapter(), "buy/sell volume imbalance, last 5 min (tick rule)"),
}


def _ticks():
    """The tick-based adapters, imported on use (they load numba kernels)."""
    from . import ticks

    return ticks


def get_calculation(name: str) -> CalculationAdapter:
    """A new adapter for the registered ``name``; ``ConfigError`` listing the names otherwise."""
    try:
        factory, _ = CALCULATIONS[name.strip().lower()]
    except KeyError:
        raise ConfigError(f"unknown calculation {name!r}; known: {', '.join(CALCULATIONS)}") from None
    return factory()


__all__ = [
    "ATR",
    "CALCULATIONS",
    "EMA",
    "RSI",
    "CalculationAdapter",
    "OpeningRange",
    "RealizedVolatility",
    "RelativeVolume",
    "SessionVWAP",
    "get_calculation",
]
