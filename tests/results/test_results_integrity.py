"""A damaged results database gives an error naming the run or the file, never other numbers."""

from __future__ import annotations

import sqlite3

import pytest

from backtape.errors import BacktapeError
from backtape.results import ResultsStore
from backtape.sources.synthetic import SyntheticDataSource


@pytest.fixture(scope="module")
def result():
    from backtape import Workspace
    from backtape.config import Config

    return Workspace(Config()).run_backtest("sma_crossover", "ACME", "2020-01-01", "2022-01-01", "1d",
                                            source=SyntheticDataSource(seed=3), store=False)


@pytest.mark.parametrize(("table", "change"), [
    ("equity_curve", "equity = equity + 0.01 WHERE rowid = 7"),
    ("performance_metrics",
     "metrics = replace(metrics, '\"sharpe\": ', '\"sharpe\": 1') WHERE backtest_id = 1"),
    ("backtests", "start_date = '2020-01-03T00:00:00Z'"),
    ("run_frames", "data = zeroblob(length(data)) WHERE name = 'fills' AND backtest_id = 1"),
])
def test_a_changed_value_is_an_error_naming_the_run(tmp_path, result, table, change) -> None:
    store = ResultsStore(tmp_path / "r.db")
    first, second = result.save(store), result.save(store)
    with sqlite3.connect(tmp_path / "r.db") as con:
        assert con.execute(f"UPDATE {table} SET {change}").rowcount > 0
    with pytest.raises(BacktapeError, match=rf"run {first} .* is damaged: its rows no longer match"):
        ResultsStore(tmp_path / "r.db").load_result(first)
    if table == "backtests":   # the UPDATE touched every run
        return
    again = ResultsStore(tmp_path / "r.db").load_result(second)
    assert again.metrics == store.load_result(second).metrics


def test_runs_saved_before_checksums_still_load(tmp_path, result) -> None:
    store = ResultsStore(tmp_path / "r.db")
    run_id = result.save(store)
    with sqlite3.connect(tmp_path / "r.db") as con:
        con.execute("DROP TABLE run_checksums")
    assert ResultsStore(tmp_path / "r.db").load_result(run_id).metrics == store.load_result(run_id).metrics


def test_a_malformed_file_is_one_error_naming_it(tmp_path, result) -> None:
    path = tmp_path / "r.db"
    store = ResultsStore(path)
    run_id = result.save(store)
    store.engine.dispose()
    data = bytearray(path.read_bytes())
    data[len(data) // 2:] = bytes(len(data) - len(data) // 2)   # the second half of its pages zeroed
    path.write_bytes(bytes(data))
    with pytest.raises(BacktapeError, match=r"r\.db|is damaged"):
        again = ResultsStore(path)
        again.list_runs()
        again.load_result(run_id)
