"""Parameter optimization and its statistics (overfitting checks, Monte Carlo)."""

from __future__ import annotations

from .stats import (
    bootstrap_returns,
    deflated_sharpe_ratio,
    probability_of_backtest_overfitting,
    reshuffle_trades,
)

__all__ = [
    "bootstrap_returns",
    "deflated_sharpe_ratio",
    "probability_of_backtest_overfitting",
    "reshuffle_trades",
]
