"""optimize(): the table, the search methods, constraints, storage, engine parity, data loaded once."""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np
import polars as pl
import pytest

from backtape.analytics import METRIC_NAMES
from backtape.engine import Strategy
from backtape.errors import BacktapeWarning, ConfigError
from backtape.optimization import OptimizationEngine, load_market_data, optimize, parameter_sets
from backtape.optimization.stats import block_sums, deflated_sharpe_ratio, probability_of_backtest_overfitting
from backtape.results import ResultsStore
from backtape.sources.base import DataSource, DataSourceMetadata
from backtape.sources.synthetic import SyntheticDataSource
from backtape.vector import crossed_above, crossed_below, simulate, sma

SYN = {"symbols": "SYN", "start": "2020-01-01", "end": "2023-01-01", "source": "synthetic"}
GRID = {"fast": [5, 10, 20], "slow": [10, 30, 60]}


class CountingSource(DataSource):
    """Synthetic bars, counting every upstream call (the test of "nothing fetched twice")."""

    name = "counting"

    def __init__(self) -> None:
        self.inner = SyntheticDataSource(seed=3)
        self.calls: list[str] = []

    async def fetch(self, symbols: list[str], start: Any, end: Any, frequency: Any = "1d") -> pl.DataFrame:
        self.calls.append(f"bars {frequency}")
        return await self.inner.fetch(symbols, start, end, frequency)

    def get_metadata(self) -> DataSourceMetadata:
        return self.inner.get_metadata()


def test_table_is_sorted_with_every_metric_and_the_statistics() -> None:
    res = optimize("sma_crossover", GRID, **SYN, constraint="fast < slow", commission=0.001)
    table = res.table
    assert table.columns == ["fast", "slow", *METRIC_NAMES]
    assert table.height == 7 and res.skipped == 2
    assert (table["fast"] < table["slow"]).all()
    sharpe = table["sharpe"].to_numpy()
    assert (np.diff(sharpe[~np.isnan(sharpe)]) <= 0).all()
    assert res.best == {"fast": table["fast"][0], "slow": table["slow"][0]}
    assert 0.0 <= res.deflated_sharpe <= 1.0 and 0.0 <= res.pbo <= 1.0
    assert res.best_run.column_metrics()["final_equity"] == pytest.approx(table["final_equity"][0], rel=1e-12)


def test_statistics_equal_the_formulas_on_the_full_return_matrix() -> None:
    """DSR and PBO from the kernel's block sums equal those computed from every set's equity."""
    res = optimize("sma_crossover", GRID, **SYN, constraint="fast < slow", n_partitions=8, max_splits=None)
    data = load_market_data("SYN", SYN["start"], SYN["end"], "1d", "synthetic", warmup=60)
    first, last = data.span("SYN")
    close = np.asarray(data.bars["SYN"]["close"][:last])
    open_ = np.asarray(data.bars["SYN"]["open"][first:last])
    rets, sharpes = [], []
    for fast, slow in res.table.select("fast", "slow").iter_rows():
        f, s = sma(close, fast)[first:], sma(close, slow)[first:]
        run = simulate(
            close[first:],
            open=open_,
            entries=crossed_above(f, s),
            exits=crossed_below(f, s),
            trades=False,
            periods_per_year=data.periods_per_year,
        )
        eq = run.equity[:, 0]
        rets.append(np.diff(eq) / eq[:-1])
        sharpes.append(run.column_metrics()["sharpe"] / math.sqrt(data.periods_per_year))
    matrix = np.stack(rets, axis=1)
    assert res.pbo == probability_of_backtest_overfitting(matrix, 8)["pbo"]
    assert res.deflated_sharpe == pytest.approx(
        deflated_sharpe_ratio(matrix[:, 0], np.array(sharpes)), rel=1e-9
    )


def test_kernel_block_sums_equal_numpy_block_sums() -> None:
    rng = np.random.default_rng(2)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.01, 500)))
    f, s = sma(close, 5), sma(close, 20)
    run = simulate(close, entries=crossed_above(f, s), exits=crossed_below(f, s), commission=0.001, blocks=6)
    eq = run.equity[:, 0]
    s1, s2, _ = block_sums((np.diff(eq) / eq[:-1])[:, None], 6)
    np.testing.assert_allclose(run.blocks[0, 0], s1[:, 0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(run.blocks[0, 1], s2[:, 0], rtol=1e-12, atol=1e-15)


def test_event_engine_rows_equal_vector_rows() -> None:
    kw = {**SYN, "constraint": lambda p: p["fast"] < p["slow"], "commission": 0.001}
    vec = optimize("sma_crossover", GRID, **kw)
    evt = optimize("sma_crossover", GRID, engine="event", n_jobs=1, **kw)
    assert evt.table.select("fast", "slow").equals(vec.table.select("fast", "slow"))
    for name in METRIC_NAMES:
        np.testing.assert_allclose(
            evt.table[name].to_numpy(), vec.table[name].to_numpy(), rtol=1e-9, atol=1e-12, err_msg=name
        )
    assert evt.pbo == vec.pbo and evt.deflated_sharpe == pytest.approx(vec.deflated_sharpe, rel=1e-9)


def test_other_builtins_optimize_on_both_engines() -> None:
    grid = {"entry": [10, 20, 40], "exit": [5, 10]}
    vec = optimize("donchian_breakout", grid, **SYN, metric="total_return", commission=0.001)
    evt = optimize(
        "donchian_breakout", grid, **SYN, metric="total_return", commission=0.001, engine="event", n_jobs=1
    )
    assert vec.table.height == 6 and vec.table.equals(evt.table.with_columns(vec.table.select(METRIC_NAMES)))
    np.testing.assert_allclose(
        evt.table["final_equity"].to_numpy(), vec.table["final_equity"].to_numpy(), rtol=1e-9
    )


def test_signal_function_strategy() -> None:
    def cross(bars: dict[str, np.ndarray], fast: int, slow: int) -> dict[str, np.ndarray]:
        f, s = sma(bars["close"], fast), sma(bars["close"], slow)
        return {"entries": crossed_above(f, s), "exits": crossed_below(f, s)}

    builtin = optimize("sma_crossover", GRID, **SYN, constraint="fast < slow")
    custom = optimize(cross, GRID, **SYN, constraint="fast < slow", warmup=60)
    assert custom.table.select("fast", "slow").equals(builtin.table.select("fast", "slow"))
    np.testing.assert_allclose(
        custom.table["sharpe"].to_numpy(), builtin.table["sharpe"].to_numpy(), rtol=1e-9
    )


def test_random_search_is_seeded_and_minimizes_drawdown() -> None:
    kw = {
        **SYN,
        "metric": "max_drawdown",
        "method": "random",
        "n_samples": 4,
        "seed": 2,
        "constraint": "fast < slow",
    }
    a, b = optimize("sma_crossover", GRID, **kw), optimize("sma_crossover", GRID, **kw)
    assert a.table.height == 4 and a.table.equals(b.table)
    assert a.table["max_drawdown"].is_sorted()


def test_tpe_search_proposes_valid_distinct_sets() -> None:
    pytest.importorskip("optuna")
    grid = {"fast": list(range(5, 30, 5)), "slow": list(range(20, 120, 10))}
    res = optimize("sma_crossover", grid, **SYN, method="tpe", n_samples=12, seed=1, constraint="fast < slow")
    pairs = res.table.select("fast", "slow").rows()
    assert len(pairs) == 12 == len(set(pairs)) and all(f < s for f, s in pairs)
    again = optimize(
        "sma_crossover", grid, **SYN, method="tpe", n_samples=12, seed=1, constraint="fast < slow"
    )
    assert again.table.equals(res.table)


def test_strategy_rejections_are_skipped_and_bad_input_reported() -> None:
    with pytest.warns(BacktapeWarning, match=r"rejects 2 of 9 parameter set\(s\), skipped \(e\.g\. "
                      r"\{'fast': 10, 'slow': 10\}: sma_crossover needs 0 < fast < slow"):
        res = optimize("sma_crossover", GRID, **SYN)  # no constraint: the strategy rejects fast >= slow
    assert res.table.height == 7 and res.skipped == 2
    with pytest.raises(ConfigError, match="unknown metric"):
        optimize("sma_crossover", GRID, **SYN, metric="alpha")
    with pytest.raises(ConfigError, match="engine"):
        optimize("sma_crossover", GRID, **SYN, engine="gpu")
    with pytest.raises(ConfigError, match="constraint"):
        optimize("sma_crossover", GRID, **SYN, constraint="fast < middle")
    pair = optimize("sma_crossover", GRID, "SYN,ABC", "2020-01-01", "2021-01-01", source="synthetic",
                    constraint="fast < slow")
    assert pair.engine == "vector" and pair.table.height == 7  # several symbols share one account
    evt = optimize("sma_crossover", GRID, "SYN,ABC", "2020-01-01", "2021-01-01", source="synthetic",
                   constraint="fast < slow", engine="event", n_jobs=1)
    order = ["fast", "slow"]
    np.testing.assert_allclose(pair.table.sort(order)["final_equity"].to_numpy(),
                               evt.table.sort(order)["final_equity"].to_numpy(), rtol=1e-9)
    with pytest.warns(BacktapeWarning, match="event engine: NoVectorForm has no vector form"):
        plain = optimize(NoVectorForm, {"x": [1, 2]}, "SYN,ABC", "2020-01-01", "2021-01-01",
                         source="synthetic", n_jobs=1)
    assert plain.engine == "event" and plain.table.height == 2
    with pytest.raises(ConfigError, match="n_samples"):
        OptimizationEngine(method="random")
    assert len(parameter_sets(GRID, "fast < slow")) == 7


class NoVectorForm(Strategy):
    """Buys on the first bar; it has only the event form."""

    params: ClassVar[dict[str, Any]] = {"x": 1}

    def on_bar(self, ctx: Any) -> None:
        if ctx.bar_index == 0:
            ctx.order_target_percent(ctx.symbols[0], 0.5 / self.x)


def test_stored_in_the_results_database(tmp_path: Any) -> None:
    db = ResultsStore(tmp_path / "r.db")
    vec = optimize("sma_crossover", GRID, **SYN, constraint="fast < slow", store=db)
    evt = optimize("sma_crossover", GRID, **SYN, constraint="fast < slow", store=db, engine="event", n_jobs=1)
    row = db.get_optimization(vec.optimization_id)
    assert row["engine"] == "vector" and row["best"] == vec.best and row["n_sets"] == 7
    assert row["results"].select("fast", "slow").equals(vec.table.select("fast", "slow"))
    assert row["best_run_id"] is None and row["pbo"] == pytest.approx(vec.pbo)
    stored = db.get_optimization(evt.optimization_id)
    run = db.get_run(stored["best_run_id"])
    assert run.header["parameters"]["fast"] == evt.best["fast"]
    assert run.metrics["final_equity"] == pytest.approx(evt.table["final_equity"][0], rel=1e-12)


@pytest.mark.parametrize(("engine", "n_jobs"), [("vector", 2), ("event", 2)])
def test_data_is_fetched_once(engine: str, n_jobs: int) -> None:
    """One upstream call for the whole search, also with worker processes (they map the arrays)."""
    src = CountingSource()
    done: list[tuple[int, int]] = []
    res = optimize(
        "sma_crossover",
        {"fast": [5, 10], "slow": [20, 30, 40]},
        "SYN",
        "2021-01-01",
        "2022-01-01",
        source=src,
        engine=engine,
        n_jobs=n_jobs,
        progress=lambda d, t: done.append((d, t)),
    )
    assert src.calls == ["bars 1d"]
    assert res.table.height == 6 and done[-1] == (6, 6)
