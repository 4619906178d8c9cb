"""Parameter optimization and its statistics (overfitting checks, Monte Carlo)."""

from __future__ import annotations

from .search import OptimizationEngine, OptimizationResult, parameter_sets
from .stats import (
    bootstrap_returns,
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    reshuffle_trades,
)

__all__ = [
    "OptimizationEngine",
    "OptimizationResult",
    "bootstrap_returns",
    "deflated_sharpe_ratio",
    "parameter_sets",
    "probability_of_backtest_overfitting",
    "reshuffle_trades",
]
