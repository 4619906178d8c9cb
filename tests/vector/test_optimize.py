"""Grid and random search over the vector engine, with DSR and PBO reported."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape.errors import ConfigError
from backtape.optimization import OptimizationEngine, parameter_sets
from backtape.vector import crossed_above, crossed_below, sma

RNG = np.random.default_rng(8)
CLOSE = 100 * np.exp(np.cumsum(RNG.normal(0.0002, 0.01, 800)))
OPEN = CLOSE * np.exp(RNG.normal(0, 0.002, 800))
GRID = {"fast": [3, 5, 8], "slow": [5, 13, 21]}


def _cross(close: np.ndarray, fast: int, slow: int) -> tuple[np.ndarray, np.ndarray]:
    f, s = sma(close, fast), sma(close, slow)
    return crossed_above(f, s), crossed_below(f, s)


def test_parameter_sets_apply_the_constraint() -> None:
    sets = parameter_sets(GRID, lambda p: p["fast"] < p["slow"])
    assert sets[0] == {"fast": 3, "slow": 5} and len(sets) == 7
    with pytest.raises(ConfigError, match="no parameter set"):
        parameter_sets(GRID, lambda p: False)


def test_grid_search_sorted_with_statistics_and_same_as_signal_function() -> None:
    engine = OptimizationEngine(metric="sharpe", n_partitions=8)
    kw = {"close": CLOSE, "open": OPEN, "commission": 0.001, "constraint": lambda p: p["fast"] < p["slow"]}
    fast_path = engine.optimize("sma_crossover", GRID, **kw)
    generic = engine.optimize(_cross, GRID, **kw)
    table = fast_path.table
    assert table.height == 7 and table.columns[:2] == ["fast", "slow"]
    sharpe = table["sharpe"].to_numpy()
    assert (np.diff(sharpe[~np.isnan(sharpe)]) <= 0).all()
    assert fast_path.best == {"fast": table["fast"][0], "slow": table["slow"][0]}
    assert table.equals(generic.table)
    assert 0.0 <= fast_path.deflated_sharpe <= 1.0 and 0.0 <= fast_path.pbo <= 1.0
    assert fast_path.pbo == generic.pbo and fast_path.deflated_sharpe == pytest.approx(
        generic.deflated_sharpe
    )


def test_random_search_is_seeded_and_minimizes_drawdown() -> None:
    engine = OptimizationEngine(metric="max_drawdown", method="random", n_samples=4, seed=2, n_partitions=4)
    a = engine.optimize("sma_crossover", GRID, close=CLOSE, constraint=lambda p: p["fast"] < p["slow"])
    b = engine.optimize("sma_crossover", GRID, close=CLOSE, constraint=lambda p: p["fast"] < p["slow"])
    assert a.table.height == 4 and a.table.equals(b.table)
    assert a.table["max_drawdown"].is_sorted()


def test_bars_frame_sets_annualization_from_timestamps() -> None:
    start = pl.datetime(2024, 1, 1, time_zone="UTC")
    ts = pl.datetime_range(start, start + pl.duration(days=799), "1d", eager=True)
    high, low = np.maximum(OPEN, CLOSE), np.minimum(OPEN, CLOSE)
    bars = pl.DataFrame({"ts": ts, "open": OPEN, "high": high, "low": low, "close": CLOSE})
    grid = {"fast": [3], "slow": [13, 21]}
    res = OptimizationEngine(n_partitions=4).optimize("sma_crossover", grid, bars, calendar="24/7")
    one = OptimizationEngine(n_partitions=4).optimize(
        "sma_crossover", grid, close=CLOSE, open=OPEN, high=high, low=low, periods_per_year=365
    )
    assert res.table.equals(one.table)


def test_bad_configuration_is_reported() -> None:
    with pytest.raises(ConfigError, match="unknown metric"):
        OptimizationEngine(metric="alpha")
    with pytest.raises(ConfigError, match="n_samples"):
        OptimizationEngine(method="random")
    with pytest.raises(ConfigError, match="fast and slow"):
        OptimizationEngine().optimize("sma_crossover", {"n": [1, 2]}, close=CLOSE)
