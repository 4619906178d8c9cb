"""The results database: real SQLite files, round trips, comparisons."""

from __future__ import annotations

import json
import sqlite3

import polars as pl
import pytest

from backtape.errors import BacktapeError
from backtape.results import ResultsStore


def _run(store: ResultsStore, sharpe: float) -> int:
    trades = pl.DataFrame({
        "symbol": ["AAPL", "AAPL"], "side": [1, -1],
        "entry_time": pl.Series([1_700_000_000_000_000_000, 1_700_100_000_000_000_000]).cast(
            pl.Datetime("ns", "UTC")),
        "exit_time": pl.Series([1_700_050_000_000_000_000, 1_700_150_000_000_000_000]).cast(
            pl.Datetime("ns", "UTC")),
        "entry_price": [10.0, 12.0], "exit_price": [11.0, 11.5], "quantity": [100.0, 50.0],
        "pnl": [100.0, 25.0], "commission": [1.0, 0.5], "slippage": [0.0, 0.0],
    })
    equity = pl.DataFrame({"ts": [1, 2, 3], "equity": [100.0, 101.0, 99.0], "drawdown": [0.0, 0.0, -0.0198]})
    return store.save_run(
        strategy="sma_crossover", parameters={"fast": 10, "slow": 50}, symbols=["AAPL"],
        start="2014-01-02", end="2014-12-31", frequency="1d",
        metrics={"sharpe": sharpe, "total_return": 0.125, "trades": 2, "final_equity": 11_250.0,
                 "max_drawdown": -0.0198, "calmar": float("nan")},
        trades=trades, equity=equity, source="sample", cash=10_000.0, duration_s=0.5,
        fingerprint={"source": "sample", "coverage": [[1, 2]]},
    )


def test_round_trip_on_a_real_sqlite_file(tmp_path) -> None:
    path = tmp_path / "results.db"
    store = ResultsStore(path)
    run_id = _run(store, 1.5)
    rec = ResultsStore(path).get_run(run_id)
    assert rec.header["strategy_name"] == "sma_crossover"
    assert rec.header["parameters"] == {"fast": 10, "slow": 50}
    assert rec.metrics["sharpe"] == 1.5 and rec.metrics["calmar"] is None
    assert rec.trades.height == 2 and rec.trades["pnl"].to_list() == [100.0, 25.0]
    assert rec.trades["entry_time"].dtype == pl.Datetime("ns", "UTC")
    assert rec.equity["equity"].to_list() == [100.0, 101.0, 99.0]
    with sqlite3.connect(path) as conn:  # seed 003's tables are there, queryable by plain SQL
        names = {r[0] for r in conn.execute("select name from sqlite_master where type='table'")}
        assert {"backtests", "performance_metrics", "trades", "equity_curve", "parameters"} <= names
        fast = conn.execute("select value from parameters where name='fast'").fetchone()[0]
        assert json.loads(str(fast)) == 10
        assert conn.execute("select trades_count from performance_metrics").fetchone()[0] == 2


def test_list_compare_delete(tmp_path) -> None:
    store = ResultsStore(tmp_path / "r.db")
    a, b = _run(store, 1.0), _run(store, 2.0)
    runs = store.list_runs()
    assert runs["id"].to_list() == [b, a]
    cmp = store.compare([a, b])
    row = cmp.filter(pl.col("metric") == "sharpe")
    assert row[f"run_{a}"].item() == 1.0 and row[f"run_{b}"].item() == 2.0
    store.delete_run(a)
    with pytest.raises(BacktapeError, match=f"no backtest run with id {a}"):
        store.get_run(a)
    assert store.list_runs().height == 1


def test_a_stored_run_is_rebuilt_whole(tmp_path):
    """Every result frame survives the database exactly (orders, fills, records, open trades)."""
    import backtape as bt
    from backtape.results.store import ResultsStore

    run = bt.run_backtest("sma_crossover", ["AAPL", "MSFT"], "2012-01-01", "2014-12-31", "1d",
                          source="sample", store=False)
    store = ResultsStore(tmp_path / "r.db")
    back = store.load_result(run.save(store))
    assert back.metrics == run.metrics and back.run_id == run.run_id
    for name, frame in run.frames().items():
        assert frame.equals(back.frames()[name]), name
    store.delete_run(back.run_id)
    assert store.list_runs().height == 0
