"""Parameter optimization, walk-forward analysis, Monte Carlo and overfitting statistics.

``optimize`` searches a grid (or a random / TPE sample of it) on data loaded once, with the vector
or the event engine, locally or on Ray; ``walk_forward`` re-optimizes on rolling or anchored
windows and stitches the out-of-sample runs; ``monte_carlo`` resamples a run's trades or returns.
"""

from __future__ import annotations

from .data import MarketData, load_market_data
from .montecarlo import MonteCarloResult, monte_carlo
from .search import OptimizationEngine, OptimizationResult, optimize, parameter_sets
from .stats import (
    bootstrap_returns,
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    reshuffle_trades,
)
from .walkforward import WalkForwardResult, walk_forward

__all__ = [
    "MarketData",
    "MonteCarloResult",
    "OptimizationEngine",
    "OptimizationResult",
    "WalkForwardResult",
    "bootstrap_returns",
    "deflated_sharpe_ratio",
    "load_market_data",
    "monte_carlo",
    "optimize",
    "parameter_sets",
    "probability_of_backtest_overfitting",
    "reshuffle_trades",
    "walk_forward",
]
