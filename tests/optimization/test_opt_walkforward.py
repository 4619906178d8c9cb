"""walk_forward: window layout, out-of-sample stitching, efficiency, engine parity."""

from __future__ import annotations

import numpy as np
import polars as pl
import pytest

from backtape.engine import run_backtest
from backtape.errors import ConfigError
from backtape.optimization import optimize, walk_forward
from backtape.optimization.walkforward import window_bounds

GRID = {"fast": [5, 10, 20], "slow": [30, 50]}
KW = {"frequency": "1d", "source": "synthetic", "commission": 0.001}


def test_window_layout_rolling_and_anchored() -> None:
    assert window_bounds(10, 4, 2, 2, False) == [(0, 4, 6), (2, 6, 8), (4, 8, 10)]
    assert window_bounds(11, 4, 2, 3, True) == [(0, 4, 6), (0, 7, 9), (0, 10, 11)]
    with pytest.raises(ConfigError, match="overlap"):
        window_bounds(10, 4, 3, 2, False)
    with pytest.raises(ConfigError, match="no test window"):
        window_bounds(4, 4, 2, 2, False)


def test_each_window_is_the_winner_of_its_training_run_traded_out_of_sample() -> None:
    res = walk_forward("sma_crossover", GRID, "SYN", "2019-01-01", "2022-01-01", 252, 126, **KW)
    w = res.windows
    assert w.height == 5 and res.metric == "sharpe" and not res.anchored  # 757 bars: 252 + 4 x 126 + 1
    assert (w["test_start"] == w["train_end"]).all()
    assert (w["test_start"].slice(1) == w["test_end"].slice(0, w.height - 1)).all()
    one = w.row(1, named=True)
    opt = optimize("sma_crossover", GRID, "SYN", one["train_start"], one["train_end"], **KW)
    assert opt.best == {"fast": one["fast"], "slow": one["slow"]}
    assert opt.table["sharpe"][0] == pytest.approx(one["is_sharpe"], rel=1e-12)
    oos = run_backtest("sma_crossover", "SYN", one["test_start"], one["test_end"], source="synthetic",
                       commission=0.001, params=opt.best)  # fmt: skip
    assert oos.metrics["total_return"] == pytest.approx(one["oos_return"], rel=1e-9)
    # the stitched curve compounds the windows' returns
    growth = np.prod(1.0 + w["oos_return"].to_numpy())
    assert res.equity["equity"][-1] == pytest.approx(10_000.0 * growth, rel=1e-9)
    assert res.equity["ts"].is_sorted() and res.equity["ts"].n_unique() == res.equity.height
    assert res.efficiency == pytest.approx(res.metrics["cagr"] / w["is_cagr"].mean(), rel=1e-12)


def test_anchored_event_engine_equals_vector_engine() -> None:
    kw = {**KW, "anchored": True}
    vec = walk_forward("sma_crossover", GRID, "SYN", "2019-01-01", "2021-07-01", 252, 126, **kw)
    evt = walk_forward("sma_crossover", GRID, "SYN", "2019-01-01", "2021-07-01", 252, 126, engine="event",
                       n_jobs=1, **kw)  # fmt: skip
    assert vec.anchored and (vec.windows["train_start"] == vec.windows["train_start"][0]).all()
    assert vec.windows.select("fast", "slow").equals(evt.windows.select("fast", "slow"))
    assert (vec.equity["ts"] == evt.equity["ts"]).all()
    np.testing.assert_allclose(evt.equity["equity"].to_numpy(), vec.equity["equity"].to_numpy(), rtol=1e-9)
    assert evt.efficiency == pytest.approx(vec.efficiency, rel=1e-9)
    assert isinstance(vec.windows["test_start"].dtype, pl.Datetime)
