"""Deflated Sharpe ratio, PBO by CSCV, and the seeded Monte Carlo helpers."""

from __future__ import annotations

import numpy as np
import pytest

from backtape.errors import ConfigError
from backtape.optimization.stats import (
    bootstrap_returns,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    probability_of_backtest_overfitting,
    reshuffle_trades,
)


def test_expected_max_sharpe_grows_with_trials() -> None:
    assert expected_max_sharpe(1, 0.01) == 0.0
    assert 0 < expected_max_sharpe(10, 0.01) < expected_max_sharpe(1000, 0.01)


def test_deflated_sharpe_separates_skill_from_selection_luck() -> None:
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 0.01, (1000, 200))
    sharpes = noise.mean(axis=0) / noise.std(axis=0, ddof=1)
    lucky = noise[:, int(np.argmax(sharpes))]
    # Undeflated, the best of 200 noise series looks significant; deflated, it does not.
    assert deflated_sharpe_ratio(lucky, sharpes, n_trials=1) > 0.99
    assert deflated_sharpe_ratio(lucky, sharpes) < 0.9
    skilled = rng.normal(0.002, 0.01, 1000)
    assert deflated_sharpe_ratio(skilled, sharpes) > 0.95


def test_pbo_high_for_noise_low_for_a_real_edge() -> None:
    # Without skill the in-sample winner is a coin flip out of sample: PBO is 0.5 on average.
    pbos = [
        probability_of_backtest_overfitting(
            np.random.default_rng(s).normal(0, 0.01, (800, 40)), n_partitions=8
        )["pbo"]
        for s in range(12)
    ]
    assert 0.35 < np.mean(pbos) < 0.65
    noise = np.random.default_rng(1).normal(0, 0.01, (800, 40))
    edge = noise.copy()
    edge[:, 7] += 0.004
    result = probability_of_backtest_overfitting(edge, n_partitions=8)
    assert result["pbo"] == 0.0 and result["splits"] == 70
    assert probability_of_backtest_overfitting(noise, n_partitions=10, max_splits=20)["splits"] == 20
    with pytest.raises(ConfigError, match="even"):
        probability_of_backtest_overfitting(noise, n_partitions=5)


def test_monte_carlo_is_seeded_and_reshuffle_keeps_final_equity() -> None:
    trades = np.array([0.05, -0.02, 0.03, -0.04, 0.01, 0.02])
    a = reshuffle_trades(trades, n_simulations=200, seed=3)
    assert a.equals(reshuffle_trades(trades, n_simulations=200, seed=3))
    final = 10_000 * np.prod(1 + trades)
    np.testing.assert_allclose(a["final_equity"].to_numpy(), final)
    assert (a["max_drawdown"].to_numpy() >= 0.04 - 1e-12).all()
    r = np.random.default_rng(2).normal(0.0005, 0.01, 500)
    b = bootstrap_returns(r, n_simulations=300, block_size=10, seed=4)
    assert b.equals(bootstrap_returns(r, n_simulations=300, block_size=10, seed=4))
    assert b["percentile"].to_list() == [5.0, 25.0, 50.0, 75.0, 95.0]
    assert (np.diff(b["final_equity"].to_numpy()) >= 0).all()
