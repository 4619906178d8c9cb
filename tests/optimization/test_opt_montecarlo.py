"""monte_carlo: from an event run, a vector run, an optimization result and a stored run id."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from backtape.engine import run_backtest
from backtape.errors import ConfigError
from backtape.optimization import monte_carlo, optimize
from backtape.results import ResultsStore


@pytest.fixture(scope="module")
def run() -> Any:
    return run_backtest("sma_crossover", "SYN", "2018-01-01", "2023-01-01", source="synthetic",
                        params={"fast": 10, "slow": 50}, commission=0.001)  # fmt: skip


def test_reshuffle_keeps_final_equity_and_observed_matches_the_run(run: Any) -> None:
    mc = monte_carlo(run, 300, seed=4)
    assert mc.observed["final_equity"] == pytest.approx(run.metrics["final_equity"], rel=1e-9)
    final = mc.table["final_equity"].to_numpy()
    np.testing.assert_allclose(final, run.metrics["final_equity"], rtol=1e-9)
    dd = mc.table["max_drawdown"].to_numpy()
    assert (np.diff(dd) >= 0).all() and dd[0] < dd[-1]
    assert mc.table["percentile"].to_list() == [5.0, 25.0, 50.0, 75.0, 95.0]
    assert monte_carlo(run, 300, seed=4).table.equals(mc.table)


def test_bootstrap_observed_equals_the_run_metrics(run: Any) -> None:
    mc = monte_carlo(run, 300, "bootstrap", block=10, seed=1)
    for key in ("final_equity", "max_drawdown", "sharpe"):
        assert mc.observed[key] == pytest.approx(run.metrics[key], rel=1e-9), key
    final = mc.table["final_equity"].to_numpy()
    assert (np.diff(final) > 0).all()
    assert not mc.table.equals(monte_carlo(run, 300, "bootstrap", block=10, seed=2).table)


def test_from_a_stored_run_and_from_an_optimization(run: Any, tmp_path: Any) -> None:
    db = ResultsStore(tmp_path / "r.db")
    run_id = run.save(db)
    stored = monte_carlo(run_id, 200, seed=3, store=db)
    direct = monte_carlo(run, 200, seed=3)
    np.testing.assert_allclose(stored.table.to_numpy(), direct.table.to_numpy(), rtol=1e-9)
    opt = optimize("sma_crossover", {"fast": [10], "slow": [50]}, "SYN", "2018-01-01", "2023-01-01",
                   source="synthetic", commission=0.001)  # fmt: skip
    vec = monte_carlo(opt, 200, seed=3)
    np.testing.assert_allclose(vec.table.to_numpy(), direct.table.to_numpy(), rtol=1e-9)
    boot = monte_carlo(opt, 200, "bootstrap", seed=3)
    assert boot.observed["sharpe"] == pytest.approx(run.metrics["sharpe"], rel=1e-9)


def test_bad_input(run: Any) -> None:
    with pytest.raises(ConfigError, match="method"):
        monte_carlo(run, 10, "jackknife")
    with pytest.raises(ConfigError, match="run result"):
        monte_carlo("nope", 10)


def test_batches_make_the_table_independent_of_how_they_are_chunked(run: Any) -> None:
    from backtape.optimization.montecarlo import BATCH, _resolve, _simulate_batches

    n = 2 * BATCH + 500
    for method in ("reshuffle", "bootstrap"):
        whole = monte_carlo(run, n, method, seed=7)
        r = _resolve(run, None, None)
        batches = [(0, BATCH), (1, BATCH), (2, 500)]
        last, first = (_simulate_batches(r, chunk, method, 20, 7) for chunk in ([batches[2]], batches[:2]))
        sims = np.concatenate([s for s, _ in (*first, *last)])  # the chunks ran in another order
        assert np.array_equal(sims, whole.simulations.to_numpy(), equal_nan=True), method
        assert whole.simulations.height == n
        assert not np.array_equal(sims[:BATCH], sims[BATCH : 2 * BATCH], equal_nan=True)
