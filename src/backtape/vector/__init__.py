"""Vectorized backtesting: a signal/target simulator and streaming sweeps (indicators re-exported from
``backtape.indicators``, the one set every part uses)."""

from __future__ import annotations

import importlib
from typing import Any

_LAZY = {
    "VectorResult": "engine", "simulate": "engine", "atr": "..indicators", "crossed_above": "..indicators",
    "crossed_below": "..indicators", "ema": "..indicators", "rolling_max": "..indicators",
    "rolling_min": "..indicators", "rsi": "..indicators", "sma": "..indicators",
    "sma_crossover": "strategies",
    "crossover_sweep": "sweep", "sma_crossover_sweep": "sweep", "sma_pairs": "sweep",
}  # fmt: skip
"""Names loaded on first use, so that importing one submodule does not start numba for all."""


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module = _LAZY[name]
    where = module if module.startswith(".") else f".{module}"
    value = getattr(importlib.import_module(where, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


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
