"""Each indicator against its documented definition (docs/indicators.md) and pandas where pandas has it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from backtape.errors import ConfigError
from backtape.indicators import (
    atr,
    crossed_above,
    crossed_below,
    ema,
    realized_volatility,
    rolling_max,
    rolling_min,
    rolling_sum,
    rsi,
    sma,
    true_range,
)

X = 100 + np.cumsum(np.random.default_rng(3).normal(0, 1, 300))


@pytest.mark.parametrize("n", [1, 2, 7, 50])
def test_sma_and_rolling_sum_are_pandas_bit_for_bit(n: int) -> None:
    signed = np.random.default_rng(5).normal(0, 1, 400)
    signed[[10, 11, 200]] = np.nan
    signed[30:40] = 0.1  # an equal run: pandas returns the value itself
    signed[50] = -0.0
    for x in (X, signed, np.round(X, 2)):
        np.testing.assert_array_equal(sma(x, n), pd.Series(x).rolling(n).mean().to_numpy())
        np.testing.assert_array_equal(rolling_sum(x, n), pd.Series(x).rolling(n).sum().to_numpy())


def test_windows_equal_in_decimal_compare_equal() -> None:
    """0.1 + 0.2 + 0.3 style residues cancel: a window whose values sum to the same decimal ties."""
    x = np.array([0.3, 0.1, 0.2, 0.3, 0.3, 0.2, 0.1, 0.3] * 20)
    three = sma(x, 3)
    assert three[4] == pd.Series(x).rolling(3).mean()[4]
    np.testing.assert_array_equal(sma(x, 4), pd.Series(x).rolling(4).mean().to_numpy())


def test_ema_seeded_with_the_first_sma() -> None:
    out = ema(X, 10)
    assert np.isnan(out[:9]).all()
    expected = sma(X, 10)[9]
    assert out[9] == expected
    for i in range(10, 20):
        expected = 2 / 11 * X[i] + 9 / 11 * expected
        assert out[i] == pytest.approx(expected, rel=1e-15)


def test_rsi_wilder_and_flat_series() -> None:
    x = np.array([1.0, 2.0, 3.0, 2.0, 4.0, 4.0])
    out = rsi(x, 2)
    # First averages: gains (1, 1) / 2 = 1, losses 0 -> 100; then gain 0, loss 1: 0.5 / 0.5 -> 50.
    assert np.isnan(out[:2]).all() and out[2] == 100.0 and out[3] == pytest.approx(50.0)
    assert (rsi(np.full(30, 7.25), 14)[14:] == 50.0).all()  # flat: neither gain nor loss
    assert rsi(np.arange(30.0), 14)[-1] == 100.0 and rsi(-np.arange(30.0), 14)[-1] == 0.0
    assert ((rsi(X, 14)[14:] >= 0) & (rsi(X, 14)[14:] <= 100)).all()


def test_true_range_and_atr_wilder() -> None:
    h, lo, c = np.array([10.0, 12, 11, 13]), np.array([9.0, 10, 8, 11]), np.array([9.5, 11, 9, 12])
    # Bar 0 has no previous close. Then max(2, 2.5, 0.5) = 2.5, max(3, 0, 3) = 3, max(2, 4, 2) = 4.
    np.testing.assert_array_equal(true_range(h, lo, c), [np.nan, 2.5, 3.0, 4.0])
    out = atr(h, lo, c, 2)
    assert np.isnan(out[:2]).all() and out[2] == (2.5 + 3) / 2 and out[3] == ((2.5 + 3) / 2 + 4) / 2


def test_realized_volatility() -> None:
    out = realized_volatility(X, 30)
    r = np.diff(np.log(X))
    assert np.isnan(out[:30]).all()
    assert out[30] == pytest.approx(np.sqrt(np.sum(r[:30] ** 2)), rel=1e-14)
    assert out[-1] == pytest.approx(np.sqrt(np.sum(r[-30:] ** 2)), rel=1e-12)


def test_rolling_extremes_and_crossovers() -> None:
    ref = pd.Series(X)
    np.testing.assert_array_equal(rolling_max(X, 9), ref.rolling(9).max().to_numpy())
    np.testing.assert_array_equal(rolling_min(X, 9), ref.rolling(9).min().to_numpy())
    a, b = np.array([1.0, 2, 3, 2, 2]), np.array([2.0, 2, 2, 2, 1])
    assert crossed_above(a, b).tolist() == [False, False, False, False, False]  # touching is no cross
    assert crossed_above(np.array([1.0, 3]), np.array([2.0, 2])).tolist() == [False, True]
    assert crossed_below(np.array([3.0, 1]), np.array([2.0, 2])).tolist() == [False, True]


def test_bad_inputs_name_the_problem() -> None:
    with pytest.raises(ConfigError, match="positive integer"):
        sma(X, 0)
    with pytest.raises(ConfigError, match="one-dimensional"):
        rsi(X.reshape(2, -1), 14)
    with pytest.raises(ConfigError, match="lengths differ"):
        atr(X, X[:-1], X, 14)


def test_old_homes_export_the_same_functions() -> None:
    import backtape
    import backtape.vector as vector

    assert vector.sma is sma and vector.rsi is rsi and vector.atr is atr
    assert backtape.indicators.sma is sma
