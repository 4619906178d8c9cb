"""Vectorized backtesting: a signal/target simulator and streaming sweeps (indicators re-exported from
``backtape.indicators``, the one set every part uses)."""

from __future__ import annotations

from ..indicators import atr, crossed_above, crossed_below, ema, rolling_max, rolling_min, rsi, sma
from .engine import VectorResult, simulate
from .strategies import sma_crossover
from .sweep import crossover_sweep, sma_crossover_sweep, sma_pairs

__all__ = [
    "VectorResult",
    "atr",
    "crossed_above",
    "crossed_below",
    "crossover_sweep",
    "ema",
    "rolling_max",
    "rolling_min",
    "rsi",
    "simulate",
    "sma",
    "sma_crossover",
    "sma_crossover_sweep",
    "sma_pairs",
]
