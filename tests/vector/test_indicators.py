"""Indicator kernels against straightforward reference computations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtape.errors import ConfigError
from backtape.vector import atr, crossed_above, crossed_below, ema, rolling_max, rolling_min, rsi, sma

X = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 300))


def test_sma_matches_pandas_rolling_mean() -> None:
    np.testing.assert_allclose(
        sma(X, 7), pd.Series(X).rolling(7).mean().to_numpy(), rtol=1e-12, equal_nan=True
    )
    with_gap = X.copy()
    with_gap[50] = np.nan
    out = sma(with_gap, 5)
    assert np.isnan(out[50:55]).all() and np.isfinite(out[55])


def test_ema_seeded_with_sma() -> None:
    out = ema(X, 10)
    assert np.isnan(out[:9]).all()
    expected = X[:10].mean()
    assert out[9] == pytest.approx(expected)
    for i in range(10, 20):
        expected = 2 / 11 * X[i] + 9 / 11 * expected
        assert out[i] == pytest.approx(expected)


def test_rsi_wilder() -> None:
    x = np.array([1.0, 2.0, 3.0, 2.0, 4.0, 4.0])
    out = rsi(x, 2)
    # First average: gains (1, 1) / 2 = 1, losses 0 -> 100; then gain 0, loss 1: avg 0.5/0.5 -> 50.
    assert np.isnan(out[:2]).all() and out[2] == 100.0 and out[3] == pytest.approx(50.0)
    assert rsi(np.ones(5), 2)[4] == 50.0
    assert ((rsi(X, 14)[14:] >= 0) & (rsi(X, 14)[14:] <= 100)).all()


def test_atr_wilder() -> None:
    h, lo, c = np.array([10.0, 12, 11]), np.array([9.0, 10, 8]), np.array([9.5, 11, 9])
    out = atr(h, lo, c, 2)
    # True ranges: 1, max(2, 2.5, 0.5) = 2.5, max(3, 0, 3) = 3. Seed (1 + 2.5) / 2, then Wilder.
    assert out[1] == pytest.approx(1.75) and out[2] == pytest.approx((1.75 + 3) / 2)


def test_rolling_extremes_and_crossovers() -> None:
    ref = pd.Series(X)
    np.testing.assert_array_equal(rolling_max(X, 9), ref.rolling(9).max().to_numpy())
    np.testing.assert_array_equal(rolling_min(X, 9), ref.rolling(9).min().to_numpy())
    a, b = np.array([1.0, 2, 3, 2, 2]), np.array([2.0, 2, 2, 2, 1])
    assert crossed_above(a, b).tolist() == [False, False, False, False, False]  # touching is no cross
    assert crossed_above(np.array([1.0, 3]), np.array([2.0, 2])).tolist() == [False, True]
    assert crossed_below(np.array([3.0, 1]), np.array([2.0, 2])).tolist() == [False, True]


def test_window_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        sma(X, 0)
