"""Reshuffle Monte Carlo places the run among its simulations on their own basis: the paths are
measured at trade closes (drawdown) and on trade returns (Sharpe), so the run's bar-by-bar metrics
alone sat outside every percentile (a Sharpe of 0.81 beside paths of 1.13-1.24) and read as an
unusually bad run."""

from __future__ import annotations

import math

import numpy as np

import backtape as bt
from backtape.optimization import monte_carlo


def test_the_runs_own_trade_order_is_measured_as_the_paths_are() -> None:
    res = bt.run_backtest("sma_crossover", ["AAPL", "MSFT"], "2012-01-01", "2015-01-01", source="sample",
                          cash=100_000, commission=0.001, params={"fast": 10, "slow": 50})
    mc = monte_carlo(res, 500, seed=1)
    own = mc.observed_trades
    assert own["final_equity"] == mc.observed["final_equity"]
    # by hand: closed trades in the order they closed, then the open one, from the starting cash
    pnl = np.concatenate([res.trades.sort("exit_time", maintain_order=True)["pnl"].to_numpy(),
                          res.open_trades["pnl"].to_numpy()])
    pnl = pnl + (res.metrics["final_equity"] - 100_000 - pnl.sum()) / pnl.size  # dividends, spread alike
    path = 100_000 + np.concatenate([[0.0], np.cumsum(pnl)])
    by_hand = float(np.max(1 - path / np.maximum.accumulate(path)))
    assert math.isclose(own["max_drawdown"], by_hand, rel_tol=1e-12)
    sims = mc.simulations
    for name in ("max_drawdown", "sharpe"):
        assert sims[name].min() <= own[name] <= sims[name].max(), name
    assert own["max_drawdown"] < mc.observed["max_drawdown"]  # bar by bar sees the drawdowns inside trades


def test_bootstrap_is_on_the_runs_own_bars_and_needs_no_second_figure() -> None:
    res = bt.run_backtest("sma_crossover", ["AAPL"], "2012-01-01", "2015-01-01", source="sample")
    assert monte_carlo(res, 50, method="bootstrap").observed_trades == {}


def test_a_bootstrap_block_that_cannot_resample_is_refused() -> None:
    """Block 0 was read as 1 and a block as long as the run gave every path equal to the run (every
    percentile the same) without a word."""
    import pytest

    from backtape.errors import ConfigError

    res = bt.run_backtest("sma_crossover", ["AAPL"], "2012-01-01", "2015-01-01", source="sample")
    with pytest.raises(ConfigError, match=r"block must be a whole number of bars >= 1, got 0"):
        monte_carlo(res, 50, method="bootstrap", block=0)
    with pytest.raises(ConfigError, match=r"block 753 is not shorter than the run's 753 bar returns"):
        monte_carlo(res, 50, method="bootstrap", block=753)
    assert monte_carlo(res, 50, method="bootstrap", block=752).table.height == 5
